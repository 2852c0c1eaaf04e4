/**
 * The message path every caller shares (tool-invoke, the MCP server, replays): an invoke request that passed the
 * door is recorded with its request bytes before the provider is called, then run now (`sync`) or in the
 * background (`async`). Functions map the outcome to their protocol; failures are thrown as BusError with
 * `transaction_id` (CONTRACT.md §4).
 */
import type { Caller } from "../auth.ts";
import { BusError, invalidRequest } from "../errors.ts";
import type { Sql } from "../db.ts";
import type { Settings } from "../env.ts";
import { checkJson } from "../door/validate.ts";
import type { MemberRange } from "../door/json_scan.ts";
import { providerConfig } from "../providers/openai_compatible.ts";
import { toolNamed } from "../tools/registry.ts";
import { getMessage } from "../message/lifecycle.ts";
import type { MessageRow } from "../message/row.ts";
import { type InvokeBody, invokeBodyLimits, invokeBodySchema } from "./request.ts";
import { recordMessage } from "./record.ts";
import { runMessage } from "./run.ts";
import { failureError } from "./answers.ts";
import { resolveFiles } from "../files/resolve.ts";

/** The service role's messages belong to this owner unless the body names one. */
export const SERVICE_OWNER = "00000000-0000-0000-0000-000000000000";

export interface SubmitDeps {
  settings: Settings;
  sql: Sql;
  /** Background work (EdgeRuntime.waitUntil on the platform). */
  waitUntil: (p: Promise<unknown>) => void;
  /** Provider HTTP, injectable for tests. */
  fetch?: typeof fetch;
}

/** An invoke request that passed the door. */
export interface Submission {
  caller: Caller;
  body: InvokeBody;
  /** The request exactly as received (stored with the message). */
  request: Uint8Array;
  /** Byte ranges of the request's top-level members (`input` goes to the provider as received). */
  members: Map<string, MemberRange>;
  idempotencyKey?: string;
  replayOf?: string;
  /** Called once the request's bytes are no longer needed (after the answer for sync, after the run for async). */
  release?: () => void;
}

export type Submitted =
  | { status: "completed"; row: MessageRow; timing: { validatedMs: number; recordedMs: number } }
  | { status: "pending"; transactionId: string };

/**
 * Checks an invoke request that did not come through an HTTP door (an MCP tool call, a stored request run again):
 * the same checks and the same 400 as tool-invoke's door.
 * @throws BusError 400 naming every problem.
 */
export function checkInvokeRequest(
  request: Uint8Array,
  s: Settings,
): { body: InvokeBody; members: Map<string, MemberRange> } {
  const { value, members } = checkJson(request, invokeBodySchema(s), invokeBodyLimits(s));
  return { body: value, members };
}

/**
 * Records and runs one invoke. An idempotent repeat answers the first message's state (202 while it is pending,
 * its failure once failed) and calls nothing.
 * @throws BusError: 400, 503 `provider_not_configured`, or the message's failure with `transaction_id`.
 */
export async function submitInvoke(deps: SubmitDeps, sub: Submission): Promise<Submitted> {
  const s = deps.settings;
  const started = performance.now();
  let released = false;
  const release = () => {
    if (!released) {
      released = true;
      sub.release?.();
    }
  };
  let background = false;
  try {
    const { body } = sub;
    const owner = ownerOf(sub.caller, body.owner_id);
    const tool = toolNamed(body.tool);
    if (!tool) {
      throw invalidRequest(`Unknown tool ${JSON.stringify(body.tool)}`, [{ path: "tool", message: "unknown" }]);
    }
    const config = providerConfig(body.provider ?? s.MESSAGE_BUS_DEFAULT_PROVIDER, s);
    if (!config.apiKey) {
      throw new BusError(503, "provider_not_configured", `Provider ${config.name} has no API key configured`);
    }
    const model = body.model ?? config.defaultModel;
    // Files (issue #16): unknown, foreign or (inline) binary files are a 400 before anything is recorded.
    await resolveFiles(deps.sql, owner, body.input, config.name, s);
    const validatedMs = performance.now() - started;

    const recorded = await recordMessage(deps.sql, {
      owner,
      tool: tool.name,
      provider: config.name,
      model,
      sessionId: body.session_id,
      idempotencyKey: sub.idempotencyKey,
      ttlSeconds: body.ttl_seconds ?? s.MESSAGE_BUS_DEFAULT_TTL_SECONDS,
      metadata: body.metadata ?? {},
      mode: body.mode,
      replayOf: sub.replayOf,
      request: sub.request,
      leaseSeconds: s.MESSAGE_BUS_LEASE_SECS,
      maxRequestBytes: s.MESSAGE_BUS_MAX_PAYLOAD_MB * 1024 * 1024,
    });
    if (!recorded.created) return await existing(deps.sql, recorded.transactionId);
    const recordedMs = performance.now() - started;

    const input = sub.members.get("input");
    if (!input) throw new Error("an invoke request passed the door without an input member");
    const run = () =>
      runMessage({
        sql: deps.sql,
        transactionId: recorded.transactionId,
        run: 1,
        tool,
        input: body.input,
        inputJson: sub.request.subarray(input.start, input.end),
        provider: config,
        model,
        settings: s,
        fetch: deps.fetch,
      });
    if (body.mode === "async") {
      background = true;
      deps.waitUntil(
        run().catch((err) => {
          // Recorded on the message as failed (or, if even that failed, reaped when the lease runs out): a log line.
          console.error(
            `[invoke] async ${recorded.transactionId} failed:`,
            err instanceof BusError ? err.toBody() : err,
          );
        }).finally(release),
      );
      return { status: "pending", transactionId: recorded.transactionId };
    }
    return { status: "completed", row: await run(), timing: { validatedMs, recordedMs } };
  } finally {
    if (!background) release();
  }
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

/** An idempotent repeat: the same transaction, answered by its current state (CONTRACT.md §4). */
async function existing(sql: Sql, transactionId: string): Promise<Submitted> {
  const row = await getMessage(sql, transactionId);
  if (!row) throw new Error(`message ${transactionId} vanished`);
  if (row.status === "pending") return { status: "pending", transactionId };
  if (row.status === "failed") throw failureError(row.transaction_id, row.error ?? {});
  return { status: "completed", row, timing: { validatedMs: 0, recordedMs: 0 } };
}
