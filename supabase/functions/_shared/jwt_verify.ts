/**
 * HS256 JWT verification as hosted Supabase does it (`exp` required), with two caches: the secret's CryptoKey is
 * imported once instead of for every token, and the claims of a token already verified are kept, keyed by the whole
 * token (header, claims and signature as received), so only the very bytes that were verified hit; `exp` and `nbf`
 * are checked again on every hit. A client sends the same token for its whole life, and jose's WebCrypto
 * verification cost ~0.2 ms of CPU per token here (bench/RESULTS.md, 1 KB fetch profile), twice per request with
 * the gateway's `verify_jwt`.
 */
import { type JWTPayload, jwtVerify } from "jose";

/** Tokens kept per secret; the oldest is dropped first. */
const MAX_TOKENS = 1024;

const keys = new Map<string, Promise<CryptoKey>>();
const verified = new Map<string, Map<string, JWTPayload>>();

/**
 * The claims of `token` when it is an HS256 JWT signed with `secret`, with an `exp` in the future (and no `nbf` in
 * the future).
 * @throws jose's errors (`code` ERR_J…), as jwtVerify does, for any other token.
 */
export async function verifyJwt(
  token: string,
  secret: string | Uint8Array,
  /** The clock, in milliseconds (tests give their own). */
  now: () => number = Date.now,
): Promise<JWTPayload> {
  const bytes = typeof secret === "string" ? new TextEncoder().encode(secret) : new Uint8Array(secret);
  const secretKey = bytes.toHex();
  const known = verified.get(secretKey)?.get(token);
  const seconds = now() / 1000;
  if (known && (known.exp as number) > seconds && (known.nbf === undefined || known.nbf <= seconds)) return known;
  let key = keys.get(secretKey);
  if (!key) {
    key = crypto.subtle.importKey(
      "raw",
      bytes,
      { name: "HMAC", hash: "SHA-256" },
      false,
      ["verify"],
    );
    keys.set(secretKey, key);
    key.catch(() => keys.delete(secretKey)); // a failed import is not kept (the caller gets its error below)
  }
  const { payload } = await jwtVerify(token, await key, {
    algorithms: ["HS256"],
    requiredClaims: ["exp"],
    currentDate: new Date(now()),
  });
  let tokens = verified.get(secretKey);
  if (!tokens) verified.set(secretKey, tokens = new Map());
  deepFreeze(payload); // shared by every later hit: nobody may change it
  tokens.delete(token);
  tokens.set(token, payload);
  if (tokens.size > MAX_TOKENS) tokens.delete(tokens.keys().next().value!);
  return payload;
}

function deepFreeze(value: unknown): void {
  if (typeof value !== "object" || value === null || Object.isFrozen(value)) return;
  Object.freeze(value);
  for (const v of Object.values(value)) deepFreeze(v);
}
