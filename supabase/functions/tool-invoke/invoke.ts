/**
 * `POST /tool-invoke`: validate, record the message before the provider is called, then run it now (`sync`) or
 * in the background (`async`, `EdgeRuntime.waitUntil`), and answer with the transaction ID only.
 */
import type { Context } from "hono";
import { badRequest, BusError } from "../_shared/errors.ts";
import { authenticate } from "../_shared/auth.ts";
import { db } from "../_shared/db.ts";
import type { Settings } from "../_shared/env.ts";
import { providerClient, providerConfig } from "../_shared/providers/openai_compatible.ts";
import { describeIssues, idempotencyKeySchema, invokeBodySchema } from "./schemas.ts";
import { readJsonBody } from "./read_body.ts";
import { tools } from "./tools/registry.ts";
import { beginMessage, getMessage, type MessageRow } from "./message_rows.ts";
import { executeMessage } from "./execute.ts";

/** The service role's messages belong to this owner unless the body names one. */
export const SERVICE_OWNER = "00000000-0000-0000-0000-000000000000";

export interface InvokeDeps {
  settings: Settings;
  /** Provider HTTP, injectable for tests. */
  fetch?: typeof fetch;
  /** Background work (EdgeRuntime.waitUntil on the platform). */
  waitUntil: (p: Promise<unknown>) => void;
}

/** Handles one invoke request. */
export async function handleInvoke(c: Context, deps: InvokeDeps): Promise<Response> {
  const s = deps.settings;
  const started = performance.now();
  const caller = await authenticate(c);
  if (caller.role === "anon") throw new BusError(401, "unauthorized", "A user or service_role token is required");

  const maxBytes = s.MESSAGE_BUS_MAX_PAYLOAD_MB * 1024 * 1024;
  const raw = await readJsonBody(c, maxBytes);
  const parsed = invokeBodySchema.safeParse(raw);
  if (!parsed.success) throw badRequest("Invalid request body", { issues: describeIssues(parsed.error) });
  const body = parsed.data;

  const idemHeader = c.req.header("idempotency-key");
  const idem = idemHeader === undefined ? undefined : idempotencyKeySchema.safeParse(idemHeader);
  if (idem && !idem.success) {
    throw badRequest("Invalid Idempotency-Key header", { issues: describeIssues(idem.error, ["Idempotency-Key"]) });
  }

  const tool = tools[body.tool];
  if (!tool) {
    throw badRequest(`Unknown tool ${JSON.stringify(body.tool)}`, {
      issues: [{ path: "tool", message: `must be one of: ${Object.keys(tools).join(", ")}` }],
    });
  }
  const input = tool.inputSchema.safeParse(body.input);
  if (!input.success) {
    throw badRequest(`Invalid input for tool ${body.tool}`, { issues: describeIssues(input.error, ["input"]) });
  }

  const ttl = body.ttl_seconds ?? s.MESSAGE_BUS_DEFAULT_TTL_SECONDS;
  if (ttl < s.MESSAGE_BUS_MIN_TTL_SECONDS || ttl > s.MESSAGE_BUS_MAX_TTL_SECONDS) {
    throw badRequest("ttl_seconds is out of bounds", {
      issues: [{
        path: "ttl_seconds",
        message: `must be between ${s.MESSAGE_BUS_MIN_TTL_SECONDS} and ${s.MESSAGE_BUS_MAX_TTL_SECONDS}`,
      }],
    });
  }
  let owner: string;
  if (caller.role === "service_role") owner = body.owner_id ?? SERVICE_OWNER;
  else if (body.owner_id && body.owner_id !== caller.sub) {
    throw badRequest("owner_id may only be set by the service role", {
      issues: [{ path: "owner_id", message: "not allowed for user tokens" }],
    });
  } else owner = caller.sub!;

  const config = providerConfig(body.provider ?? s.MESSAGE_BUS_DEFAULT_PROVIDER, s);
  if (!config.apiKey) {
    throw new BusError(503, "provider_not_configured", `Provider ${config.name} has no API key configured`);
  }
  const model = body.model ?? config.defaultModel;
  const validated = performance.now();
  const sql = db();
  const { transactionId, created } = await beginMessage(sql, {
    owner,
    tool: tool.name,
    provider: config.name,
    model,
    sessionId: body.session_id,
    idempotencyKey: idem?.data,
    ttlSeconds: ttl,
    metadata: body.metadata ?? {},
    answerAfterCompletion: body.mode !== "async",
  });
  if (!created) return answerExisting(c, await getMessage(sql, transactionId));
  const recorded = performance.now();

  const client = providerClient(config, {
    timeoutMs: s.PROVIDER_TIMEOUT_MS,
    maxRetries: s.PROVIDER_MAX_RETRIES,
    fetch: deps.fetch,
  });
  const run = () =>
    executeMessage({
      sql,
      transactionId,
      tool,
      input: input.data as Record<string, unknown>,
      client,
      provider: config.name,
      model,
      maxPayloadBytes: maxBytes,
    });
  if (body.mode === "async") {
    deps.waitUntil(
      run().catch((err) => {
        // Already recorded on the message as failed; this is the log line for operators.
        console.error(`async invoke ${transactionId} failed:`, err instanceof BusError ? err.toBody() : err);
      }),
    );
    return c.json({ transaction_id: transactionId, status: "pending" }, 202);
  }
  const row = await run();
  // Where the time went (Server-Timing, visible in browser dev tools and used by the benchmark).
  c.header(
    "server-timing",
    [
      `validate;dur=${(validated - started).toFixed(1)}`,
      `record;dur=${(recorded - validated).toFixed(1)}`,
      `provider;dur=${row.provider_ms ?? 0}`,
      `store;dur=${row.write_ms ?? 0}`,
      `total;dur=${(performance.now() - started).toFixed(1)}`,
    ].join(", "),
  );
  return c.json(completedBody(row), 200);
}

/** An idempotent replay: the same transaction, answered by its current state (CONTRACT.md §4). */
function answerExisting(c: Context, row: MessageRow): Response {
  if (row.status === "pending") return c.json({ transaction_id: row.transaction_id, status: "pending" }, 202);
  if (row.status === "failed") {
    const error = row.error ?? {};
    const status = error.code === "payload_too_large" ? 413 : error.code === "storage_failed" ? 500 : 502;
    throw new BusError(status, String(error.code ?? "provider_failed"), String(error.message ?? "failed"), error, {
      transaction_id: row.transaction_id,
      status: "failed",
    });
  }
  return c.json(completedBody(row), 200);
}

function completedBody(row: MessageRow) {
  return {
    transaction_id: row.transaction_id,
    status: row.status,
    checksum: row.checksum,
    payload_size_bytes: Number(row.payload_size_bytes),
    provider: row.provider,
    model: row.model,
    finish_reason: row.finish_reason,
    expires_at: new Date(row.expires_at).toISOString(),
  };
}
