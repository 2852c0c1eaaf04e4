/**
 * Runs one recorded message: calls the provider, then stores its raw response and completes the message atomically
 * (one statement for a response of one chunk, one transaction for a larger one). Every failure is recorded on the message (`failed` with an error) before it is reported.
 */
import OpenAI from "openai";
import { BusError } from "../_shared/errors.ts";
import type { Sql } from "../_shared/db.ts";
import { payloadDb, storePayload } from "../_shared/payload_store.ts";
import { SummaryCollector } from "../_shared/providers/response_summary.ts";
import { completeMessage, failMessage, type MessageRow } from "./message_rows.ts";
import type { Tool } from "./tools/tool.ts";

export interface ExecuteArgs {
  sql: Sql;
  transactionId: string;
  tool: Tool<Record<string, unknown>>;
  input: Record<string, unknown>;
  client: OpenAI;
  provider: string;
  model: string;
  maxPayloadBytes: number;
}

/**
 * Calls the provider and stores the response.
 * @throws BusError 502 (provider failed), 413 (response too large) or 500 (storage failed), each with
 *   `transaction_id` and `status: "failed"` — the failure is already recorded.
 */
export async function executeMessage(a: ExecuteArgs): Promise<MessageRow> {
  const started = performance.now();
  let response: Response;
  try {
    response = await a.tool.call({ client: a.client, model: a.model, input: a.input });
  } catch (err) {
    const providerMs = Math.round(performance.now() - started);
    const error = describeProviderError(err, a.provider);
    await failMessage(a.sql, a.transactionId, error, providerMs);
    throw new BusError(502, String(error.code), String(error.message), error, failedExtra(a.transactionId));
  }
  const providerMs = Math.round(performance.now() - started);

  const writeStarted = performance.now();
  const summary = new SummaryCollector();
  try {
    const body = response.body ?? ReadableStream.from<Uint8Array>([]);
    return await storePayload(payloadDb(a.sql), a.transactionId, summary.tap(body), a.maxPayloadBytes, (q, stored) => {
      const s = summary.summary();
      return completeMessage(q, a.transactionId, {
        ...stored,
        finishReason: s.finishReason,
        usage: s.usage,
        model: s.model,
        providerMs,
        writeMs: Math.round(performance.now() - writeStarted),
        metadata: {
          content_type: response.headers.get("content-type") ?? "application/octet-stream",
          wants_json: a.tool.wantsJson(a.input),
          parsed: s.parsed,
        },
      });
    });
  } catch (err) {
    const tooLarge = err instanceof BusError && err.status === 413;
    const error = tooLarge
      ? { code: "payload_too_large", message: err.message, provider: a.provider }
      : { code: "storage_failed", message: err instanceof Error ? err.message : String(err), provider: a.provider };
    if (!tooLarge) console.error(`storing ${a.transactionId} failed:`, err);
    await failMessage(a.sql, a.transactionId, error, providerMs);
    if (tooLarge) throw new BusError(413, "payload_too_large", err.message, err.details, failedExtra(a.transactionId));
    throw new BusError(
      500,
      "storage_failed",
      "Storing the provider response failed (logged)",
      {},
      failedExtra(a.transactionId),
    );
  }
}

function failedExtra(transactionId: string) {
  return { transaction_id: transactionId, status: "failed" };
}

/** A JSON description of why the provider call failed (stored on the message and answered with 502). */
export function describeProviderError(err: unknown, provider: string): Record<string, unknown> {
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
  return { code: "provider_error", provider, message: err instanceof Error ? err.message : String(err) };
}
