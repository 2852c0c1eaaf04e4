/**
 * A streamed attempt (CONTRACT.md §10), from the provider's 200 on: the provider's event stream is relayed to the
 * client as it arrives and stored as relayed (hashed and chunked on the way), so the bytes the client received are
 * the bytes message-fetch returns.
 *
 * - Until the first event has arrived nothing is relayed: an attempt whose stream ends before any event, or whose
 *   first event is an error, fails like a 5xx and may be retried or fall back. The first event is the commit point:
 *   after it there is no retry and no fallback (the client has bytes).
 * - A client that leaves changes nothing but where the bytes go: the provider is read to the end, the message
 *   completes.
 * - A stream that does not end cleanly (cut or reset, idle past PROVIDER_STREAM_IDLE_MS, an error event, no
 *   `[DONE]` and no `finish_reason`, or still running at the message's deadline) gets the bus's own error event,
 *   relayed and stored like the rest (on an event boundary, without `[DONE]`), and the message fails as
 *   `stream_incomplete` (`worker_time_limit` at the deadline) keeping what was stored.
 */
import { BusError } from "../errors.ts";
import { type StoredPayload, storePayload } from "../payload_store.ts";
import { failMessage } from "../message/lifecycle.ts";
import type { Attempt } from "../message/row.ts";
import { ProviderBodyError, ProviderStreamError } from "../routing/failure.ts";
import { recordRouteFailure } from "../routing/breaker.ts";
import type { StreamRelay } from "../stream/relay.ts";
import { StreamWatch } from "../stream/watch.ts";
import { errorEvent } from "../stream/events.ts";
import { recordFailure, storageFailed } from "./failures.ts";
import { failureError } from "./answers.ts";
import type { Route, RunArgs } from "./run.ts";

export interface StreamAttempt {
  a: RunArgs;
  route: Route;
  response: Response;
  relay: StreamRelay | undefined;
  /** Ends the provider connection (idle, deadline, a failed store). */
  abort: (reason: unknown) => void;
  /** Stops the attempt's timer, which bounds the stream only up to its first event. */
  stopAttemptTimer: () => void;
  /** performance.now() when the request went out, and when the response's headers came. */
  started: number;
  headersAt: number;
  /** Date.now() by which the message's provider work ends. */
  deadline: number;
  attempts: Attempt[];
}

/** A stream that ended cleanly: stored, with what the bus records about it. */
export interface StreamedAnswer {
  stored: StoredPayload;
  watch: StreamWatch;
  ttftMs: number | null;
  writeMs: number;
}

/**
 * Relays and stores the stream. Returns the clean answer; a stream that ended otherwise is recorded on the message
 * (failed, keeping its bytes) and returned as `fatal`.
 * @throws before the first event, the provider's failure (ProviderBodyError, ProviderStreamError) for the retry loop.
 */
