/**
 * The local Supabase Realtime stand-in (supabase-platform.md §8.3): the WebSocket endpoint that
 * `@supabase/realtime-js` talks to unchanged, the REST broadcast endpoint, and the DB tap that turns committed
 * `realtime.send(...)` rows into pushes. The hosted Realtime cluster is the production path.
 */
import postgres from "postgres";
import { type RealtimeKeys, resolveApiKey, TokenError, verifyToken } from "./auth.ts";
import { Connection } from "./connection.ts";
import { type Context, Hub } from "./hub.ts";
import { handleBroadcastRequest } from "./rest.ts";
import { parseVsn } from "./serializer.ts";
import { type DbBroadcast, startTap } from "./tap.ts";

/** Options of {@link createRealtime}. */
export interface RealtimeOptions {
  /** Postgres URL of a role that can LISTEN, read realtime.messages and `set role` (e.g. postgres). */
  dbUrl: string;
  /** The HS256 secret of the project's JWTs. */
  jwtSecret: string;
  keys: RealtimeKeys;
  log?: (msg: string) => void;
}

/** A running stand-in. */
export interface Realtime {
  /** Serves `GET /realtime/v1/websocket` and `POST /realtime/v1/api/broadcast`; anything else is 404. */
  fetch(req: Request): Response | Promise<Response>;
  /** Closes sockets, the LISTEN and the database connections. */
  close(): Promise<void>;
}

const WEBSOCKET_PATH = "/realtime/v1/websocket";
const BROADCAST_PATH = "/realtime/v1/api/broadcast";
const utf8 = new TextEncoder();

/**
 * Starts the stand-in: connects to Postgres and starts listening for committed broadcasts.
 *
 * @example
 * ```ts
 * const rt = await createRealtime({ dbUrl, jwtSecret, keys: { anon, serviceRole } });
 * const server = Deno.serve({ hostname: "127.0.0.1", port: 0 }, rt.fetch);
 * // ws://127.0.0.1:<port>/realtime/v1/websocket?apikey=<anon>&vsn=2.0.0
 * ```
 */
export async function createRealtime(opts: RealtimeOptions): Promise<Realtime> {
  const log = opts.log ?? ((msg: string) => console.error(`[realtime] ${msg}`));
  const sql = postgres(opts.dbUrl, {
    max: 4,
    onnotice: (n) => log(`postgres ${n.severity}: ${n.message}`),
    connection: { application_name: "devstack-realtime" },
  });
  const ctx: Context = { sql, secret: utf8.encode(opts.jwtSecret), hub: new Hub(), log };
  const connections = new Set<Connection>();
  let closed = false;
  const tap = await startTap(sql, (m) => deliverFromDb(ctx, m), log).catch(async (err) => {
    await sql.end({ timeout: 1 });
    throw err;
  });

  // §3.1: hosted Realtime drops messages older than 72 hours (daily partitions); the stand-in deletes them hourly.
  const pruneOld = async () => {
    try {
      const rows = await sql`delete from realtime.messages where inserted_at < now() - interval '72 hours'`;
      if (rows.count > 0) log(`pruned ${rows.count} realtime.messages rows older than 72 hours`);
    } catch (err) {
      log(`pruning realtime.messages failed (retried in an hour): ${err instanceof Error ? err.message : err}`);
    }
  };
  await pruneOld();
  const pruneTimer = setInterval(pruneOld, 3_600_000);

  async function upgrade(req: Request, url: URL): Promise<Response> {
    if (req.headers.get("upgrade")?.toLowerCase() !== "websocket") {
      return Response.json({ error: "Expected a WebSocket upgrade request" }, { status: 400 });
    }
    const vsnParam = url.searchParams.get("vsn");
    const vsn = parseVsn(vsnParam);
    if (vsn === null) return Response.json({ error: `Unsupported protocol version: ${vsnParam}` }, { status: 400 });
    // §3.4: the token comes from header x-api-key or query apikey, after Kong's sb_ key rewrite.
    const apikey = req.headers.get("x-api-key") ?? url.searchParams.get("apikey");
    if (!apikey) return Response.json({ error: "API key missing" }, { status: 401 });
    const token = resolveApiKey(apikey, opts.keys);
    try {
      await verifyToken(token, ctx.secret);
    } catch (err) {
      if (err instanceof TokenError) return Response.json({ error: err.message }, { status: 401 });
      throw err;
    }
    // Read the headers first: the request is consumed by the upgrade.
    const xHeaders = Object.fromEntries([...req.headers].filter(([name]) => name.startsWith("x-")));
    const { socket, response } = Deno.upgradeWebSocket(req);
    const conn = new Connection(ctx, socket, vsn, token, xHeaders, () => connections.delete(conn));
    connections.add(conn);
    return response;
  }

  return {
    async fetch(req) {
      const url = new URL(req.url);
      if (closed) return Response.json({ error: "Realtime is shutting down" }, { status: 503 });
      try {
        if (url.pathname === WEBSOCKET_PATH && req.method === "GET") return await upgrade(req, url);
        if (url.pathname === BROADCAST_PATH && req.method === "POST") {
          return await handleBroadcastRequest(ctx, opts.keys, req);
        }
        return Response.json({ error: "Not Found" }, { status: 404 });
      } catch (err) {
        log(`${req.method} ${url.pathname} failed: ${err instanceof Error ? err.stack : err}`);
        return Response.json({ error: "Internal server error" }, { status: 500 });
      }
    },
    async close() {
      if (closed) return;
      closed = true;
      clearInterval(pruneTimer);
      for (const conn of connections) conn.close();
      await Promise.all([...connections].map((c) => c.idle()));
      connections.clear();
      await tap.close();
      await sql.end({ timeout: 5 });
    },
  };
}

/**
 * §3.7: a database broadcast goes to every channel joined to `realtime:<topic>` with the same privacy, as a user
 * broadcast with meta `{"id": <message id>}` (binary kind 4 on vsn 2, a JSON object on vsn 1).
 */
function deliverFromDb(ctx: Context, m: DbBroadcast): void {
  const json = m.payloadJson !== null;
  const bytes = json ? utf8.encode(m.payloadJson!) : m.binaryPayload!;
  ctx.hub.dispatch(m.topic, m.private, (topic) => ({
    type: "user_broadcast",
    broadcast: { topic, event: m.event, json, bytes, meta: { id: m.id } },
  }));
}
