/**
 * Running a recorded message through its routes (CONTRACT.md §9): the requested route, then its fallbacks, each
 * behind its circuit breaker and its provider's concurrency limit, each attempt retried by the bus (429, 408, 5xx,
 * timeouts, connection errors; exponential backoff with jitter; the provider's Retry-After up to a cap), all within
 * the message's deadline. An attempt is the request and its whole body: the timeout covers the body too, and the
 * body goes straight into the chunk store (a failed attempt's partial chunks are dropped before the next one).
 * Every attempt is recorded in meta `attempts`. The worker holds the message's lease while it runs.
 *
 * Every failure is recorded on the message (`failed` with `{ code, message }`) before it is answered; when recording
 * it fails too, the caller still gets the contract's error with the transaction id. Raw database and driver errors
 * go to the log, never onto the message or into an answer.
 */
import OpenAI from "openai";
import { BusError } from "../errors.ts";
import type { Sql } from "../db.ts";
import type { Settings } from "../env.ts";
import { type StoredPayload, storePayload } from "../payload_store.ts";
import { type ResponseSummary, SummaryCollector } from "../providers/response_summary.ts";
import { providerClient, type ProviderConfig, sendProviderRequest } from "../providers/openai_compatible.ts";
import type { BodyPart, Tool } from "../tools/tool.ts";
import { fileMessages } from "../files/messages.ts";
import { completeMessage, getMessage } from "../message/lifecycle.ts";
import type { Attempt, MessageRow } from "../message/row.ts";
import {
  type AttemptFailure,
  backoffMs,
  classifyFailure,
  providerBody,
  ProviderBodyError,
  ProviderStreamError,
} from "../routing/failure.ts";
import { type CircuitState, recordRouteFailure, routeStates, tryTrial } from "../routing/breaker.ts";
import { acquireSlot, releaseSlot } from "../routing/slots.ts";
import { failureError } from "./answers.ts";
import { Lease } from "./lease.ts";
import { discardPayload, recordFailure, skipped, storageFailed } from "./failures.ts";
import { relayStream } from "./stream_attempt.ts";
import type { StreamRelay } from "../stream/relay.ts";

/** A route to try: a configured provider and the model to send. */
export interface Route {
  provider: ProviderConfig;
  model: string;
}

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
  /** The requested route first, then its fallbacks, in order. */
  routes: Route[];
  /** What begin_message said of the first route (no query of its own on the healthy path). */
  primary?: { state: CircuitState; openUntil?: Date | null; slot: boolean | null };
  settings: Settings;
  /** Ask the provider for a stream, relayed to `relay` (when someone listens) and stored as relayed (§10). */
  stream?: boolean;
  relay?: StreamRelay;
  /** Provider HTTP, injectable for tests. */
  fetch?: typeof fetch;
  /** Waits between retries (a fake clock in tests). */
  sleep?: (ms: number) => Promise<void>;
}

/** What an answered attempt left: the stored payload and what the bus records about it. */
interface Answer {
  route: Route;
  stored: StoredPayload;
  facts: ResponseSummary;
  contentType: string;
  providerMs: number;
  writeMs: number;
  /** Streamed answers: milliseconds to the first output event. */
  ttftMs?: number | null;
}

/**
 * Runs the message and returns its completed row.
 * @throws BusError with `transaction_id` and `status: "failed"`: 502 (every route failed), 503 `provider_unavailable`
 *   with Retry-After (every route's circuit open), 429 `provider_busy` (every provider's concurrency limit stayed
 *   full), 413 (response too large), 500 (storage failed, or the message was taken from this worker) — recorded
 *   unless the body says `recorded: false`.
 */