export async function relayStream(x: StreamAttempt): Promise<{ answer: StreamedAnswer } | { fatal: BusError }> {
  const s = x.a.settings;
  const watch = new StreamWatch();
  const reader = x.response.body!.getReader();
  const held: Uint8Array[] = [];
  try {
    while (watch.events === 0) {
      const { value, done } = await reader.read();
      if (done) break;
      held.push(value);
      watch.push(value);
    }
  } catch (err) {
    throw new ProviderBodyError(err);
  }
  const first = watch.first;
  if (!first) {
    throw new ProviderStreamError(
      `the stream ended after ${watch.bytes} bytes without any event (content-type ${
        x.response.headers.get("content-type")
      })`,
    );
  }
  if (first.kind === "error") throw new ProviderStreamError("its first event is an error event", first.error);
  if (first.kind === "invalid") {
    throw new ProviderStreamError(`its first event is not a chunk: ${JSON.stringify(first.data.slice(0, 200))}`);
  }
  if (first.kind === "done") throw new ProviderStreamError("its first event is [DONE]");

  // Committed: the client gets bytes from here on.
  x.stopAttemptTimer();
  x.relay?.open();
  let ended: { code: string; message: string } | undefined;

  async function* relayed(): AsyncGenerator<Uint8Array> {
    for (const [i, bytes] of held.entries()) {
      // A stream short enough to end in its first read: its end waits for the commit like any other.
      if (watch.sawDone && i === held.length - 1) x.relay?.hold(bytes);
      else await x.relay?.send(bytes);
      yield bytes;
    }
    held.length = 0;
    for (;;) {
      const left = x.deadline - Date.now();
      const wait = Math.min(s.PROVIDER_STREAM_IDLE_MS, left);
      let next: ReadableStreamReadResult<Uint8Array> | "timeout";
      try {
        next = await within(reader.read(), Math.max(0, wait));
      } catch (err) {
        if (watch.sawDone) break; // the provider said [DONE]: what breaks after it changes nothing
        ended = {
          code: "stream_incomplete",
          message: `${x.route.provider.name}'s stream broke off: ${err instanceof Error ? err.message : err}`,
        };
        break;
      }
      if (next === "timeout") {
        if (watch.sawDone && wait >= s.PROVIDER_STREAM_IDLE_MS) {
          // [DONE] came but the connection stayed open: the stream is over, let go of the connection.
          x.abort(new DOMException("the stream was over", "AbortError"));
          reader.cancel().catch((err) => console.error("[stream] closing a finished provider stream failed:", err));
          break;
        }
        ended = wait < s.PROVIDER_STREAM_IDLE_MS
          ? {
            code: "worker_time_limit",
            message: `The stream was still running at the message's deadline (${s.MESSAGE_BUS_DEADLINE_MS} ms)`,
          }
          : {
            code: "stream_incomplete",
            message: `${x.route.provider.name}'s stream sent nothing for ${s.PROVIDER_STREAM_IDLE_MS} ms`,
          };
        x.abort(new DOMException(ended.message, "TimeoutError"));
        reader.cancel().catch((err) => console.error("[stream] cancelling a stalled provider stream failed:", err));
        break;
      }
      if (next.done) break;
      watch.push(next.value);
      // The bytes that carry [DONE] (and any after) reach the client once the message is committed (run.ts).
      if (watch.sawDone) x.relay?.hold(next.value);
      else await x.relay?.send(next.value);
      yield next.value;
    }
    const why = ended?.message ?? watch.incomplete();
    if (why !== null) {
      ended ??= { code: "stream_incomplete", message: `${x.route.provider.name}: ${why}` };
      const closing = errorEvent(ended.code, ended.message, !watch.atBoundary);
      await x.relay?.send(closing);
      yield closing;
    }
  }

  let stored: StoredPayload;
  try {
    stored = await storePayload(
      x.a.sql,
      x.a.transactionId,
      relayed(),
      s.MESSAGE_BUS_MAX_PAYLOAD_MB * 1024 * 1024,
    );
  } catch (err) {
    // The store refused (too large) or failed: the client is told in the stream, the provider let go.
    x.abort(err);
    reader.cancel().catch((e) => console.error("[stream] cancelling the provider stream failed:", e));
    const tooLarge = err instanceof BusError && err.status === 413;
    const error = tooLarge
      ? { code: "payload_too_large", message: err.message, provider: x.route.provider.name }
      : storageFailed(x.a, err);
    x.relay?.fail(String(error.code), String(error.message));
    x.attempts.push(attempt(x, "error", tooLarge ? "too_large" : "storage_failed"));
    return { fatal: await recordFailure(x.a, error, x.attempts) };
  }
  const ttftMs = watch.firstOutputAt === undefined ? null : Math.round(watch.firstOutputAt - x.started);
  const writeMs = Math.round(performance.now() - x.headersAt);
  if (!ended) {
    // The relay's end (held [DONE]) goes out when the completion is committed (run.ts complete()).
    x.attempts.push(attempt(x, "ok", null));
    return { answer: { stored, watch, ttftMs, writeMs } };
  }
  x.relay?.finish(); // the bus's error event went out with the rest
  return { fatal: await failStream(x, ended, stored, watch) };
}

/** Records a stream that did not end cleanly: failed, its bytes kept; a provider's fault counts against its route. */
async function failStream(
  x: StreamAttempt,
  ended: { code: string; message: string },
  stored: StoredPayload,
  watch: StreamWatch,
): Promise<BusError> {
  const provider = x.route.provider.name;
  const error = {
    code: ended.code,
    message: ended.message,
    provider,
    events: watch.events,
    bytes: stored.payloadSize,
    saw_done: watch.sawDone,
    finish_reason: watch.finishReason,
    ...(watch.error ? { provider_error: watch.error } : {}),
  };
  x.attempts.push(attempt(x, "error", ended.code));
  try {
    if (ended.code === "stream_incomplete") {
      await recordRouteFailure(
        x.a.sql,
        { provider, model: x.route.model },
        x.a.settings.CIRCUIT_BREAKER_THRESHOLD,
        x.a.settings.CIRCUIT_BREAKER_TIMEOUT_SECS,
        ended.message,
      );
    }
    await failMessage(x.a.sql, x.a.transactionId, error, {
      run: x.a.run,
      providerMs: Math.round(x.headersAt - x.started),
      attempts: x.attempts,
      partial: stored,
    });
  } catch (err) {
    // Recording the partial failed: record the failure without it (the lease reaper is the last resort).
    console.error(`[stream] recording the partial stream of ${x.a.transactionId} failed:`, err);
    return await recordFailure(x.a, error, x.attempts);
  }
  return failureError(x.a.transactionId, error);
}

function attempt(x: StreamAttempt, outcome: "ok" | "error", errorCode: string | null): Attempt {
  return {
    provider: x.route.provider.name,
    model: x.route.model,
    outcome,
    status: x.response.status,
    error_code: errorCode,
  };
}

/** `p`, or "timeout" after `ms` (the pending read is then abandoned; the caller cancels the stream). */
async function within<T>(p: Promise<T>, ms: number): Promise<T | "timeout"> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    return await Promise.race([p, new Promise<"timeout">((resolve) => (timer = setTimeout(resolve, ms, "timeout")))]);
  } finally {
    clearTimeout(timer);
  }
}
