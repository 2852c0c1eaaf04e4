/**
 * Who is calling. The platform's `verify_jwt` already rejected bad tokens for user-facing functions; the code
 * verifies again with `jose` (HS256 with the project's JWT secret, supabase-platform.md §7) so that a function
 * deployed with `verify_jwt = false` is never open, and so that `watcher` and `cleanup` can accept the service
 * role only (§1.10 recommendation).
 */
import { verifierFor } from "./token_verifier.ts";
import type { Context, MiddlewareHandler } from "hono";
import { unauthorized } from "./errors.ts";
import { settings } from "./env.ts";

export type Role = "anon" | "authenticated" | "service_role";

export interface Caller {
  role: Role;
  /** The user id (`sub`) of an authenticated caller. */
  sub?: string;
  /** The verified claims, set as `request.jwt.claims` for RLS (§7). */
  claims: Readonly<Record<string, unknown>>;
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/**
 * Verifies the bearer token of `c`.
 * @throws BusError 401 when the token is missing, invalid, expired, has no `exp`, or has no usable role.
 */
export async function authenticate(c: Context, jwtSecret = settings().JWT_SECRET): Promise<Caller> {
  const header = c.req.header("authorization") ?? "";
  const match = /^Bearer\s+(\S+)$/i.exec(header);
  if (!match) throw unauthorized("Missing authorization header");
  let claims: Readonly<Record<string, unknown>>;
  try {
    claims = await verifierFor(jwtSecret).verify(match[1]);
  } catch (err) {
    throw unauthorized(`Invalid JWT: ${err instanceof Error ? err.message : String(err)}`);
  }
  const role = claims.role;
  if (role !== "anon" && role !== "authenticated" && role !== "service_role") {
    throw unauthorized(`Invalid JWT: unsupported role ${JSON.stringify(role)}`);
  }
  const sub = typeof claims.sub === "string" ? claims.sub : undefined;
  if (role === "authenticated" && (!sub || !UUID.test(sub))) {
    throw unauthorized("Invalid JWT: an authenticated token needs a uuid sub");
  }
  return { role, sub, claims };
}

/**
 * Accepts only the service role: a service_role JWT in `Authorization`, or a secret key (`sb_secret_…`) in
 * `apikey` (§1.10).
 * @throws BusError 401 for anyone else.
 */
export async function requireServiceRole(c: Context): Promise<Caller> {
  const apikey = c.req.header("apikey");
  if (apikey && apikey.startsWith("sb_secret_") && secretKeys().includes(apikey)) {
    return { role: "service_role", claims: { role: "service_role" } };
  }
  const caller = await authenticate(c);
  if (caller.role !== "service_role") throw unauthorized("This function accepts the service_role key only");
  return caller;
}

function secretKeys(): string[] {
  const raw = Deno.env.get("SUPABASE_SECRET_KEYS");
  if (!raw) return [];
  try {
    return Object.values(JSON.parse(raw) as Record<string, string>);
  } catch (err) {
    console.error(`SUPABASE_SECRET_KEYS is not JSON (${err}); secret keys are not accepted`);
    return [];
  }
}

/**
 * The caller of a message route: a user or the service role (an anon key owns no messages and RLS grants it
 * nothing, so 401, as on every message route).
 * @throws BusError 401.
 */
export async function messageCaller(c: Context): Promise<Caller> {
  const caller = await authenticate(c);
  if (caller.role === "anon") throw unauthorized("A user or service_role token is required");
  return caller;
}

const CALLER = "bus.caller";

/** Middleware: authenticates a user or the service role ({@link messageCaller}) before anything else is read. */
export const messageCallerDoor: MiddlewareHandler = async function messageCallerDoor(c, next) {
  c.set(CALLER as never, (await messageCaller(c)) as never);
  await next();
};

/** The caller that {@link messageCallerDoor} authenticated on this request. */
export function callerOf(c: Context): Caller {
  const caller = c.get(CALLER as never) as Caller | undefined;
  if (!caller) throw new Error("callerOf() needs messageCallerDoor on the route");
  return caller;
}

/** Middleware: the service role only ({@link requireServiceRole}), before anything else is read. */
export const serviceRoleDoor: MiddlewareHandler = async function serviceRoleDoor(c, next) {
  c.set(CALLER as never, (await requireServiceRole(c)) as never);
  await next();
};
