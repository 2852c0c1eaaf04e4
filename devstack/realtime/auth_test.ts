import assert from "node:assert/strict";
import { resolveApiKey, TokenError, verifyToken } from "./auth.ts";
import { JWT_SECRET, sign } from "./_testing.ts";

const secret = new TextEncoder().encode(JWT_SECRET);
const now = Math.floor(Date.now() / 1000);

async function rejects(token: string, code: string, message: RegExp) {
  const err = await verifyToken(token, secret).then(() => null, (e) => e);
  assert.ok(err instanceof TokenError, `expected a TokenError, got ${err}`);
  assert.equal(err.code, code);
  assert.match(err.message, message);
  assert.equal(err.reason, `${code}: ${err.message}`);
}

Deno.test("verifyToken() returns the claims of a valid HS256 token", async () => {
  const claims = await verifyToken(await sign({ role: "authenticated", sub: "u1", exp: now + 60 }), secret);
  assert.deepEqual(claims, { role: "authenticated", sub: "u1", exp: now + 60 });
});

Deno.test("verifyToken() rejects tokens with the server's messages (supabase-platform.md §3.4, §3.6)", async () => {
  await rejects("garbage", "MalformedJWT", /^The token provided is not a valid JWT/);
  await rejects(await sign({ role: "anon", exp: now + 60 }, "x".repeat(40)), "JwtSignatureError", /signature/);
  await rejects(await sign({ role: "anon", exp: now - 5 }), "InvalidJWTToken", /^Token has expired [5-7] seconds ago$/);
  await rejects(await sign({ exp: now + 60 }), "InvalidJWTToken", /^Fields `role` and `exp` are required in JWT$/);
  await rejects(await sign({ role: "anon" }), "InvalidJWTToken", /^Fields `role` and `exp` are required in JWT$/);
  const b64url = (s: string) => btoa(s).replace(/=+$/, "").replace(/\+/g, "-").replace(/\//g, "_");
  const unsigned = `${b64url('{"alg":"none"}')}.${b64url(`{"role":"anon","exp":${now + 60}}`)}.`;
  await rejects(unsigned, "JwtSignerError", /JWT signer/);
});

Deno.test("resolveApiKey() maps sb_ keys to the anon and service_role JWTs like Kong (§3.4)", () => {
  const keys = { anon: "ANON", serviceRole: "SERVICE", publishable: "sb_publishable_a", secret: "sb_secret_b" };
  assert.equal(resolveApiKey("sb_publishable_a", keys), "ANON");
  assert.equal(resolveApiKey("sb_secret_b", keys), "SERVICE");
  assert.equal(resolveApiKey("sb_secret_other", keys), "sb_secret_other");
  assert.equal(resolveApiKey("eyJ.jwt", keys), "eyJ.jwt");
  const legacyOnly = { anon: "ANON", serviceRole: "SERVICE" };
  assert.equal(resolveApiKey("sb_publishable_any", legacyOnly), "ANON");
  assert.equal(resolveApiKey("sb_secret_any", legacyOnly), "SERVICE");
});
