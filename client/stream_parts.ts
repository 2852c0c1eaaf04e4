/**
 * What `stream()` yields (CONTRACT.md §10): the transaction id first, then the deltas of each `chat.completion.chunk`
 * as a small typed union (content, reasoning_content, tool-call fragments, finish reasons, usage), and last the
 * verification of the whole stream against the stored checksum. Chunks are read by the bus's own event reading
 * (supabase/functions/_shared/stream/events.ts, over eventsource-parser), so the SDK and the bus agree on framing.
 */
import { isObject } from "../supabase/functions/_shared/stream/events.ts";

/** The stream's transaction id, yielded first (as soon as the bus's headers arrive, before any delta). */
export interface TransactionPart {
  type: "transaction";
  transaction_id: string;
}

/** A piece of the answer's text (`delta.content`) for the choice `choice`. */
export interface ContentPart {
  type: "content";
  choice: number;
  text: string;
}

/** A piece of a thinking model's reasoning (`delta.reasoning_content`, Kimi K2 / GLM 4.6). */
export interface ReasoningPart {
  type: "reasoning";
  choice: number;
  text: string;
}

/**
 * A tool-call fragment (`delta.tool_calls[i]`): the first fragment of a call usually carries `id` and `name`, later
 * ones more of `arguments`. `index` is the call's position; null when the provider omitted it (Moonshot does), in
 * which case a fragment without `id` continues the previous call.
 */
export interface ToolCallPart {
  type: "tool_call";
  choice: number;
  index: number | null;
  id?: string;
  name?: string;
  arguments?: string;
}

/** A choice's `finish_reason` (`stop`, `length`, `tool_calls`, ...). */
export interface FinishPart {
  type: "finish";
  choice: number;
  reason: string;
}

/** Token usage (the final `choices: []` chunk with `stream_options.include_usage`, or in a choice). */
export interface UsagePart {
  type: "usage";
  usage: Record<string, unknown>;
}

/** The stream ended cleanly and its bytes match the stored checksum: the last part. */
export interface VerifiedPart extends StreamResult {
  type: "verified";
}

/** What the end of a clean stream established: every byte received hashes to the message's stored checksum. */
export interface StreamResult {
  transaction_id: string;
  /** `sha256:<hex>` of every byte received, equal to the stored checksum. */
  checksum: string;
  size_bytes: number;
  /** The stream's last finish_reason. */
  finish_reason: string | null;
  usage: Record<string, unknown> | null;
}

export type StreamPart =
  | TransactionPart
  | ContentPart
  | ReasoningPart
  | ToolCallPart
  | FinishPart
  | UsagePart
  | VerifiedPart;

/** The deltas of one `chat.completion.chunk`, in the order a reader wants them: reasoning, content, tools, finish. */
export function partsOfChunk(chunk: Record<string, unknown>): StreamPart[] {
  const out: StreamPart[] = [];
  const choices = Array.isArray(chunk.choices) ? chunk.choices : [];
  let usage = isObject(chunk.usage) ? chunk.usage : null;
  for (const [i, raw] of choices.entries()) {
    if (!isObject(raw)) continue;
    const choice = typeof raw.index === "number" ? raw.index : i;
    const delta = isObject(raw.delta) ? raw.delta : {};
    if (typeof delta.reasoning_content === "string" && delta.reasoning_content) {
      out.push({ type: "reasoning", choice, text: delta.reasoning_content });
    }
    if (typeof delta.content === "string" && delta.content) out.push({ type: "content", choice, text: delta.content });
    if (Array.isArray(delta.tool_calls)) {
      for (const call of delta.tool_calls) if (isObject(call)) out.push(toolCallPart(choice, call));
    }
    if (typeof raw.finish_reason === "string") out.push({ type: "finish", choice, reason: raw.finish_reason });
    usage ??= isObject(raw.usage) ? raw.usage : null; // Moonshot puts usage in the choice
  }
  if (usage) out.push({ type: "usage", usage });
  return out;
}

function toolCallPart(choice: number, call: Record<string, unknown>): ToolCallPart {
  const part: ToolCallPart = { type: "tool_call", choice, index: typeof call.index === "number" ? call.index : null };
  if (typeof call.id === "string") part.id = call.id;
  const fn = isObject(call.function) ? call.function : {};
  if (typeof fn.name === "string") part.name = fn.name;
  if (typeof fn.arguments === "string") part.arguments = fn.arguments;
  return part;
}

/** A tool call assembled from its fragments. */
export interface AssembledToolCall {
  id: string | null;
  name: string;
  arguments: string;
}

/**
 * Joins tool-call fragments into calls (by `index`; a fragment without an index starts a new call when it has an
 * `id`, else continues the last one). For printing what a stream asked for; the bus's `/completion` does the same.
 */
export class ToolCallAssembler {
  readonly #calls = new Map<string, AssembledToolCall>();
  #last: string | undefined;

  add(part: ToolCallPart): void {
    let key = part.index === null ? undefined : `${part.choice}:${part.index}`;
    if (key === undefined) {
      key = part.id !== undefined || this.#last === undefined ? `${part.choice}:#${this.#calls.size}` : this.#last;
    }
    const call = this.#calls.get(key) ?? { id: null, name: "", arguments: "" };
    if (part.id !== undefined) call.id = part.id;
    if (part.name !== undefined) call.name += part.name;
    if (part.arguments !== undefined) call.arguments += part.arguments;
    this.#calls.set(key, call);
    this.#last = key;
  }

  get calls(): AssembledToolCall[] {
    return [...this.#calls.values()];
  }
}
