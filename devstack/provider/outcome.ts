import type { Answer } from "./chat.ts";
import type { Directive, Step } from "./directives.ts";
import { ConnectionReset, openAIError, steeredMessage } from "./errors.ts";
import { pacedBody, pieces } from "./paced.ts";
import type { Outage } from "./state.ts";
import { untilAborted } from "./wait.ts";

/** How one request is answered, chosen by an outage, a script step or a directive's `status`. */
export type Outcome =
  | { kind: "ok" }
  /** `by` names what steered it, for the error message: "#standin" or "/__standin/…". */
  | { kind: "status"; status: number; retryAfter?: number; by?: string }
  | { kind: "hang" }
  | { kind: "reset" }
  | { kind: "slow_body"; intervalMs: number }
  /** Answer normally with these directive keys merged over the request's own. */
  | { kind: "merge"; keys: Partial<Directive> };

/** `slow_body` sends the body in pieces this large. */
const SLOW_PIECE = 16;
const SLOW_INTERVAL_MS = 1000;

/** The outcome of a script step; past the end of a script (`undefined`), calls succeed. */
export function stepOutcome(step: Step | undefined, retryAfter: number | undefined, by: string): Outcome {
  if (step === undefined || step === "ok") return { kind: "ok" };
  if (typeof step === "number") return { kind: "status", status: step, retryAfter, by };
  if (step === "slow_body") return { kind: "slow_body", intervalMs: SLOW_INTERVAL_MS };
  if (step === "hang" || step === "reset") return { kind: step };
  return { kind: "merge", keys: step };
}

/** The outcome every request under an outage prefix gets. */
export function outageOutcome(outage: Outage): Outcome {
  if (outage.mode === "slow_body") return { kind: "slow_body", intervalMs: outage.interval_ms ?? SLOW_INTERVAL_MS };
  if (outage.mode === "hang" || outage.mode === "reset") return { kind: outage.mode };
  return { kind: "status", status: Number(outage.mode), retryAfter: outage.retry_after, by: "/__standin/outage" };
}

/**
 * Answers under `outcome`: `answer` is called for "ok", "merge" (with the keys) and "slow_body" (whose body is
 * then dribbled out); "status" answers an OpenAI-style error (Retry-After on 429 and 503, default 1 s);
 * "hang" waits until `signal` aborts (the client left or the stand-in closes); "reset" throws
 * {@link ConnectionReset}, so the server drops the connection without an HTTP answer.
 */
export async function answerWith(
  outcome: Outcome,
  signal: AbortSignal,
  answer: (keys?: Partial<Directive>) => Promise<Answer>,
): Promise<Answer> {
  switch (outcome.kind) {
    case "ok":
      return await answer();
    case "merge":
      return await answer(outcome.keys);
    case "status": {
      const { status } = outcome;
      const retryAfter = status === 429 || status === 503 ? outcome.retryAfter ?? 1 : undefined;
      return { response: openAIError(status, steeredMessage(status, outcome.by), { retryAfter }), live: false };
    }
    case "hang":
      return await untilAborted(signal, "hanging without an answer (steered)");
    case "reset":
      throw new ConnectionReset();
    case "slow_body":
      return slowed(await answer(), outcome.intervalMs, signal);
  }
}

/** The same answer with its headers at once and its body in 16-byte pieces, `intervalMs` apart. */
function slowed({ response }: Answer, intervalMs: number, signal: AbortSignal): Answer {
  if (!response.body) return { response, live: false };
  const headers = new Headers(response.headers);
  headers.delete("content-length");
  const body = pacedBody(pieces(response.body, SLOW_PIECE), { firstDelayMs: intervalMs, gapMs: intervalMs, signal });
  return { response: new Response(body, { status: response.status, headers }), live: true };
}
