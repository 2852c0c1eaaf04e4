/** verifyJwt: jose's HS256 verification with `exp` required, and its caches never accepting what jose would refuse. */
import assert from "node:assert/strict";
import { SignJWT } from "jose";
import { verifyJwt } from "./jwt_verify.ts";

const SECRET = "a-test-secret-with-at-least-32-characters";
const T0 = 1_800_000_000_000; // a fixed clock, in ms

function sign(claims: Record<string, unknown>, secret = SECRET, alg = "HS256"): Promise<string> {
  return new SignJWT(claims).setProtectedHeader({ alg }).sign(new TextEncoder().encode(secret));
}

Deno.test("verifyJwt: a valid token's claims, the same frozen object on the next call", async () => {
  const token = await sign({ sub: "u1", role: "authenticated", exp: T0 / 1000 + 60, app: { x: 1 } });
  const first = await verifyJwt(token, SECRET, () => T0);
  assert.equal(first.sub, "u1");
  assert.equal(await verifyJwt(token, new TextEncoder().encode(SECRET), () => T0), first, "bytes or string alike");
  assert.ok(Object.isFrozen(first) && Object.isFrozen(first.app));
});

Deno.test("verifyJwt: a verified token is refused once it has expired, whatever the cache holds", async () => {
  const token = await sign({ sub: "u2", exp: T0 / 1000 + 10 });
  await verifyJwt(token, SECRET, () => T0);
  await assert.rejects(verifyJwt(token, SECRET, () => T0 + 10_000), { code: "ERR_JWT_EXPIRED" });
  await assert.rejects(verifyJwt(token, SECRET, () => T0 + 60_000), { code: "ERR_JWT_EXPIRED" });
});

Deno.test("verifyJwt: a changed signature, another secret, no exp, a future nbf or another alg are refused", async () => {
  const token = await sign({ sub: "u3", exp: T0 / 1000 + 60 });
  await verifyJwt(token, SECRET, () => T0); // cached
  const [h, p, sig] = token.split(".");
  const flipped = `${h}.${p}.${sig.slice(0, -2)}${sig.endsWith("AA") ? "AB" : "AA"}`;
  await assert.rejects(verifyJwt(flipped, SECRET, () => T0), { code: "ERR_JWS_SIGNATURE_VERIFICATION_FAILED" });
  await assert.rejects(verifyJwt(token, `${SECRET}-other`, () => T0), {
    code: "ERR_JWS_SIGNATURE_VERIFICATION_FAILED",
  });
  await assert.rejects(verifyJwt(await sign({ sub: "u4" }), SECRET, () => T0), {
    code: "ERR_JWT_CLAIM_VALIDATION_FAILED",
  });
  const later = await sign({ sub: "u5", exp: T0 / 1000 + 60, nbf: T0 / 1000 + 30 });
  await assert.rejects(verifyJwt(later, SECRET, () => T0), { code: "ERR_JWT_CLAIM_VALIDATION_FAILED" });
  assert.equal((await verifyJwt(later, SECRET, () => T0 + 31_000)).sub, "u5", "valid once nbf has passed");
  await assert.rejects(
    verifyJwt(await sign({ sub: "u6", exp: T0 / 1000 + 60 }, SECRET, "HS512"), SECRET, () => T0),
    { code: "ERR_JOSE_ALG_NOT_ALLOWED" },
  );
});
