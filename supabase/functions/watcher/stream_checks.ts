/**
 * The content checks of a streamed message (CONTRACT.md §7, §10): its stored server-sent events are assembled into
 * one completion (stream/assemble.ts) and that completion is checked like a non-streamed body (checks.ts), instead
 * of parsing the event stream as one JSON body (which found every stream `not_chat_completion`). And the finding of
 * a stream that broke off (`stream_incomplete`): what arrived of it. Pure functions, tested in-process.
 */
import type { AssembledStream, StreamStats } from "../_shared/stream/assemble.ts";
import { checkCompletion, checkFacts, type CheckLimits, type CompletionView, type MessageFacts } from "./checks.ts";
import { type Finding, finding } from "./findings.ts";

/** Checks an assembled stream: that it carried chat.completion.chunk events, then the completion they make. */
export function checkStream(
  assembled: AssembledStream,
  facts: MessageFacts,
  limits: CheckLimits,
): { findings: Finding[]; view?: CompletionView } {
  const { stats } = assembled;
  if (stats.chunks === 0) {
    return {
      findings: [
        finding(
          "not_chat_completion",
          `The stream carried no chat.completion.chunk events (${stats.events} events in ${stats.bytes} bytes)`,
        ),
        ...checkFacts(facts, limits),
      ],
    };
  }
  const { findings, view } = checkCompletion(assembled.completion, facts, limits, {
    clipped: stats.clipped,
    outputBytes: stats.outputBytes,
  });
  if (stats.invalid > 0) {
    findings.unshift(finding(
      "not_chat_completion",
      `${stats.invalid} of the stream's ${stats.events} events are not chat.completion.chunk JSON; the first: ${
        quote(stats.firstInvalid ?? "")
      }`,
    ));
  }
  if (stats.clipped) {
    findings.push(finding(
      "partial_analysis",
      `The streamed text (${stats.outputBytes} bytes) is above the analysis cap: the content checks read the start of ` +
        `each field only; the checksum covered every byte`,
    ));
  }
  return { findings, view };
}

/**
 * The `stream_incomplete` finding of a stream that broke off: the bus's reason and what arrived (from the kept
 * partial payload, when there is one: its size, events, whether `[DONE]` or a finish_reason came).
 */
export function incompleteFinding(error: Record<string, unknown> | null, kept: StreamStats | null): Finding {
  const why = typeof error?.message === "string" ? error.message : "the stream ended without [DONE] or finish_reason";
  if (!kept) return finding("stream_incomplete", `The provider's stream broke off (${why}); nothing of it was kept`);
  // The bus appends its own error event to what it relayed and stored (CONTRACT.md §10): not part of what arrived.
  const own = kept.errors.filter((e) => e.code === "stream_incomplete" || e.type === "stream_incomplete").length;
  const provider = kept.errors.find((e) => e.code !== "stream_incomplete" && e.type !== "stream_incomplete");
  const parts = [
    `${kept.bytes} bytes kept`,
    `${kept.events - own} events from the provider (${kept.chunks} complete chunks)`,
    kept.done ? "data: [DONE] came" : "no data: [DONE]",
    kept.finished ? "a finish_reason came" : "no finish_reason",
    `${kept.outputBytes} bytes of content and reasoning`,
  ];
  if (provider) parts.push(`the provider sent an error event: ${quote(String(provider.message ?? ""))}`);
  // Typically the event the cut went through: the bus ends it before its own event, so its data is broken JSON.
  if (kept.invalid > 0) {
    parts.push(kept.invalid === 1 ? "1 event was cut or not JSON" : `${kept.invalid} events were cut or not JSON`);
  }
  return finding("stream_incomplete", `The provider's stream broke off (${why}): ${parts.join(", ")}`);
}

function quote(text: string, max = 120): string {
  const chars = [...text];
  return JSON.stringify(chars.length > max ? `${chars.slice(0, max).join("")}…` : text);
}
