/**
 * HS256 JWT verification with `jose` (supabase-platform.md §7), remembering the tokens it verified until they expire.
 *
 * A client sends the same token with every request until it refreshes it (an hour by default), and verifying one
 * cost ~0.2 ms of CPU each time here: the HMAC key imported again, WebCrypto's verify, base64url and JSON decoding —
 * 15 % of the stack's CPU per invoke, since the gateway and the function each verified it (bench/RESULTS.md "Invoke
 * path"). A token verified before is accepted again on its exact bytes while `exp` (and `nbf`, when present) still
 * allow it: HMAC over the same bytes gives the same answer, and the time claims are checked on every use.
 */
import { type JWTPayload, jwtVerify } from "jose";

/** Verified tokens kept per verifier; the oldest is forgotten first. */
const REMEMBERED = 2048;

export class TokenVerifier {
  #key: Promise<CryptoKey>;
  #verified = new Map<string, Readonly<JWTPayload>>();

  readonly remembered: number;
  #now: () => number;

  /** `now` (milliseconds, default Date.now) is for tests; `remembered` bounds the tokens kept. */
  constructor(secret: string | Uint8Array, opts: { remembered?: number; now?: () => number } = {}) {
    this.remembered = opts.remembered ?? REMEMBERED;
    this.#now = opts.now ?? Date.now;
    const raw = typeof secret === "string" ? new TextEncoder().encode(secret) : secret;
    // Imported once (jose imports a raw secret on every call).
    this.#key = crypto.subtle.importKey(
      "raw",
      raw as Uint8Array<ArrayBuffer>,
      { name: "HMAC", hash: "SHA-256" },
      false,
      [
        "verify",
      ],
    );
  }

  /** Tokens remembered now. */
  get size(): number {
    return this.#verified.size;
  }

  /**
   * The claims of `token`: HS256 with this secret, `exp` required and in the future, `nbf` (if any) reached.
   * @throws jose's JOSEError (code `ERR_J…`) when the token is invalid.
   */
  async verify(token: string): Promise<Readonly<JWTPayload>> {
    const known = this.#verified.get(token);
    if (known) {
      if (stillValid(known, this.#now() / 1000)) return known;
      this.#verified.delete(token);
    }
    // `exp` is required as hosted Supabase requires it; jose alone accepts a token that never expires.
    const { payload } = await jwtVerify(token, await this.#key, {
      algorithms: ["HS256"],
      requiredClaims: ["exp"],
      currentDate: new Date(this.#now()),
    });
    const claims = Object.freeze(payload);
    if (this.#verified.size >= this.remembered) this.#verified.delete(this.#verified.keys().next().value!);
    this.#verified.set(token, claims);
    return claims;
  }
}

/** jose's time checks without clock tolerance: expired at `exp`, valid from `nbf`. */
function stillValid(claims: JWTPayload, now: number): boolean {
  if (typeof claims.exp !== "number" || claims.exp <= now) return false;
  return typeof claims.nbf !== "number" || claims.nbf <= now;
}

const verifiers = new Map<string, TokenVerifier>();

/** The verifier of `secret` (one per secret and instance). */
export function verifierFor(secret: string): TokenVerifier {
  let v = verifiers.get(secret);
  if (!v) verifiers.set(secret, v = new TokenVerifier(secret));
  return v;
}
