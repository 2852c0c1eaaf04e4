import assert from "node:assert/strict";
import { SignJWT } from "jose";
import { TokenVerifier } from "./token_verifier.ts";

const SECRET = "a-test-secret-that-is-at-least-32-characters-long";
const sign = (claims: Record<string, unknown>, secret = SECRET, alg = "HS256") =>
  new SignJWT(claims).setProtectedHeader({ alg, typ: "JWT" }).sign(new TextEncoder().encode(secret));

Deno.test("TokenVerifier accepts a valid HS256 token, again from memory, and refuses it once it expired", async () => {
  let now = 1_800_000_000_000;
  const v = new TokenVerifier(SECRET, { now: () => now });
  const token = await sign({ role: "authenticated", sub: "u", exp: now / 1000 + 60 });
  assert.equal((await v.verify(token)).role, "authenticated");
  const again = await v.verify(token);
  assert.equal(again.sub, "u");
  assert.ok(Object.isFrozen(again), "remembered claims cannot be changed by a caller");
  now += 60_000; // exp reached
  await assert.rejects(() => v.verify(token), (err: Error & { code?: string }) => err.code === "ERR_JWT_EXPIRED");
});

Deno.test("TokenVerifier refuses a token before its nbf and accepts it from then on", async () => {
  let now = 1_800_000_000_000;
  const v = new TokenVerifier(SECRET, { now: () => now });
  const token = await sign({ role: "anon", nbf: now / 1000 + 10, exp: now / 1000 + 60 });
  await assert.rejects(() => v.verify(token));
  now += 10_000;
  assert.equal((await v.verify(token)).role, "anon");
});

Deno.test("TokenVerifier refuses tokens without exp, of another secret or algorithm, and altered ones", async () => {
  const v = new TokenVerifier(SECRET);
  const exp = Math.floor(Date.now() / 1000) + 60;
  await assert.rejects(async () => v.verify(await sign({ role: "anon" })));
  await assert.rejects(async () =>
    v.verify(await sign({ role: "anon", exp }, "another-secret-that-is-at-least-32-chars"))
  );
  await assert.rejects(async () => v.verify(await sign({ role: "anon", exp }, SECRET, "HS512")));
  const good = await sign({ role: "anon", exp });
  await v.verify(good);
  const [h, p, s] = good.split(".");
  const forged = `${h}.${btoa(JSON.stringify({ role: "service_role", exp })).replace(/=+$/, "")}.${s}`;
  assert.notEqual(forged, `${h}.${p}.${s}`);
  await assert.rejects(() => v.verify(forged), "a remembered signature does not cover other claims");
});

Deno.test("TokenVerifier forgets the oldest token past its bound", async () => {
  const v = new TokenVerifier(SECRET, { remembered: 2 });
  const exp = Math.floor(Date.now() / 1000) + 60;
  const tokens = await Promise.all([1, 2, 3].map((n) => sign({ role: "anon", n, exp })));
  for (const t of tokens) assert.equal((await v.verify(t)).n, tokens.indexOf(t) + 1);
  assert.equal(v.size, 2);
  for (const t of tokens) assert.ok(await v.verify(t)); // a forgotten token is verified again
  assert.equal(v.size, 2);
});
