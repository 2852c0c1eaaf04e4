/**
 * `POST /openai/v1/chat/completions` after the door (CONTRACT.md §10): the request becomes a bus message and the
 * answer is the provider's, byte for byte — read back from the store for a whole answer (with its checksum), or
 * relayed as it arrives for a stream (stored as relayed).
 */
import type { Context } from "hono";
import { callerOf } from "../_shared/auth.ts";
import { db } from "../_shared/db.ts";
import { keepRawBody } from "../_shared/door/validate.ts";
import { rateLimitHeaders, type SubmitDeps, submitInvoke } from "../_shared/invoke/submit.ts";
import type { MessageRow } from "../_shared/message/row.ts";
import {
  ChecksumMismatchError,
  integrityError,
  storedChunks,
  storedMetaOf,
  verifiedPayload,
} from "../_shared/payload_read.ts";
import { StreamRelay } from "../_shared/stream/relay.ts";
import { asInvoke, type CompletionBody, type CompletionHeaders } from "./request.ts";

/** Handles one chat completion request that passed the door. */
export async function chatCompletion(c: Context, deps: Omit<SubmitDeps, "sql">): Promise<Response> {
  const s = deps.settings;
  const body = c.req.valid("json" as never) as CompletionBody;
  const headers = c.req.valid("header" as never) as CompletionHeaders;
  // The body's reservation in the body budget is handed to the submission: the invoke made of it (a copy of about
  // its size) lives as long as the run, which for a stream outlives the answer.
  const raw = keepRawBody(c);
  const invoke = asInvoke(raw, body, headers, s);
  const caller = callerOf(c);
  const common = {
    caller,
    body: invoke.body,
    request: invoke.request,
    members: invoke.members,
    idempotencyKey: headers["idempotency-key"],
    release: raw.release,
  };
  const out = new Headers();

  if (body.stream) {
    const relay = new StreamRelay();
    const submitted = await submitInvoke({ ...deps, sql: db() }, { ...common, stream: { relay } });
    if (submitted.rate) setAll(out, rateLimitHeaders(submitted.rate));
    if (submitted.status === "streaming") {
      out.set("x-bus-transaction-id", submitted.transactionId);
      // Before the first event the run may still fail (every route, with retries and fallbacks): a JSON error.
      const first = await Promise.race([relay.opened.then(() => "open" as const), submitted.run]);
      if (first === "open") {
        out.set("content-type", "text/event-stream");
        out.set("cache-control", "no-cache");
        out.set("x-accel-buffering", "no"); // no proxy buffering of the events (nginx and Kong honour it)
        return new Response(relay.readable, { status: 200, headers: out });
      }
      return await storedAnswer(caller, first, out); // finished before opening: never expected, still exact
    }
    if (submitted.status === "pending") return stillRunning(submitted.transactionId, out);
    if (submitted.status === "completed") return await storedAnswer(caller, submitted.row, out); // a repeat
    throw new Error(`a stream's submission answered ${submitted.status}`); // unstored needs allowUnstored
  }

  const submitted = await submitInvoke({ ...deps, sql: db() }, { ...common, allowUnstored: true });
  if (submitted.rate) setAll(out, rateLimitHeaders(submitted.rate));
  if (submitted.status === "pending") return stillRunning(submitted.transactionId, out);
  if (submitted.status === "unstored") {
    const u = submitted.unstored;
    out.set("content-type", u.contentType);
    out.set("x-bus-degraded", "unstored");
    out.set("x-bus-checksum", u.checksum);
    return new Response(u.bytes as Uint8Array<ArrayBuffer>, { status: 200, headers: out });
  }
  return await storedAnswer(caller, submitted.row, out);
}

/**
 * The stored payload of a completed message, verified against its checksum on the way out (as message-fetch
 * serves it), with `x-bus-transaction-id` and `x-bus-checksum`.
 */
async function storedAnswer(caller: ReturnType<typeof callerOf>, row: MessageRow, out: Headers): Promise<Response> {
  const stored = storedMetaOf(row);
  out.set("x-bus-transaction-id", row.transaction_id);
  out.set("x-bus-checksum", stored.checksum);
  out.set("content-type", row.content_type ?? "application/json");
  out.set("content-length", String(stored.payload_size_bytes));
  const body = verifiedPayload(stored, storedChunks(caller, stored), "identity");
  if (stored.chunk_count > 1) return new Response(ReadableStream.from(body), { status: 200, headers: out });
  // One chunk (the common case): verified before the status line, so a mismatch is a clean error.
  const parts: Uint8Array[] = [];
  try {
    for await (const part of body) parts.push(part);
  } catch (err) {
    if (!(err instanceof ChecksumMismatchError)) throw err;
    throw integrityError(err);
  }
  return new Response(new Blob(parts as BlobPart[]).stream(), { status: 200, headers: out });
}

/**
 * An idempotent repeat while the first request is still running: 409 with Retry-After, which OpenAI's SDKs retry
 * by themselves (with the same Idempotency-Key) until the first one has finished.
 */
function stillRunning(transactionId: string, out: Headers): Response {
  out.set("x-bus-transaction-id", transactionId);
  out.set("retry-after", "1");
  out.set("content-type", "application/json");
  return new Response(
    JSON.stringify({
      error: {
        message: `A request with this Idempotency-Key is still running (message ${transactionId}); retry shortly`,
        type: "conflict_error",
        code: "still_running",
        param: null,
      },
    }),
    { status: 409, headers: out },
  );
}

function setAll(h: Headers, values: Record<string, string>): void {
  for (const [k, v] of Object.entries(values)) h.set(k, v);
}