export async function runMessage(a: RunArgs): Promise<MessageRow> {
  const s = a.settings;
  const lease = new Lease(a.sql, a.transactionId, a.run, s.MESSAGE_BUS_LEASE_SECS).start();
  const deadline = Date.now() + s.MESSAGE_BUS_DEADLINE_MS;
  const attempts: Attempt[] = [];
  let last: AttemptFailure | undefined;
  let reopensAt: number | undefined; // the soonest an open circuit lets a trial through
  let busy = false;
  try {
    let fallbackStates: Awaited<ReturnType<typeof routeStates>> | undefined;
    for (const [i, route] of a.routes.entries()) {
      const key = { provider: route.provider.name, model: route.model };
      if (!route.provider.apiKey) {
        attempts.push(skipped(route, "not_configured"));
        continue;
      }
      let state: CircuitState;
      if (i === 0 && a.primary) {
        state = a.primary.state;
        if (state === "open" && a.primary.openUntil) reopensAt = a.primary.openUntil.getTime();
      } else {
        fallbackStates ??= await routeStates(
          a.sql,
          a.routes.map((r) => ({ provider: r.provider.name, model: r.model })),
        );
        const status = fallbackStates.get(`${key.provider}/${key.model}`);
        state = status?.state ?? "closed";
        if (status?.openUntil) reopensAt = Math.min(reopensAt ?? Infinity, status.openUntil.getTime());
      }
      let trial = false;
      if (state === "half_open") trial = await tryTrial(a.sql, key, Math.ceil(s.PROVIDER_TIMEOUT_MS / 1000) + 5);
      if (state === "open" || (state === "half_open" && !trial)) {
        attempts.push(skipped(route, "circuit_open"));
        reopensAt ??= Date.now() + 1000; // another caller's trial is in flight
        continue;
      }
      const max = route.provider.maxConcurrency;
      let slot = false;
      if (max !== undefined) {
        slot = (i === 0 && a.primary?.slot === true) ||
          await acquireSlot(a.sql, {
            provider: key.provider,
            transactionId: a.transactionId,
            max,
            leaseSeconds: s.PROVIDER_LEASE_SECS,
            timeoutMs: s.PROVIDER_QUEUE_TIMEOUT_MS,
          });
        if (!slot) {
          attempts.push(skipped(route, "provider_busy"));
          busy = true;
          continue;
        }
      }
      const outcome = await tryRoute(a, route, trial ? 0 : s.PROVIDER_MAX_RETRIES, deadline, attempts);
      if ("answer" in outcome) return await complete(a, outcome.answer, attempts);
      if ("fatal" in outcome) throw outcome.fatal; // a stream that failed after its first event: recorded
      last = outcome.failure;
      if (slot) await releaseSlot(a.sql, key.provider, a.transactionId);
      if (!last.retryable || Date.now() >= deadline) break; // the request's own fault, or out of time: no fallback
    }
  } catch (err) {
    if (err instanceof BusError) throw err;
    // The routing's own database work failed (a breaker or slot statement): still the contract's error, with the
    // transaction id.
    throw await recordFailure(a, storageFailed(a, err), attempts);
  } finally {
    lease.stop();
    // Whatever ended the run, a relayed stream's client is told (complete() finishes it on success).
    if (a.relay && !a.relay.closed) a.relay.fail("internal_error", "The stream could not be completed (logged)");
  }
  // No route answered.
  if (last) throw await recordFailure(a, last.error, attempts);
  if (busy) {
    throw await recordFailure(
      a,
      {
        code: "provider_busy",
        message: `Every provider's concurrency limit stayed full for ${s.PROVIDER_QUEUE_TIMEOUT_MS} ms`,
      },
      attempts,
      { status: 429, retryAfterSeconds: Math.max(1, Math.ceil(s.PROVIDER_QUEUE_TIMEOUT_MS / 1000)) },
    );
  }
  const retryAfter = Math.max(1, Math.ceil(((reopensAt ?? Date.now() + 1000) - Date.now()) / 1000));
  throw await recordFailure(
    a,
    {
      code: "provider_unavailable",
      message: attempts.every((t) => t.error_code === "not_configured")
        ? "No provider of this request has an API key configured"
        : "Every route's circuit is open (the providers failed recently); retry after the Retry-After",
    },
    attempts,
    { status: 503, retryAfterSeconds: retryAfter },
  );
}

