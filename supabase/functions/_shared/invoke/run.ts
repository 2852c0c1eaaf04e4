/**
 * Running a recorded message: call the provider, store its raw response, complete the message. The worker holds
 * the message's lease while it runs. Every failure is recorded on the message (`failed` with `{ code, message }`)
 * before it is answered; when recording it fails too, the caller still gets the contract's error with the
 * transaction id. Raw database and driver errors go to the log, never onto the message or into an answer.
 */
import OpenAI from "openai";
import { BusError } from "../errors.ts";
import type { Sql } from "../db.ts";
import type { Settings } from "../env.ts";
import { storePayload } from "../payload_store.ts";
import { SummaryCollector } from "../providers/response_summary.ts";
import { providerClient, type ProviderConfig, sendProviderRequest } from "../providers/openai_compatible.ts";
import type { Tool } from "../tools/tool.ts";
import { completeMessage, failMessage, getMessage } from "../message/lifecycle.ts";
import type { MessageRow } from "../message/row.ts";
import { failureError } from "./answers.ts";
import { Lease } from "./lease.ts";
import { fileMessages } from "../files/messages.ts";

export interface RunArgs {
  sql: Sql;
  transactionId: string;
  /** Which run of the message this is (1 for the worker that recorded it). */
  run: number;
  tool: Tool<Record<string, unknown>>;
  /** The validated input (for facts such as `wantsJson`); the provider gets `inputJson`. */
  input: Record<string, unknown>;
  /** The input's JSON text exactly as received. */
  inputJson: Uint8Array;
  provider: ProviderConfig;
  model: string;
  settings: Settings;
  /** Provider HTTP, injectable for tests. */
  fetch?: typeof fetch;
}

/**
 * Runs the message and returns its completed row.
 * @throws BusError with `transaction_id` and `status: "failed"`: 502 (provider failed), 413 (response too large),
 *   500 (storage failed, or the message was taken from this worker) — recorded unless the body says
 *   `recorded: false`.
 */
export async function runMessage(a: RunArgs): Promise<MessageRow> {
  const s = a.settings;
  const lease = new Lease(a.sql, a.transactionId, a.run, s.MESSAGE_BUS_LEASE_SECS).start();
  try {
    const client = providerClient(a.provider, {
      timeoutMs: s.PROVIDER_TIMEOUT_MS,
      maxRetries: s.PROVIDER_MAX_RETRIES,
      fetch: a.fetch,
    });
    const started = performance.now();
    let response: Response;
    try {
      // Files (issue #16): the input's files as system messages, the way this provider takes them (undefined: none).
      const messages = await fileMessages({ ...a, client, input: a.input, settings: s });
      response = await sendProviderRequest(client, a.tool.providerRequest(a.inputJson, a.model, messages));
    } catch (err) {
      throw await recordFailure(
        a,
        describeProviderError(err, a.provider.name),
        Math.round(performance.now() - started),
      );
    }
    const providerMs = Math.round(performance.now() - started);

    const writeStarted = performance.now();
    const summary = new SummaryCollector();
    let stored;
    try {
      const body = response.body ?? ReadableStream.from<Uint8Array>([]);
      stored = await storePayload(
        a.sql,
        a.transactionId,
        summary.tap(body),
        s.MESSAGE_BUS_MAX_PAYLOAD_MB * 1024 * 1024,
      );
    } catch (err) {
      if (err instanceof BusError && err.status === 413) {
        throw await recordFailure(
          a,
          { code: "payload_too_large", message: err.message, provider: a.provider.name },
          providerMs,
        );
      }
      throw await recordFailure(a, storageFailed(a, err), providerMs);
    }
    const facts = summary.summary();
    try {
      return await completeMessage(a.sql, a.transactionId, {
        ...stored,
        run: a.run,
        finishReason: facts.finishReason,
        usage: facts.usage,
        model: facts.model,
        providerMs,
        writeMs: Math.round(performance.now() - writeStarted),
        metadata: {
          content_type: response.headers.get("content-type") ?? "application/octet-stream",
          wants_json: a.tool.wantsJson(a.input),
          parsed: facts.parsed,
        },
      });
    } catch (err) {
      // Either the message is no longer this run's (reaped after its lease ran out, or taken by another run), or
      // the database failed: answer from what is recorded, if anything.
      const current = await getMessage(a.sql, a.transactionId).catch((readErr) => {
        console.error(`[invoke] reading ${a.transactionId} after a failed completion failed:`, readErr);
        return undefined;
      });
      if (current && current.status !== "pending") {
        console.error(`[invoke] ${a.transactionId} run ${a.run}: completion refused, the message is ${current.status}`);
        if (current.status === "completed") return current;
        throw failureError(
          a.transactionId,
          current.error ?? { code: "worker_lost", message: "The message was reaped" },
        );
      }
      throw await recordFailure(a, storageFailed(a, err), providerMs);
    }
  } finally {
    lease.stop();
  }
}

/** A storage failure as recorded: the cause goes to the log, the message says only that it failed. */
function storageFailed(a: RunArgs, err: unknown): Record<string, unknown> {
  console.error(`[invoke] storing the response of ${a.transactionId} failed:`, err);
  return {
    code: "storage_failed",
    message: "Storing the provider response failed; the cause is in the function log under this transaction id",
    provider: a.provider.name,
  };
}

/**
 * Records the failure and returns the error to answer. If recording fails (the database is gone), the caller still
 * gets the contract's error with the transaction id, marked `recorded: false` (the lease runs out and the reaper
 * records it as `worker_lost`).
 */
async function recordFailure(a: RunArgs, error: Record<string, unknown>, providerMs: number | null): Promise<BusError> {
  try {
    await failMessage(a.sql, a.transactionId, error, { run: a.run, providerMs });
    return failureError(a.transactionId, error);
  } catch (err) {
    console.error(`[invoke] recording the failure of ${a.transactionId} (${error.code}) failed:`, err);
    return failureError(a.transactionId, error, { recorded: false });
  }
}

/** A JSON description of why the provider call failed (stored on the message and answered with 502). */
export function describeProviderError(err: unknown, provider: string): Record<string, unknown> {
  if (err instanceof BusError) return { ...err.details, provider, code: err.code, message: err.message }; // files
  if (err instanceof OpenAI.APIError && err.status) {
    return {
      code: "provider_error",
      provider,
      provider_status: err.status,
      message: `${provider} answered ${err.status}: ${err.message}`,
      provider_error: err.error ?? null,
    };
  }
  if (err instanceof OpenAI.APIConnectionTimeoutError) {
    return { code: "provider_timeout", provider, message: `${provider} did not answer in time` };
  }
  if (err instanceof OpenAI.APIConnectionError) {
    return { code: "provider_unreachable", provider, message: `${provider} could not be reached: ${err.message}` };
  }
  console.error(`[invoke] unexpected provider call failure (${provider}):`, err);
  return { code: "provider_error", provider, message: `${provider} call failed (logged)` };
}
