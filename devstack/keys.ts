/**
 * API keys of the local stack, minted the way the Supabase CLI does (supabase-platform.md §1.6: HS256 JWTs with
 * `iss: "supabase-demo"`, `role`, `exp: 1983812996`, signed with the JWT secret), plus helpers for tests.
 */
import { SignJWT } from "jose";

export interface StackKeys {
  anon: string;
  serviceRole: string;
  /** New-format keys (§1.6); the gateway maps them to the JWTs above like Kong does (§1.9). */
  publishable: string;
  secret: string;
}

/** The CLI's fixed expiry for the local anon/service_role keys (§1.6). */
const CLI_KEY_EXP = 1983812996;

/** Mints the anon and service_role keys for `jwtSecret`. */
export async function mintStackKeys(jwtSecret: string): Promise<StackKeys> {
  return {
    anon: await signJwt({ iss: "supabase-demo", role: "anon", exp: CLI_KEY_EXP }, jwtSecret),
    serviceRole: await signJwt({ iss: "supabase-demo", role: "service_role", exp: CLI_KEY_EXP }, jwtSecret),
    publishable: "sb_publishable_ACJWlzQHlZjBrEguHvfOxg_3BJgxAaH",
    secret: "sb_secret_N7UND0UgjKTVK-Uodkm0Hg_xSvEMPvz",
  };
}

/** Signs `claims` as an HS256 JWT. */
export function signJwt(claims: Record<string, unknown>, jwtSecret: string): Promise<string> {
  return new SignJWT(claims).setProtectedHeader({ alg: "HS256", typ: "JWT" }).sign(
    new TextEncoder().encode(jwtSecret),
  );
}

/** A user access token as CONTRACT.md §2 describes it: role authenticated, sub, exp (default: one hour). */
export function mintUserToken(
  sub: string,
  jwtSecret: string,
  opts: { expiresInSeconds?: number; extra?: Record<string, unknown> } = {},
): Promise<string> {
  const now = Math.floor(Date.now() / 1000);
  return signJwt({
    aud: "authenticated",
    role: "authenticated",
    sub,
    iat: now,
    exp: now + (opts.expiresInSeconds ?? 3600),
    ...opts.extra,
  }, jwtSecret);
}
