/**
 * The gateway against the running stack: hosted 401 bodies, 404 for unknown functions, CORS preflight, Kong's
 * apikey rewrite; and in-process: a function that fails to boot answers 503.
 */
import assert from "node:assert/strict";
import { SignJWT } from "jose";
import { newUser, testStack } from "../testing/env.ts";
import { createGateway } from "./server.ts";
import { mintStackKeys } from "../keys.ts";

const health = (fn = "tool-invoke") => `${testStack().functionsUrl}/${fn}/health`;

Deno.test("gateway answers 200 to the anon key on every function's health route", async () => {
  for (const fn of ["tool-invoke", "message-fetch", "files", "watcher", "cleanup"]) {
    const res = await fetch(health(fn), { headers: { authorization: `Bearer ${testStack().anonKey}` } });
    const body = await res.json();
    assert.deepEqual(res.status, 200, `${fn}: ${JSON.stringify(body)}`);
    assert.deepEqual(body.status, "ok");
  }
});

Deno.test("gateway rejects a missing token with the hosted 401 body", async () => {
  const res = await fetch(health());
  assert.deepEqual(res.status, 401);
  assert.deepEqual(await res.json(), { code: 401, message: "Missing authorization header" });
});

Deno.test("gateway rejects expired, badly signed and malformed tokens with 401 Invalid JWT", async () => {
  const { jwtSecret } = testStack();
  const now = Math.floor(Date.now() / 1000);
  const expired = await new SignJWT({ role: "authenticated", sub: crypto.randomUUID(), exp: now - 60 })
    .setProtectedHeader({ alg: "HS256" }).sign(new TextEncoder().encode(jwtSecret));
  const wrongKey = await new SignJWT({ role: "authenticated", sub: crypto.randomUUID(), exp: now + 600 })
    .setProtectedHeader({ alg: "HS256" }).sign(new TextEncoder().encode("another-secret-that-is-at-least-32-chars!!"));
  for (const token of [expired, wrongKey, "not-a-jwt", `${expired.slice(0, -4)}AAAA`]) {
    const res = await fetch(health("message-fetch"), { headers: { authorization: `Bearer ${token}` } });
    assert.deepEqual(res.status, 401, token);
    assert.deepEqual(await res.json(), { code: 401, message: "Invalid JWT" });
  }
  const basic = await fetch(health(), { headers: { authorization: "Basic dXNlcjpwdw==" } });
  assert.deepEqual(basic.status, 401);
  assert.deepEqual(await basic.json(), { code: 401, message: "Invalid JWT" });
});

Deno.test("gateway accepts a valid user token", async () => {
  const user = await newUser();
  const res = await fetch(health(), { headers: { authorization: `Bearer ${user.token}` } });
  assert.deepEqual(res.status, 200);
  await res.body?.cancel();
});

Deno.test("gateway answers 404 Function not found for an unknown function", async () => {
  const res = await fetch(`${testStack().functionsUrl}/no-such-function/health`, {
    headers: { authorization: `Bearer ${testStack().anonKey}` },
  });
  assert.deepEqual(res.status, 404);
  assert.deepEqual(await res.text(), "Function not found");
});

Deno.test("gateway answers a CORS preflight without a token", async () => {
  const res = await fetch(`${testStack().functionsUrl}/tool-invoke`, {
    method: "OPTIONS",
    headers: { origin: "http://example.test", "access-control-request-method": "POST" },
  });
  assert.deepEqual(res.status, 200);
  assert.deepEqual(res.headers.get("access-control-allow-origin"), "*");
  assert(res.headers.get("access-control-allow-headers")?.includes("authorization"));
  await res.body?.cancel();
});

Deno.test("gateway maps the publishable and secret API keys to the anon and service_role JWTs (Kong)", async () => {
  const keys = await mintStackKeys(testStack().jwtSecret);
  const viaPublishable = await fetch(health(), { headers: { apikey: keys.publishable } });
  assert.deepEqual(viaPublishable.status, 200);
  await viaPublishable.body?.cancel();
  const unknownKey = await fetch(health(), { headers: { apikey: "sb_publishable_unknown" } });
  assert.deepEqual(unknownKey.status, 401);
  assert.deepEqual(await unknownKey.json(), { code: 401, message: "Invalid JWT" });
});

Deno.test("gateway passes the unchanged /<name>/... path to the function", async () => {
  const res = await fetch(`${testStack().functionsUrl}/tool-invoke/no/such/route?x=1`, {
    headers: { authorization: `Bearer ${testStack().anonKey}` },
  });
  assert.deepEqual(res.status, 404);
  const body = await res.json();
  assert.deepEqual(body.error.message, "No route GET /tool-invoke/no/such/route");
});

Deno.test("a function that fails to boot answers 503 BOOT_ERROR", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await Deno.writeTextFile(`${dir}/index.ts`, `throw new Error("bad setting");\n`);
    const keys = await mintStackKeys(testStack().jwtSecret);
    const gw = await createGateway({
      functions: [{ name: "broken", verifyJwt: true, entrypoint: `${dir}/index.ts` }],
      jwtSecret: testStack().jwtSecret,
      keys,
    });
    assert(gw.bootErrors.broken.includes("bad setting"));
    const res = await gw.fetch(
      new Request("http://gw/functions/v1/broken/x", { headers: { authorization: `Bearer ${keys.anon}` } }),
    );
    assert.deepEqual(res.status, 503);
    assert.deepEqual((await res.json()).code, "BOOT_ERROR");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
