/**
 * The floor of a durable gateway, for the invoke benchmark: a plain HTTP server in its own process (like the stack)
 * that, for `POST /commit`, inserts the request's bytes (1 KB) into Postgres and answers once that commit is durable
 * (synchronous_commit on, fsync on in the benchmark's cluster); `POST /loopback` answers the same bytes without the
 * database. Whatever a claim-check bus adds over a direct call, it cannot add less than this: one loopback HTTP hop
 * and one durable commit.
 *
 * Usage: deno run -A bench/floor_server.ts <port> <postgres url>   (prints "ready" once listening)
 */
import postgres from "postgres";
import { noDelaySocket } from "../supabase/functions/_shared/db_socket.ts";

const [port, dbUrl] = Deno.args;
// Prepared statements and a connection per concurrent client: the cheapest way postgres.js commits a row.
const sql = postgres(dbUrl, {
  prepare: true,
  max: 20,
  onnotice: () => {},
  connection: { synchronous_commit: "on" },
  ...({ socket: noDelaySocket } as object),
});
await sql`create table if not exists public.bench_floor (id bigint generated always as identity primary key,
  body bytea not null, created_at timestamptz not null default now())`;
await sql`truncate public.bench_floor`;

Deno.serve({ hostname: "127.0.0.1", port: Number(port), onListen: () => console.log("ready") }, async (req) => {
  const body = new Uint8Array(await req.arrayBuffer());
  const path = new URL(req.url).pathname;
  if (path === "/commit") {
    await sql`insert into public.bench_floor (body) values (${body})`;
  } else if (path !== "/loopback") {
    return new Response("not found", { status: 404 });
  }
  return new Response(body, { headers: { "content-type": "application/json" } });
});
