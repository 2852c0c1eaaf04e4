import { fillerChunks } from "./content.ts";

/** Seeded filler standing in for a text field; `prefix` and `suffix` wrap it inside the field's string. */
export interface Fill {
  kind: "fill";
  seed: number;
  prefix: string;
  suffix: string;
}

/** What goes into one chat.completion body. At most one of `content` and `reasoning` is a {@link Fill}. */
export interface CompletionParts {
  id: string;
  created: number;
  model: string;
  content: string | null | Fill;
  reasoning?: string | Fill;
  toolCalls?: unknown[];
  finishReason: string;
  promptTokens: number;
}

/** The `usage` object of a completion. */
export interface Usage {
  prompt_tokens: number;
  completion_tokens: number;
  total_tokens: number;
}

/** A body as bytes before and after an optional filler run; `size` is the total byte count. */
export interface BodyPlan {
  head: Uint8Array;
  fill: { seed: number; size: number } | null;
  tail: Uint8Array;
  size: number;
}

const encoder = new TextEncoder();
const PLACEHOLDER = "@@standin-fill@@";
/** Whether a field is seeded filler rather than literal text. */
export const isFill = (v: unknown): v is Fill => typeof v === "object" && v !== null && (v as Fill).kind === "fill";
/** The bytes of `text` as it appears inside a JSON string, without the quotes. */
const escaped = (text: string) => JSON.stringify(text).slice(1, -1);
const utf8Length = (text: string) => encoder.encode(text).length;

/** Token usage of a completion whose filler is `fillSize` bytes: UTF-8 bytes of content and reasoning over 4. */
export function usageFor(parts: CompletionParts, fillSize: number): Usage {
  const fieldBytes = (v: string | null | Fill | undefined) =>
    v == null ? 0 : isFill(v) ? utf8Length(v.prefix) + fillSize + utf8Length(v.suffix) : utf8Length(v);
  const completionTokens = Math.max(1, Math.ceil((fieldBytes(parts.content) + fieldBytes(parts.reasoning)) / 4));
  return {
    prompt_tokens: parts.promptTokens,
    completion_tokens: completionTokens,
    total_tokens: parts.promptTokens + completionTokens,
  };
}

/**
 * Renders the envelope around a filler of `fillSize` bytes. The formatting is deliberately unlike what a
 * re-serialiser produces: the providers' key order (not alphabetical), 1-space indentation, raw (unescaped)
 * UTF-8 and a trailing newline. A bus that parses and re-stringifies the body changes its checksum.
 */
function render(parts: CompletionParts, fillSize: number): { head: string; tail: string } {
  const field = (v: string | null | Fill) => (isFill(v) ? PLACEHOLDER : v);
  const message: Record<string, unknown> = { role: "assistant", content: field(parts.content) };
  if (parts.reasoning !== undefined) message.reasoning_content = field(parts.reasoning);
  if (parts.toolCalls) message.tool_calls = parts.toolCalls;
  const completion = {
    id: parts.id,
    object: "chat.completion",
    created: parts.created,
    model: parts.model,
    choices: [{ index: 0, message, finish_reason: parts.finishReason }],
    usage: usageFor(parts, fillSize),
  };
  const text = JSON.stringify(completion, null, 1) + "\n";
  const fill = isFill(parts.content) ? parts.content : isFill(parts.reasoning) ? parts.reasoning : null;
  if (!fill) return { head: text, tail: "" };
  const [before, after] = text.split(`"${PLACEHOLDER}"`);
  return { head: `${before}"${escaped(fill.prefix)}`, tail: `${escaped(fill.suffix)}"${after}` };
}

/**
 * Lays out a completion body. With `targetBytes` and a {@link Fill}, the filler is sized so the whole body is
 * `targetBytes` long (token counts in `usage` depend on the filler size, so the size is solved by iteration;
 * a body smaller than its envelope cannot be made, and comes out at the envelope's size).
 */
export function planBody(parts: CompletionParts, targetBytes?: number): BodyPlan {
  const fill = isFill(parts.content) ? parts.content : isFill(parts.reasoning) ? parts.reasoning : null;
  if (fill && (isFill(parts.content) && isFill(parts.reasoning))) throw new Error("Expected at most one filled field");
  let fillSize = 0;
  let rendered = render(parts, fillSize);
  if (fill && targetBytes !== undefined) {
    for (let round = 0; round < 8; round++) {
      const envelope = utf8Length(rendered.head) + utf8Length(rendered.tail);
      const next = Math.max(0, targetBytes - envelope);
      if (next === fillSize) break;
      fillSize = next;
      rendered = render(parts, fillSize);
    }
  }
  const head = encoder.encode(rendered.head);
  const tail = encoder.encode(rendered.tail);
  return {
    head,
    tail,
    fill: fill ? { seed: fill.seed, size: fillSize } : null,
    size: head.length + fillSize + tail.length,
  };
}

/** Yields the body in chunks, stopping after `limit` bytes (a truncated body when `limit < plan.size`). */
export function* bodyChunks(plan: BodyPlan, limit = plan.size): Generator<Uint8Array> {
  let left = limit;
  const parts = function* () {
    yield plan.head;
    if (plan.fill) yield* fillerChunks(plan.fill.seed, plan.fill.size);
    yield plan.tail;
  };
  for (const chunk of parts()) {
    if (left <= 0) return;
    const piece = chunk.length > left ? chunk.subarray(0, left) : chunk;
    left -= piece.length;
    if (piece.length > 0) yield piece;
  }
}

/** The whole body (or its first `limit` bytes) in one buffer; for small bodies only. */
export function bodyBytes(plan: BodyPlan, limit = plan.size): Uint8Array<ArrayBuffer> {
  const out = new Uint8Array(Math.min(limit, plan.size));
  let at = 0;
  for (const chunk of bodyChunks(plan, limit)) {
    out.set(chunk, at);
    at += chunk.length;
  }
  return out;
}

/**
 * The body as a pull-based stream: one chunk is produced per read, so memory stays at one chunk whatever the
 * size. `onDone` runs once, when the stream ends or is cancelled.
 */
export function bodyStream(
  plan: BodyPlan,
  limit = plan.size,
  onDone: () => void = () => {},
): ReadableStream<Uint8Array> {
  const chunks = bodyChunks(plan, limit);
  let done = false;
  const finish = () => {
    if (!done) {
      done = true;
      onDone();
    }
  };
  return new ReadableStream<Uint8Array>({
    pull(controller) {
      const next = chunks.next();
      if (next.done) {
        controller.close();
        finish();
      } else {
        controller.enqueue(next.value);
      }
    },
    cancel() {
      finish();
    },
  }, { highWaterMark: 1 });
}
