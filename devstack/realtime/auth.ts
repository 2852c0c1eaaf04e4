/**
 * Token checks of the Realtime server (supabase-platform.md §3.4, §3.6): HS256 JWTs signed with the project secret,
 * with `role` and `exp` required, and the Kong rewrite of `sb_` API keys to the anon / service_role JWTs.
 */
import { decodeProtectedHeader, errors, jwtVerify } from "jose";

/** Verified JWT claims; `role` and `exp` are always present. */
export interface Claims {
  role: string;
  exp: number;
  sub?: string;
  [claim: string]: unknown;
}

/** API keys of the stack: the legacy JWTs and, optionally, the new-format keys that map onto them. */
export interface RealtimeKeys {
  anon: string;
  serviceRole: string;
  publishable?: string;
  secret?: string;
}

/** A rejected token: `code` is the Realtime log code, `message` the text clients see (§3.4, §3.6). */
export class TokenError extends Error {
  override name = "TokenError";
  constructor(readonly code: string, message: string) {
    super(message);
  }
  /** The join error reason, `"<Code>: <message>"` (§3.2). */
  get reason(): string {
    return `${this.code}: ${this.message}`;
  }
}

const HS_ALGORITHMS = ["HS256", "HS384", "HS512"];

/**
 * Verifies `token` with the HS secret and returns its claims.
 * @throws {TokenError} malformed, badly signed, expired, or without `role` and `exp`.
 */
export async function verifyToken(token: string, secret: Uint8Array, now = Date.now()): Promise<Claims> {
  const cleaned = token.replace(/\s/g, "");
  let alg: unknown;
  try {
    alg = decodeProtectedHeader(cleaned).alg;
  } catch {
    throw new TokenError("MalformedJWT", "The token provided is not a valid JWT");
  }
  if (typeof alg !== "string" || !HS_ALGORITHMS.includes(alg)) {
    // The stand-in has no JWKS, so only HS* tokens can be checked (cf. §7).
    throw new TokenError(
      "JwtSignerError",
      "Failed to generate JWT signer, check your JWT secret or JWKS configuration",
    );
  }
  try {
    const { payload } = await jwtVerify(cleaned, secret, { algorithms: HS_ALGORITHMS, currentDate: new Date(now) });
    return checkClaims(payload, now);
  } catch (err) {
    if (err instanceof TokenError) throw err;
    if (err instanceof errors.JWSSignatureVerificationFailed) {
      throw new TokenError("JwtSignatureError", "Failed to validate JWT signature");
    }
    // The signature was fine but a time claim failed: report it with the server's wording.
    if (err instanceof errors.JWTClaimValidationFailed || err instanceof errors.JWTExpired) {
      checkClaims(err.payload, now);
    }
    throw new TokenError("MalformedJWT", `The token provided is not a valid JWT (${(err as Error).message})`);
  }
}

/** Applies the `role`/`exp` rules of §3.4 and the expiry message of §3.6 to verified claims. */
export function checkClaims(payload: Record<string, unknown>, now = Date.now()): Claims {
  const { role, exp } = payload;
  if (role === undefined || exp === undefined) {
    throw new TokenError("InvalidJWTToken", "Fields `role` and `exp` are required in JWT");
  }
  if (typeof role !== "string" || typeof exp !== "number" || !Number.isInteger(exp) || exp <= 0) {
    throw new TokenError("InvalidJWTToken", "Token expiration time is invalid");
  }
  const nowSeconds = Math.floor(now / 1000);
  if (exp <= nowSeconds) {
    throw new TokenError("InvalidJWTToken", `Token has expired ${nowSeconds - exp} seconds ago`);
  }
  return payload as Claims;
}

/**
 * Maps an API key to the JWT the server validates, like Kong does for `/realtime/v1/` (§3.4): the publishable key
 * becomes the anon JWT and the secret key the service_role JWT. When those keys are not configured, any key with the
 * `sb_publishable_` / `sb_secret_` prefix is mapped. Other strings are returned unchanged.
 */
export function resolveApiKey(apikey: string, keys: RealtimeKeys): string {
  if (keys.publishable ? apikey === keys.publishable : apikey.startsWith("sb_publishable_")) return keys.anon;
  if (keys.secret ? apikey === keys.secret : apikey.startsWith("sb_secret_")) return keys.serviceRole;
  return apikey;
}

/** Milliseconds until `claims` expire, at least 0. */
export function msUntilExpiry(claims: Claims, now = Date.now()): number {
  return Math.max(0, claims.exp * 1000 - now);
}
