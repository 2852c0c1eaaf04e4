/**
 * What the watcher and cleanup stack tests share: calling the service functions, waiting for an observation, and
 * writing a message straight through the bus's SQL API (to lose its webhook on purpose, or store bad bytes).
 */
import { createHash } from "node:crypto";
import type postgres from "postgres";
import { testStack, waitFor } from "../devstack/testing/env.ts";

export interface Answer {
  status: number;
  // deno-lint-ignore no-explicit-any
  json: any;
}

/** POST /functions/v1/<name> with `token` (none when null) and a JSON body. */
export async function post(name: "watcher" | "cleanup", token: string | null, body: unknown = {}): Promise<Answer> {
  const headers: Record<string, string> = { "content-type": "application/json" };
  if (token) headers.authorization = `Bearer ${token}`;
  const res = await fetch(`${testStack().functionsUrl}/${name}`, {
    method: "POST",
    headers,
    body: JSON.stringify(body),
  });
  const text = await res.text();
  try {
    return { status: res.status, json: JSON.parse(text) };
  } catch (err) {
    throw new Error(`expected JSON from ${name} (${res.status}), got ${JSON.stringify(text.slice(0, 200))}: ${err}`);
  }
}

export interface ObservationRow {
  id: string;
  verdict: "ok" | "warning" | "error";
  findings: Array<{ code: string; message: string; severity: string }>;
  partial: boolean;
  review: Record<string, unknown> | null;
  review_tokens: number | null;
}

/** The observations of `id` (normally exactly one). */
export function observations(sql: postgres.Sql, id: string): Promise<ObservationRow[]> {
  return sql<ObservationRow[]>`select id, verdict, findings, partial, review, review_tokens
                               from public.message_bus_observations where transaction_id = ${id}::uuid order by id`;
}

/** Waits (10 s by default, CONTRACT.md §7) for the first observation of `id`. */
export function waitForObservation(sql: postgres.Sql, id: string, timeoutMs = 10_000): Promise<ObservationRow> {
  return waitFor(`an observation of ${id}`, async () => (await observations(sql, id))[0], timeoutMs);
}

export const codes = (o: { findings: Array<{ code: string }> }) => o.findings.map((f) => f.code);

/** A chat completion body with `content`. */
export function completionBody(content: string): Uint8Array {
  return new TextEncoder().encode(JSON.stringify({
    id: "chatcmpl-direct",
    object: "chat.completion",
    model: "direct-sql",
    choices: [{ index: 0, message: { role: "assistant", content }, finish_reason: "stop" }],
    usage: { prompt_tokens: 5, completion_tokens: 5, total_tokens: 10 },
  }));
}

/**
 * Stores and completes a message in one transaction through bus.begin_message / append_chunk / complete_message
 * (the same calls tool-invoke makes). `stored` replaces the stored bytes (to store bytes that do not match the
 * checksum); `loseWebhook` leaves the message claimed by a drain that died (a lost wake, or a drain stopped
 * mid-batch), so that only the sweep, once the claim has run out, brings it to the watcher again.
 */
export async function storeMessage(
  sql: postgres.Sql,
  owner: string,
  body: Uint8Array,
  opts: { stored?: Uint8Array; loseWebhook?: boolean } = {},
): Promise<string> {
  const checksum = `sha256:${createHash("sha256").update(body).digest("hex")}`;
  const stored = opts.stored ?? body;
  return await sql.begin(async (tx) => {
    const [{ transaction_id: id }] = await tx<{ transaction_id: string }[]>`
      select transaction_id from bus.begin_message(${owner}::uuid, 'chat', 'kimi', 'direct-sql', null, null, 3600,
                                                   '{"content_type": "application/json", "parsed": true}'::jsonb)`;
    await tx`select bus.append_chunk(${id}::uuid, 0, ${stored})`;
    await tx`select bus.complete_message(${id}::uuid, ${body.length}, ${stored.length}, 'none', ${checksum}, 1, 'stop',
                                         '{"completion_tokens": 5}'::jsonb, 'direct-sql', 1, 1)`;
    if (opts.loseWebhook) {
      // As if a drain had taken the message and died (migration 20261126000900): claimed for an hour, no drain
      // takes it until that claim runs out.
      const lost = await tx`update bus.watch_queue set claimed_until = now() + interval '1 hour', attempts = 1
                            where transaction_id = ${id}::uuid returning 1`;
      if (lost.length !== 1) throw new Error(`expected ${id} in the watch queue, found ${lost.length} rows`);
    }
    return id;
  }) as string;
}
