import { type CompletionParts, type Fill, isFill, type Usage } from "./body.ts";
import { fillerChunks } from "./content.ts";
import type { Directive } from "./directives.ts";

/** What a streamed answer needs besides the completion parts. */
export interface StreamShape {
  /** Size of the `bytes` filler, as planned for the non-streamed body (so both carry the same content). */
  fillSize: number;
  usage: Usage;
  /** `stream_options.include_usage`. */
  includeUsage: boolean;
  directive: Directive;
}

/** Text deltas default to 16 bytes and tool-call arguments to 8, so even short answers come in pieces. */
const TEXT_DELTA = 16;
const ARGUMENTS_DELTA = 8;
/** Filler deltas are large so that a 10 MB stream is hundreds of events, not hundreds of thousands. */
const FILL_DELTA = 16 * 1024;
/** What `malformed: "not_json"` puts into an event's data. */
const NOT_JSON = "upstream connect error or disconnect/reset before headers. reset reason: overflow";

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/**
 * Splits UTF-8 bytes into pieces of at most `max` bytes, each ending on a character boundary (`max` ≥ 4, the
 * longest UTF-8 character).
 */
export function* utf8Pieces(bytes: Uint8Array, max: number): Generator<Uint8Array> {
  let at = 0;
  while (at < bytes.length) {
    let end = Math.min(at + max, bytes.length);
    // Back off while the cut would fall on a continuation byte (0b10xxxxxx).
    while (end < bytes.length && end > at && (bytes[end] & 0xc0) === 0x80) end--;
    yield bytes.subarray(at, end);
    at = end;
  }
}

/** A text field's deltas: literal text in `textMax`-byte pieces, filler in `fillMax`-byte pieces. */
function* textDeltas(value: string | Fill, fillSize: number, textMax: number, fillMax: number): Generator<string> {
  const literal = function* (text: string) {
    for (const piece of utf8Pieces(encoder.encode(text), textMax)) yield decoder.decode(piece);
  };
  if (!isFill(value)) return yield* literal(value);
  yield* literal(value.prefix);
  for (const chunk of fillerChunks(value.seed, fillSize)) {
    for (const piece of utf8Pieces(chunk, fillMax)) yield decoder.decode(piece);
  }
  yield* literal(value.suffix);
}

/**
 * The `data:` payloads of a streamed chat completion in OpenAI's framing, in order: the role chunk, then
 * `reasoning_content` deltas (before any content, as Kimi K2 thinking and GLM stream them), content deltas,
 * tool-call fragments (id and name first, then `function.arguments` in pieces), the chunk carrying
 * `finish_reason`, the usage chunk (`choices: []`, with `include_usage`) and `[DONE]`. Produced lazily.
 */
function* payloads(parts: CompletionParts, shape: StreamShape): Generator<string> {
  const d = shape.directive;
  const usageField = shape.includeUsage && !d.usage_in_choice ? { usage: null } : {};
  const chunk = (choices: unknown[], extra: Record<string, unknown> = usageField) =>
    JSON.stringify({
      id: parts.id,
      object: "chat.completion.chunk",
      created: parts.created,
      model: parts.model,
      choices,
      ...extra,
    });
  const delta = (fields: Record<string, unknown>) =>
    chunk([{ index: 0, delta: fields, logprobs: null, finish_reason: null }]);
  const textMax = d.delta_bytes ?? TEXT_DELTA;
  const fillMax = d.delta_bytes ?? FILL_DELTA;

  yield delta({ role: "assistant", content: parts.content === null ? null : "" });
  if (parts.reasoning !== undefined) {
    for (const piece of textDeltas(parts.reasoning, shape.fillSize, textMax, fillMax)) {
      yield delta({ reasoning_content: piece });
    }
  }
  if (parts.content !== null) {
    for (const piece of textDeltas(parts.content, shape.fillSize, textMax, fillMax)) yield delta({ content: piece });
  }
  const withIndex = (fragment: Record<string, unknown>, index: number) =>
    d.omit_tool_index ? fragment : { index, ...fragment };
  for (const [index, call] of (parts.toolCalls ?? []).entries()) {
    const { id, type, function: fn } = call as { id: string; type: string; function: Record<string, string> };
    yield delta({ tool_calls: [withIndex({ id, type, function: { name: fn.name, arguments: "" } }, index)] });
    const argumentsMax = d.delta_bytes ?? ARGUMENTS_DELTA;
    for (const piece of utf8Pieces(encoder.encode(fn.arguments), argumentsMax)) {
      yield delta({ tool_calls: [withIndex({ function: { arguments: decoder.decode(piece) } }, index)] });
    }
  }
  const finishReason = d.no_finish ? null : parts.finishReason;
  const last: Record<string, unknown> = { index: 0, delta: {}, logprobs: null, finish_reason: finishReason };
  if (d.usage_in_choice) last.usage = shape.usage;
  yield chunk([last]);
  if (shape.includeUsage && !d.usage_in_choice) yield chunk([], { usage: shape.usage });
}

/**
 * The events of a streamed chat completion, each a complete `data: …\n\n` string, with the directive's
 * event-level faults applied (`error_after_events`, `no_done`, `malformed`). Lazy: a 10 MB stream is never
 * held whole.
 *
 * @example
 * ```ts
 * for (const event of streamEvents(parts, shape)) controller.enqueue(new TextEncoder().encode(event));
 * ```
 */
export function* streamEvents(parts: CompletionParts, shape: StreamShape): Generator<string> {
  const d = shape.directive;
  let count = 0;
  for (const payload of payloads(parts, shape)) {
    if (d.error_after_events !== undefined && count === d.error_after_events) return yield errorEvent(parts.id);
    count++;
    const event = `data: ${payload}\n\n`;
    if (count === 2 && d.malformed === "not_json") yield `data: ${NOT_JSON}\n\n`;
    else if (count === 2 && d.malformed) return yield [...event].slice(0, Math.floor([...event].length / 2)).join("");
    else yield event;
  }
  // A stream shorter than error_after_events ends with the error in place of [DONE].
  if (d.error_after_events !== undefined) return yield errorEvent(parts.id);
  if (!d.no_done) yield "data: [DONE]\n\n";
}

/** A mid-stream error event: `{"error": {...}}` is what the OpenAI SDK turns into an `APIError`. */
function errorEvent(id: string): string {
  const error = {
    message: `Stand-in stream failed mid-way (steered by #standin error_after_events; ${id})`,
    type: "server_error",
    param: null,
    code: "stream_error",
  };
  return `data: ${JSON.stringify({ error })}\n\n`;
}
