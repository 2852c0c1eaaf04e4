/**
 * `POST /tool-invoke` after the door: record the message (and its request) before the provider is called, run it
 * now (`sync`) or in the background (`async`, `EdgeRuntime.waitUntil`), and answer with the transaction ID only.
 */
import type { Context } from "hono";
import { BusError } from "../_shared/errors.ts";
import { type Caller, callerOf } from "../_shared/auth.ts";
import { db, type Sql } from "../_shared/db.ts";
import type { Settings } from "../_shared/env.ts";
import { invalidRequest } from "../_shared/errors.ts";
import { keepRawBody, rawBody } from "../_shared/door/validate.ts";
import { providerConfig } from "../_shared/providers/openai_compatible.ts";
import { toolNamed } from "../_shared/tools/registry.ts";
import type { InvokeBody } from "../_shared/invoke/request.ts";
import { recordMessage } from "../_shared/invoke/record.ts";
import { runMessage } from "../_shared/invoke/run.ts";
import { completedBody, failureError } from "../_shared/invoke/answers.ts";
import { getMessage } from "../_shared/message/lifecycle.ts";

/** The service role's messages belong to this owner unless the body names one. */
export const SERVICE_OWNER = "00000000-0000-0000-0000-000000000000";

export interface InvokeDeps {
  settings: Settings;
  /** Provider HTTP, injectable for tests. */
  fetch?: typeof fetch;
  /** Background work (EdgeRuntime.waitUntil on the platform). */
  waitUntil: (p: Promise<unknown>) => void;
}

/** Handles one invoke request that passed the door. */
export async function invoke(c: Context, deps: InvokeDeps): Promise<Response> {
  const s = deps.settings;
  const started = performance.now();
  const caller = callerOf(c);
  const body = c.req.valid("json" as never) as InvokeBody;
  const headers = c.req.valid("header" as never) as { "idempotency-key"?: string };
  const raw = rawBody(c);
  const owner = ownerOf(caller, body.owner_id);
  const tool = toolNamed(body.tool)!; // the door checked the name
  const config = providerConfig(body.provider ?? s.MESSAGE_BUS_DEFAULT_PROVIDER, s);
  if (!config.apiKey) {
    throw new BusError(503, "provider_not_configured", `Provider ${config.name} has no API key configured`);
  }
  const model = body.model ?? config.defaultModel;
  const validated = performance.now();

  const sql = db();
  const recorded = await recordMessage(sql, {
    owner,
    tool: tool.name,
    provider: config.name,
    model,
    sessionId: body.session_id,
    idempotencyKey: headers["idempotency-key"],
    ttlSeconds: body.ttl_seconds ?? s.MESSAGE_BUS_DEFAULT_TTL_SECONDS,
    metadata: body.metadata ?? {},
    mode: body.mode,
    request: raw.bytes,
    leaseSeconds: s.MESSAGE_BUS_LEASE_SECS,
    maxRequestBytes: s.MESSAGE_BUS_MAX_PAYLOAD_MB * 1024 * 1024,
  });
  if (!recorded.created) return await answerExisting(c, sql, recorded.transactionId);
  const recordedAt = performance.now();

  const input = raw.members.get("input")!; // the door checked that it is there
  const run = () =>
    runMessage({
      sql,
      transactionId: recorded.transactionId,
      run: 1,
      tool,
      input: body.input,
      inputJson: raw.bytes.subarray(input.start, input.end),
      provider: config,
      model,
      settings: s,
      fetch: deps.fetch,
    });
  if (body.mode === "async") {
    const kept = keepRawBody(c); // the background run still needs the body's bytes
    deps.waitUntil(
      run().catch((err) => {
        // Recorded on the message as failed (or, if even that failed, reaped when the lease runs out): a log line.
        console.error(`[invoke] async ${recorded.transactionId} failed:`, err instanceof BusError ? err.toBody() : err);
      }).finally(() => kept.release()),
    );
    return c.json({ transaction_id: recorded.transactionId, status: "pending" }, 202);
  }
  const row = await run();
  // Where the time went (Server-Timing, visible in browser dev tools and used by the benchmark).
  c.header(
    "server-timing",
    [
      `validate;dur=${(validated - started).toFixed(1)}`,
      `record;dur=${(recordedAt - validated).toFixed(1)}`,
      `provider;dur=${row.provider_ms ?? 0}`,
      `store;dur=${row.write_ms ?? 0}`,
      `total;dur=${(performance.now() - started).toFixed(1)}`,
    ].join(", "),
  );
  return c.json(completedBody(row), 200);
}

/** Who owns the message: the caller, or for the service role the body's `owner_id`. */
function ownerOf(caller: Caller, ownerId: string | undefined): string {
  if (caller.role === "service_role") return ownerId ?? SERVICE_OWNER;
  if (ownerId && ownerId !== caller.sub) {
    throw invalidRequest("owner_id may only be set by the service role", [
      { path: "owner_id", message: "not allowed for user tokens" },
    ]);
  }
  return caller.sub!;
}

/** An idempotent replay: the same transaction, answered by its current state (CONTRACT.md §4). */
async function answerExisting(c: Context, sql: Sql, transactionId: string): Promise<Response> {
  const row = await getMessage(sql, transactionId);
  if (!row) throw new Error(`message ${transactionId} vanished`);
  if (row.status === "pending") return c.json({ transaction_id: row.transaction_id, status: "pending" }, 202);
  if (row.status === "failed") throw failureError(row.transaction_id, row.error ?? {});
  return c.json(completedBody(row), 200);
}