/** Tries one route up to `retries` times more; the answer, or the failure that ended the route. */
async function tryRoute(
  a: RunArgs,
  route: Route,
  retries: number,
  deadline: number,
  attempts: Attempt[],
): Promise<{ answer: Answer } | { failure: AttemptFailure } | { fatal: BusError }> {
  const s = a.settings;
  const name = route.provider.name;
  const client = providerClient(route.provider, {
    timeoutMs: s.PROVIDER_TIMEOUT_MS + 1_000, // the attempt's own timer (below) covers the body as well
    maxRetries: 0, // the bus owns retries
    fetch: a.fetch,
  });
  const sleep = a.sleep ?? ((ms: number) => new Promise<void>((r) => setTimeout(r, ms)));
  // Files (CONTRACT.md §13): the input's files as system messages, the way this provider takes them (undefined: none).
  let messages: BodyPart[] | undefined;
  try {
    messages = await fileMessages({
      sql: a.sql,
      transactionId: a.transactionId,
      input: a.input,
      provider: route.provider,
      client,
      settings: s,
    });
  } catch (err) {
    if (!(err instanceof BusError)) throw err;
    attempts.push({ provider: name, model: route.model, outcome: "error", status: null, error_code: err.code });
    throw await recordFailure(a, { ...err.details, provider: name, code: err.code, message: err.message }, attempts);
  }
  for (let n = 0;; n++) {
    const controller = new AbortController();
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      controller.abort(new DOMException("the attempt's timeout passed", "TimeoutError"));
    }, Math.max(1, Math.min(s.PROVIDER_TIMEOUT_MS, deadline - Date.now())));
    const started = performance.now();
    let headersAt = started;
    let response: Response | undefined;
    try {
      response = await sendProviderRequest(
        client,
        a.tool.providerRequest(a.inputJson, route.model, messages, { stream: a.stream === true }),
        controller.signal,
      );
      headersAt = performance.now();
      if (a.stream) {
        const streamed = await relayStream({
          a,
          route,
          response,
          relay: a.relay,
          abort: (reason) => controller.abort(reason),
          stopAttemptTimer: () => clearTimeout(timer),
          started,
          headersAt,
          deadline,
          attempts,
        });
        if ("fatal" in streamed) return streamed;
        const w = streamed.answer.watch;
        return {
          answer: {
            route,
            stored: streamed.answer.stored,
            facts: { finishReason: w.finishReason, usage: w.usage, model: w.model, parsed: true },
            contentType: response.headers.get("content-type") ?? "text/event-stream",
            providerMs: Math.round(headersAt - started),
            writeMs: streamed.answer.writeMs,
            ttftMs: streamed.answer.ttftMs,
          },
        };
      }
      const summary = new SummaryCollector();
      const body = response.body ?? ReadableStream.from<Uint8Array>([]);
      const stored = await storePayload(
        a.sql,
        a.transactionId,
        summary.tap(providerBody(body)),
        s.MESSAGE_BUS_MAX_PAYLOAD_MB * 1024 * 1024,
      );
      attempts.push({ provider: name, model: route.model, outcome: "ok", status: response.status, error_code: null });
      return {
        answer: {
          route,
          stored,
          facts: summary.summary(),
          contentType: response.headers.get("content-type") ?? "application/octet-stream",
          providerMs: Math.round(headersAt - started),
          writeMs: Math.round(performance.now() - headersAt),
        },
      };
    } catch (err) {
      if (err instanceof BusError && err.status === 413) {
        attempts.push({
          provider: name,
          model: route.model,
          outcome: "error",
          status: response?.status ?? null,
          error_code: "too_large",
        });
        throw await recordFailure(a, { code: "payload_too_large", message: err.message, provider: name }, attempts);
      }
      const providerSide = timedOut || err instanceof OpenAI.APIError || err instanceof ProviderBodyError ||
        err instanceof ProviderStreamError;
      if (!providerSide) throw await recordFailure(a, storageFailed(a, err), attempts);
      const failure = classifyFailure(err, name, timedOut);
      attempts.push({
        provider: name,
        model: route.model,
        outcome: "error",
        status: failure.status,
        error_code: failure.errorCode,
      });
      if (response) await discardPayload(a); // chunks of the broken body must not meet the next attempt's
      if (!failure.retryable) return { failure };
      const state = await recordRouteFailure(
        a.sql,
        { provider: name, model: route.model },
        s.CIRCUIT_BREAKER_THRESHOLD,
        s.CIRCUIT_BREAKER_TIMEOUT_SECS,
        String(failure.error.message),
      );
      if (state === "open" || n >= retries) return { failure };
      if (failure.retryAfterMs !== undefined && failure.retryAfterMs > s.PROVIDER_MAX_RETRY_AFTER_MS) {
        return { failure };
      }
      const wait = failure.retryAfterMs ?? backoffMs(n, s.PROVIDER_RETRY_BASE_MS);
      if (Date.now() + wait >= deadline) return { failure };
      await sleep(wait);
    } finally {
      clearTimeout(timer);
    }
  }
}

/** Completes the message with the answer; if that is refused, answers from what is recorded. */
async function complete(a: RunArgs, answer: Answer, attempts: Attempt[]): Promise<MessageRow> {
  try {
    const row = await completeMessage(a.sql, a.transactionId, {
      ...answer.stored,
      run: a.run,
      finishReason: answer.facts.finishReason,
      usage: answer.facts.usage,
      model: answer.facts.model ?? answer.route.model,
      provider: answer.route.provider.name,
      providerMs: answer.providerMs,
      writeMs: answer.writeMs,
      attempts,
      stream: a.stream === true,
      ttftMs: answer.ttftMs ?? null,
      metadata: {
        content_type: answer.contentType,
        wants_json: a.tool.wantsJson(a.input),
        parsed: answer.facts.parsed,
      },
    });
    a.relay?.finish(); // committed: the stream's end ([DONE]) may go out now
    return row;
  } catch (err) {
    // Either the message is no longer this run's (reaped after its lease ran out, or taken by another run), or
    // the database failed: answer from what is recorded, if anything.
    const current = await getMessage(a.sql, a.transactionId).catch((readErr) => {
      console.error(`[invoke] reading ${a.transactionId} after a failed completion failed:`, readErr);
      return undefined;
    });
    if (current && current.status !== "pending") {
      console.error(`[invoke] ${a.transactionId} run ${a.run}: completion refused, the message is ${current.status}`);
      if (current.status === "completed") {
        a.relay?.finish();
        return current;
      }
      throw failureError(a.transactionId, current.error ?? { code: "worker_lost", message: "The message was reaped" });
    }
    throw await recordFailure(a, storageFailed(a, err), attempts);
  }
}
