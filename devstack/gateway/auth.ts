/**
 * The gateway's token handling, copied from the platform:
 * - Kong's Authorization rewrite for new-format API keys (supabase-platform.md §1.9 step 2);
 * - `verify_jwt`: a valid HS256 JWT with an `exp` claim in `Authorization: Bearer`, else 401 with the hosted bodies
 *   (§1.9 step 4, §1.10; CONTRACT.md §2). A token without `exp` is refused as on hosted Supabase (issue #11; the
 *   reference documents the same rule for Realtime, §3.4); jose alone would accept it, so the claim is required.
 */
import type { StackKeys } from "../keys.ts";
import { TokenVerifier } from "../../supabase/functions/_shared/token_verifier.ts";

export const MISSING_AUTH = { code: 401, message: "Missing authorization header" };
export const INVALID_JWT = { code: 401, message: "Invalid JWT" };

/** Kong's request-transformer rewrite (§1.9 step 2). Returns the headers to forward. */
export function rewriteAuthorization(headers: Headers, keys: StackKeys): Headers {
  const auth = headers.get("authorization");
  if (auth && !/^Bearer sb_/i.test(auth)) return headers;
  const apikey = headers.get("apikey");
  if (!apikey) return headers;
  const out = new Headers(headers);
  if (apikey === keys.secret) out.set("authorization", `Bearer ${keys.serviceRole}`);
  else if (apikey === keys.publishable) out.set("authorization", `Bearer ${keys.anon}`);
  else out.set("authorization", apikey.startsWith("Bearer ") ? apikey : `Bearer ${apikey}`);
  return out;
}

const verifiers = new WeakMap<Uint8Array, TokenVerifier>();

/**
 * Checks `Authorization` as `verify_jwt` does; returns the 401 body on failure, null when valid. Tokens verified
 * before are remembered until they expire (token_verifier.ts): the platform's own cost, not the product's.
 */
export async function verifyBearer(
  headers: Headers,
  jwtSecret: Uint8Array,
): Promise<typeof MISSING_AUTH | typeof INVALID_JWT | null> {
  const auth = headers.get("authorization");
  if (!auth) return MISSING_AUTH;
  const match = /^Bearer\s+(\S+)$/i.exec(auth);
  if (!match) return INVALID_JWT;
  try {
    let verifier = verifiers.get(jwtSecret);
    if (!verifier) verifiers.set(jwtSecret, verifier = new TokenVerifier(jwtSecret));
    await verifier.verify(match[1]);
    return null;
  } catch (err) {
    if (err instanceof Error && "code" in err && String((err as { code: unknown }).code).startsWith("ERR_J")) {
      return INVALID_JWT;
    }
    throw err;
  }
}
