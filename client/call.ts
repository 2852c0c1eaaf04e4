/**
 * `call()`: invoke asynchronously, wait for the outcome, fetch and verify (and `invokeAndWait()`: the same without the
 * fetch). Neither keeps a request open while the provider works, so a long generation never meets the gateway's
 * 150 s idle limit (supabase-platform.md §1.7). The wait listens on the subscription
 * (pushed events) and polls the metadata as a fallback, so it finishes even when Realtime is unavailable.
 */
import type { BusClient } from "./bus_client.ts";
import { BusApiError, BusTimeoutError, ErrorCode, isBusClientError } from "./errors.ts";
import type { Subscription } from "./subscribe.ts";
import type { BusEvent, CallResult, InvokeCompleted, InvokeRequest, MessageStatus } from "./types.ts";

/** Options of `call()`. */
export interface CallOptions {
  /** Sent as `Idempotency-Key` (default: a random key). */
  idempotencyKey?: string;
  /** How long to wait for the outcome (default 300000 ms). */
  timeoutMs?: number;
  /** Metadata poll period while waiting, the fallback to pushed events (default 3000 ms). */
  pollIntervalMs?: number;
  /** How long to wait for the channel before relying on polling alone (default 5000 ms). */
  joinTimeoutMs?: number;
  signal?: AbortSignal;
  /** Uploaded file ids to send with the chat (added to `input.files`). */
  files?: string[];
}

type Outcome = { status: MessageStatus; checksum?: string | null };

/** See `BusClient.call()`. Throws BusClientErrors. */
export async function callTool(client: BusClient<boolean>, req: InvokeRequest, opts: CallOptions): Promise<CallResult> {
  const { id, outcome } = await settle(client, req, opts);
  const { data: payload } = await client.throwOnError().fetch(id, {
    signal: opts.signal,
    expectedChecksum: outcome.checksum ?? undefined,
  });
  return { transaction_id: id, status: "completed", payload };
}

/**
 * See `BusClient.invokeAndWait()`: the completed message's answer, as a sync invoke's 200 gives it (CONTRACT.md §4),
 * without a request that stays open while the provider works (so never the gateway's 504).
 */
export async function invokeAndWait(
  client: BusClient<boolean>,
  req: InvokeRequest,
  opts: CallOptions,
): Promise<InvokeCompleted> {
  const { id, outcome } = await settle(client, req, opts);
  if ("expires_at" in outcome) return outcome; // already completed when invoked (an idempotent repeat)
  const { data: m } = await client.throwOnError().meta(id, { signal: opts.signal });
  return {
    transaction_id: id,
    status: "completed",
    checksum: m.checksum!,
    payload_size_bytes: m.payload_size_bytes!,
    provider: m.provider!,
    model: m.model,
    finish_reason: m.finish_reason,
    expires_at: m.expires_at,
  };
}

/**
 * Invokes asynchronously and waits for a completed message. A failed message is a `message_failed` error, an expired
 * one `expired` (both BusApiErrors with the message's error in `details`).
 */
async function settle(
  client: BusClient<boolean>,
  req: InvokeRequest,
  opts: CallOptions,
): Promise<{ id: string; outcome: Outcome | InvokeCompleted }> {
  const bus = client.throwOnError();
  const sub = client.subscribe({ signal: opts.signal });
  try {
    // Join before invoking, so that no event of this call can pass before we listen.
    const joined = await within(sub.ready, opts.joinTimeoutMs ?? 5000);
    const { data: started } = await bus.invoke({ ...req, mode: "async" }, {
      idempotencyKey: opts.idempotencyKey ?? `call-${crypto.randomUUID()}`,
      signal: opts.signal,
      files: opts.files,
    });
    const id = started.transaction_id;
    const outcome = started.status === "completed"
      ? started
      : await waitForOutcome(bus, joined ? sub : undefined, id, opts);
    if (outcome.status === "failed" || outcome.status === "expired") {
      const { data: meta } = await bus.meta(id, { signal: opts.signal });
      const failure = (meta.error ?? {}) as Record<string, unknown>;
      const code = outcome.status === "failed" ? ErrorCode.MessageFailed : ErrorCode.Expired;
      throw new BusApiError(String(failure.message ?? `Message ${id} is ${outcome.status}`), code, {
        status: outcome.status === "failed" ? 409 : 410,
        transactionId: id,
        details: failure,
      });
    }
    return { id, outcome };
  } finally {
    await sub.close();
  }
}

/** Waits for a terminal status of `id`: from events when subscribed, else (and also) from metadata polls. */
async function waitForOutcome(bus: BusClient<true>, sub: Subscription | undefined, id: string, opts: CallOptions) {
  const deadline = Date.now() + (opts.timeoutMs ?? 300_000);
  const pollMs = opts.pollIntervalMs ?? 3000;
  const never = new Promise<never>(() => {});
  let nextEvent: Promise<IteratorResult<BusEvent>> | Promise<never> = sub ? sub.next() : never;
  for (;;) {
    opts.signal?.throwIfAborted();
    const remaining = deadline - Date.now();
    if (remaining <= 0) {
      throw new BusTimeoutError(`No outcome for ${id} within ${opts.timeoutMs ?? 300_000} ms`, { transactionId: id });
    }
    let timer: ReturnType<typeof setTimeout> | undefined;
    const tick = new Promise<null>((resolve) => (timer = setTimeout(() => resolve(null), Math.min(pollMs, remaining))));
    let got: IteratorResult<BusEvent> | null;
    try {
      got = await Promise.race([nextEvent, tick]);
    } catch (err) {
      // The subscription failed (e.g. the join was refused): keep waiting by polling alone.
      if (!isBusClientError(err)) throw err;
      got = null;
      nextEvent = never;
    } finally {
      clearTimeout(timer);
    }
    if (got?.done) nextEvent = never; // the subscription ended: polling alone from here
    else if (got) {
      nextEvent = sub!.next();
      const e = got.value;
      if (e.type === "message" && e.transaction_id === id && e.status !== "pending") return e;
      continue;
    }
    const { data: meta } = await bus.meta(id, { signal: opts.signal });
    if (meta.status !== "pending") return meta;
  }
}

/** True if `p` resolves within `ms`; false if it rejects or takes longer. */
async function within(p: Promise<void>, ms: number): Promise<boolean> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<false>((resolve) => (timer = setTimeout(() => resolve(false), ms)));
  try {
    return await Promise.race([p.then(() => true), timeout]);
  } catch (err) {
    if (!isBusClientError(err)) throw err;
    return false; // joining failed: call() then relies on polling
  } finally {
    clearTimeout(timer);
  }
}
