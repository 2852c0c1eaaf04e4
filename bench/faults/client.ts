/**
 * One benchmark invoke as a careful client sends it: with an Idempotency-Key, and again with the same key after a
 * connection error or an answer without a transaction id (5xx, 429), honouring Retry-After, within a bound. What it
 * ends with is kept for the final check.
 */
import type { FaultStack } from "./stack.ts";

/** What one invoke is: built by the schedule, sent by {@link submit}. */
export interface InvokePlan {
  index: number;
  key: string;
  owner: string;
  token: string;
  mode: "sync" | "async";
  /** "kimi" (primary, falls back to glm) or "glm" (direct, for the fallback's own latency). */
  provider: "kimi" | "glm";
  /** The stand-in directive in the prompt. */
  directive: Record<string, unknown>;
}

/** How one invoke ended, from the client's side. */
export interface InvokeResult {
  index: number;
  /** HTTP status of the last answer; 0 when none came (connection errors until the bound). */
  status: number;
  transactionId: string | null;
  /** The error code of a non-2xx answer. */
  code: string | null;
  /** A 200's checksum, provider and payload size, checked against the stored message at the end. */
  checksum: string | null;
  answeredBy: string | null;
  sizeBytes: number | null;
  /** `recorded: false` in a failure answer (recording the failure failed; the reaper finishes it). */
  unrecorded: boolean;
  /** Milliseconds of the request that got the last answer, and from the first send to it. */
  latencyMs: number;
  totalMs: number;
  /** Wall-clock time (ms since epoch) of the first send and of the last answer. */
  sentAt: number;
  answeredAt: number;
  /** Sends after the first, by why: "connection", "503 bus_unavailable", ... */
  retries: Record<string, number>;
}

/** Bounds of the client's own retries (the stack restart takes tens of seconds; waiting for it is not a retry). */
const MAX_SENDS = 60;
const MAX_TOTAL_MS = 300_000;
/** A sync invoke that takes longer than this is abandoned and sent again with its key. */
const REQUEST_TIMEOUT_MS = 60_000;

/** Sends `plan` until it gets an answer with a transaction id (or a 4xx without one), within the bounds. */
export async function submit(stack: FaultStack, plan: InvokePlan): Promise<InvokeResult> {
  const body = JSON.stringify({
    tool: "chat",
    mode: plan.mode,
    ...(plan.provider === "kimi" ? {} : { provider: plan.provider }),
    input: {
      messages: [{ role: "user", content: `fault bench ${plan.key} #standin ${JSON.stringify(plan.directive)}` }],
    },
  });
  const retries: Record<string, number> = {};
  const sentAt = Date.now();
  let last: InvokeResult | undefined;
  for (let send = 0; send < MAX_SENDS && Date.now() - sentAt < MAX_TOTAL_MS; send++) {
    await stack.ready;
    const started = performance.now();
    let res: Response;
    let json: Record<string, unknown>;
    try {
      res = await fetch(`${stack.apiUrl}/functions/v1/tool-invoke`, {
        method: "POST",
        headers: {
          authorization: `Bearer ${plan.token}`,
          "content-type": "application/json",
          "idempotency-key": plan.key,
        },
        body,
        signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
      });
      const text = await res.text();
      try {
        json = JSON.parse(text);
      } catch {
        json = { non_json: text.slice(0, 200) };
      }
    } catch (err) {
      const why = err instanceof DOMException && err.name === "TimeoutError" ? "timeout" : "connection";
      retries[why] = (retries[why] ?? 0) + 1;
      await pause(200 * Math.min(5, send + 1));
      continue;
    }
    const latencyMs = performance.now() - started;
    const error = json.error as { code?: string } | undefined;
    const id = typeof json.transaction_id === "string" ? json.transaction_id : null;
    last = {
      index: plan.index,
      status: res.status,
      transactionId: id,
      code: error?.code ?? (json.non_json ? "non_json" : null),
      checksum: res.status === 200 ? String(json.checksum) : null,
      answeredBy: res.status === 200 ? String(json.provider) : null,
      sizeBytes: res.status === 200 ? Number(json.payload_size_bytes) : null,
      unrecorded: json.recorded === false,
      latencyMs,
      totalMs: Date.now() - sentAt,
      sentAt,
      answeredAt: Date.now(),
      retries,
    };
    if (id || (res.status < 500 && res.status !== 429)) return last;
    const why = `${res.status} ${last.code ?? "-"}`;
    retries[why] = (retries[why] ?? 0) + 1;
    const retryAfter = Number(res.headers.get("retry-after"));
    await pause(Number.isFinite(retryAfter) && retryAfter > 0 ? Math.min(2_000, retryAfter * 1000) : 200);
  }
  return last ?? {
    index: plan.index,
    status: 0,
    transactionId: null,
    code: "no_answer",
    checksum: null,
    answeredBy: null,
    sizeBytes: null,
    unrecorded: false,
    latencyMs: 0,
    totalMs: Date.now() - sentAt,
    sentAt,
    answeredAt: Date.now(),
    retries,
  };
}

function pause(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
