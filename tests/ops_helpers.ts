/**
 * What the operations stack tests share (CONTRACT.md §12): calls of the `ops` function, a parsed scrape, the fold,
 * messages written straight through the bus's SQL API (so a test controls provider, model, attempts and errors
 * exactly, as the invoke path's own statements do), and a tiny webhook sink on 127.0.0.1.
 */
import type postgres from "postgres";
import { testStack } from "../devstack/testing/env.ts";
import { strictLines } from "../supabase/functions/ops/_exposition_check.ts";

export interface Answer {
  status: number;
  headers: Headers;
  // deno-lint-ignore no-explicit-any
  json: any;
  text: string;
}

/** Calls `/functions/v1/ops<path>` as `token` (the service role by default; null: no token). */
export async function ops(
  path: string,
  opts: { method?: string; body?: unknown; token?: string | null } = {},
): Promise<Answer> {
  const token = opts.token === undefined ? testStack().serviceRoleKey : opts.token;
  const headers: Record<string, string> = {};
  if (token) headers.authorization = `Bearer ${token}`;
  if (opts.body !== undefined) headers["content-type"] = "application/json";
  const res = await fetch(`${testStack().functionsUrl}/ops${path}`, {
    method: opts.method ?? (opts.body === undefined ? "GET" : "POST"),
    headers,
    body: opts.body === undefined ? undefined : JSON.stringify(opts.body),
  });
  const text = await res.text();
  let json: unknown = null;
  if ((res.headers.get("content-type") ?? "").includes("json")) json = JSON.parse(text);
  return { status: res.status, headers: res.headers, json, text };
}

/** Folds the rollups now, without the settle time (the test knows its rows are committed). */
export async function fold(): Promise<Record<string, unknown>> {
  const res = await ops("/fold", { body: { settle_seconds: 0 } });
  if (res.status !== 200) throw new Error(`fold answered ${res.status}: ${res.text}`);
  return res.json.fold;
}

/** A scrape as `series line → value` (label sets sorted as written), after checking its grammar. */
export async function scrape(): Promise<Map<string, number>> {
  const res = await ops("/metrics");
  if (res.status !== 200) throw new Error(`metrics answered ${res.status}: ${res.text}`);
  const out = new Map<string, number>();
  for (const line of strictLines(res.text)) {
    const cut = line.lastIndexOf(" ");
    out.set(line.slice(0, cut), Number(line.slice(cut + 1).replace("+Inf", "Infinity")));
  }
  return out;
}

/** A series key as the scrape writes it: labels sorted by name (le last). */
export function series(name: string, labels: Record<string, string>, le?: string): string {
  const entries = Object.entries(labels).sort(([a], [b]) => a.localeCompare(b));
  if (le !== undefined) entries.push(["le", le]);
  return entries.length ? `${name}{${entries.map(([k, v]) => `${k}="${v}"`).join(",")}}` : name;
}

export interface SqlMessage {
  provider: string;
  model: string;
  owner?: string;
}

/** Records a pending message through bus.begin_message; returns its id. */
export async function beginMessage(sql: postgres.Sql, m: SqlMessage): Promise<string> {
  const [row] = await sql<{ transaction_id: string }[]>`
    select transaction_id from bus.begin_message(
      p_owner => ${m.owner ?? crypto.randomUUID()}::uuid, p_tool => 'chat', p_provider => ${m.provider},
      p_model => ${m.model}, p_session_id => null, p_idempotency_key => null, p_ttl_seconds => 3600)`;
  return row.transaction_id;
}

/** Completes it with a 2-byte payload through bus.complete_message (as the invoke path does). */
export async function completeMessage(
  sql: postgres.Sql,
  id: string,
  opts: { providerMs?: number; attempts?: unknown[]; provider?: string; model?: string } = {},
): Promise<void> {
  await sql`
    select 1 from bus.complete_message(
      p_transaction_id => ${id}::uuid, p_payload_size => 2, p_stored_size => 2, p_compression => 'none',
      p_checksum => ${"sha256:" + "4".repeat(64)}, p_chunk_count => 1, p_finish_reason => 'stop', p_usage => null,
      p_model => ${opts.model ?? null}, p_provider_ms => ${opts.providerMs ?? 5}, p_write_ms => 1,
      p_last_chunk => ${new Uint8Array([0x7b, 0x7d])},
      p_attempts => ${opts.attempts ? sql.json(opts.attempts as never) : null}, p_provider => ${
    opts.provider ?? null
  })`;
}

/** Fails it with `error` through bus.fail_message. */
export async function failMessage(sql: postgres.Sql, id: string, error: Record<string, unknown>): Promise<void> {
  await sql`select 1 from bus.fail_message(${id}::uuid, ${sql.json(error as never)}, 7)`;
}

/** A webhook receiver on 127.0.0.1 that keeps every JSON body POSTed to it. */
export function webhookSink(): { url: string; bodies: Array<Record<string, unknown>>; close(): Promise<void> } {
  const bodies: Array<Record<string, unknown>> = [];
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, async (req) => {
    bodies.push(await req.json());
    return new Response("ok");
  });
  return {
    url: `http://127.0.0.1:${server.addr.port}/hook`,
    bodies,
    close: () => server.shutdown(),
  };
}
