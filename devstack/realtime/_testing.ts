/**
 * Test helpers for the Realtime stand-in: a server on 127.0.0.1:0 against SUPABASE_DB_URL, the real supabase-js
 * client pinned to a protocol version, JWT minting and bounded waits.
 */
import { createClient, type RealtimeChannel, type SupabaseClient } from "@supabase/supabase-js";
import { SignJWT } from "jose";
import postgres from "postgres";
import { createRealtime, type Realtime } from "./server.ts";

/** JWT secret of the test stack (env JWT_SECRET, else the CLI default). */
export const JWT_SECRET = Deno.env.get("JWT_SECRET") ?? "super-secret-jwt-token-with-at-least-32-characters-long";

/** Both protocol versions, for tests that must pass with each (supabase-platform.md §8.3). */
export const VSNS = ["1.0.0", "2.0.0"] as const;

/** Signs HS256 claims with the test secret. */
export function sign(claims: Record<string, unknown>, secret = JWT_SECRET): Promise<string> {
  return new SignJWT(claims).setProtectedHeader({ alg: "HS256", typ: "JWT" }).sign(new TextEncoder().encode(secret));
}

/** A user access token: role authenticated, `sub`, expiring in `ttlSeconds`. */
export function userToken(sub: string, ttlSeconds = 3600): Promise<string> {
  const now = Math.floor(Date.now() / 1000);
  return sign({ aud: "authenticated", role: "authenticated", sub, iat: now, exp: now + ttlSeconds });
}

/** A running stand-in plus a test connection to the same database. */
export interface TestStack {
  url: string;
  keys: { anon: string; serviceRole: string; publishable: string; secret: string };
  rt: Realtime;
  sql: postgres.Sql;
  logs: string[];
  stop(): Promise<void>;
}

/** Starts the stand-in on an ephemeral port; requires SUPABASE_DB_URL. */
export async function startStack(): Promise<TestStack> {
  const dbUrl = Deno.env.get("SUPABASE_DB_URL");
  if (!dbUrl) throw new Error("Expected env SUPABASE_DB_URL (a database with devstack/sql/*.sql applied)");
  const exp = Math.floor(Date.now() / 1000) + 24 * 3600;
  const keys = {
    anon: await sign({ iss: "supabase-demo", role: "anon", exp }),
    serviceRole: await sign({ iss: "supabase-demo", role: "service_role", exp }),
    publishable: "sb_publishable_realtime_test",
    secret: "sb_secret_realtime_test",
  };
  const logs: string[] = [];
  const rt = await createRealtime({ dbUrl, jwtSecret: JWT_SECRET, keys, log: (m) => logs.push(m) });
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, rt.fetch);
  const sql = postgres(dbUrl, { max: 4, onnotice: () => {} });
  return {
    url: `http://127.0.0.1:${server.addr.port}`,
    keys,
    rt,
    sql,
    logs,
    async stop() {
      await rt.close();
      await server.shutdown();
      await sql.end({ timeout: 5 });
    },
  };
}

/** Options of {@link connect}. */
export interface ConnectOptions {
  vsn: "1.0.0" | "2.0.0";
  /** The API key (default: the publishable key). */
  apikey?: string;
  /** A user JWT given with `supabase.realtime.setAuth` (§3.6). */
  token?: string;
  /** A supabase-js `accessToken` callback instead (the source of truth on every heartbeat). */
  accessToken?: () => Promise<string>;
  heartbeatIntervalMs?: number;
  heartbeatCallback?: (status: string) => void;
}

/** The real supabase-js client; realtime-js 2.119.1 pins the protocol with `realtime.vsn` (RealtimeClient.ts). */
export function connect(stack: TestStack, o: ConnectOptions): SupabaseClient {
  const client = createClient(stack.url, o.apikey ?? stack.keys.publishable, {
    auth: { persistSession: false, autoRefreshToken: false, detectSessionInUrl: false },
    accessToken: o.accessToken,
    realtime: {
      vsn: o.vsn,
      heartbeatIntervalMs: o.heartbeatIntervalMs,
      heartbeatCallback: o.heartbeatCallback,
      // No automatic reconnects or rejoins while a test is tearing down.
      reconnectAfterMs: () => 60_000,
    },
  });
  if (o.token) client.realtime.setAuth(o.token);
  return client;
}

/** Ends every channel and the socket of `client`. */
export async function disconnect(client: SupabaseClient): Promise<void> {
  await client.removeAllChannels();
  await client.realtime.disconnect();
}

/** Subscribes and resolves with the first status (and error) the client reports, within `ms`. */
export function subscribe(channel: RealtimeChannel, ms = 5000): Promise<{ status: string; err?: Error }> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`No subscribe status for ${channel.topic} within ${ms} ms`)), ms);
    channel.subscribe((status, err) => {
      clearTimeout(timer);
      resolve({ status, err });
    });
  });
}

/** Collects the payloads of `broadcast` events named `event` (register before subscribing). */
export function collect(channel: RealtimeChannel, event: string): Record<string, unknown>[] {
  const got: Record<string, unknown>[] = [];
  channel.on("broadcast", { event }, (payload) => got.push(payload));
  return got;
}

/** Polls `ok` every 10 ms until it holds; throws after `ms` with `what`. */
export async function waitFor(ok: () => boolean, what: string, ms = 5000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!ok()) {
    if (Date.now() > deadline) throw new Error(`Timed out after ${ms} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

/**
 * Creates the test-only policies: a user may read and write `<prefix><uid>`, only read broadcasts of
 * `<prefix>ro:<uid>`, only read presence of `<prefix>presence:<uid>`. Returns the function that drops them.
 */
export async function createTestPolicies(
  sql: postgres.Sql,
  name: string,
  prefix: string,
): Promise<() => Promise<void>> {
  const drop = async () => {
    await sql.unsafe(`drop policy if exists "${name}_read" on realtime.messages`);
    await sql.unsafe(`drop policy if exists "${name}_write" on realtime.messages`);
    await sql.unsafe(`drop policy if exists "${name}_read_only" on realtime.messages`);
    await sql.unsafe(`drop policy if exists "${name}_presence_only" on realtime.messages`);
  };
  await drop();
  const own = `(select realtime.topic()) = '${prefix}' || (select auth.uid())::text`;
  await sql.unsafe(`create policy "${name}_read" on realtime.messages for select to authenticated
    using (${own} and extension = 'broadcast')`);
  await sql.unsafe(`create policy "${name}_write" on realtime.messages for insert to authenticated
    with check (${own} and extension = 'broadcast')`);
  // A topic that is readable but not writable: '<prefix>ro:' || uid.
  await sql.unsafe(`create policy "${name}_read_only" on realtime.messages for select to authenticated
    using ((select realtime.topic()) = '${prefix}ro:' || (select auth.uid())::text and extension = 'broadcast')`);
  // A topic where only presence may be read: '<prefix>presence:' || uid.
  await sql.unsafe(`create policy "${name}_presence_only" on realtime.messages for select to authenticated
    using ((select realtime.topic()) = '${prefix}presence:' || (select auth.uid())::text and extension = 'presence')`);
  return drop;
}
