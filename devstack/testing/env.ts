/**
 * What tests that talk to the running local stack need: its URLs and keys (set by the test runner, see
 * stack_process.ts `testEnv()`), user tokens, and a direct database client.
 */
import postgres from "postgres";
import { mintUserToken } from "../keys.ts";

export interface TestStack {
  url: string;
  functionsUrl: string;
  dbUrl: string;
  anonKey: string;
  serviceRoleKey: string;
  jwtSecret: string;
  standinUrl: string;
}

/** Reads the stack's coordinates from the environment; throws naming what is missing. */
export function testStack(): TestStack {
  const need = (name: string) => {
    const v = Deno.env.get(name);
    if (!v) throw new Error(`${name} is not set: run the tests through 'npm test' (or set it to a running stack)`);
    return v;
  };
  const url = need("SUPABASE_URL");
  return {
    url,
    functionsUrl: `${url}/functions/v1`,
    dbUrl: need("SUPABASE_DB_URL"),
    anonKey: need("SUPABASE_ANON_KEY"),
    serviceRoleKey: need("SUPABASE_SERVICE_ROLE_KEY"),
    jwtSecret: need("JWT_SECRET"),
    standinUrl: need("PROVIDER_STANDIN_URL"),
  };
}

/** A new user: a random uuid and an access token for it. */
export async function newUser(opts: { expiresInSeconds?: number } = {}): Promise<{ id: string; token: string }> {
  const id = crypto.randomUUID();
  return { id, token: await mintUserToken(id, testStack().jwtSecret, opts) };
}

/** A superuser database client for assertions and set-up (close it with `sql.end()`). */
export function adminSql(): postgres.Sql {
  return postgres(testStack().dbUrl, { prepare: false, max: 4, onnotice: () => {} });
}

/** Polls `check` until it returns a value other than undefined, or throws after `timeoutMs`. */
export async function waitFor<T>(
  what: string,
  check: () => Promise<T | undefined>,
  timeoutMs = 10_000,
  intervalMs = 50,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const value = await check();
    if (value !== undefined) return value;
    await new Promise((r) => setTimeout(r, intervalMs));
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
}
