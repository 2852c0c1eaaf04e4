/**
 * Reading an OpenAI-style chat completion stream (server-sent events, gateways-streaming-mcp.md §4): each event's
 * `data` is a `chat.completion.chunk` JSON object, an error object (`{"error": {...}}`, as OpenRouter and others send
 * mid-stream), or the `[DONE]` sentinel. Shared by the relay (what the run records about a stream), `/completion`
 * (assembling a stream into one completion) and the watcher. Framing is left to eventsource-parser.
 */
import { createParser, type EventSourceMessage } from "eventsource-parser";

/** One event's data, interpreted. */
export type StreamEvent =
  | { kind: "done" }
  | { kind: "error"; error: Record<string, unknown> }
  | { kind: "chunk"; chunk: Record<string, unknown> }
  /** Data that is not JSON, or JSON that is neither a chunk nor an error (kept raw for findings). */
  | { kind: "invalid"; data: string };

/** Interprets one event's `data` field. */
export function readEvent(data: string): StreamEvent {
  if (data.trim() === "[DONE]") return { kind: "done" };
  let value: unknown;
  try {
    value = JSON.parse(data);
  } catch (err) {
    if (!(err instanceof SyntaxError)) throw err;
    return { kind: "invalid", data };
  }
  if (!isObject(value)) return { kind: "invalid", data };
  if (isObject(value.error)) return { kind: "error", error: value.error };
  if (Array.isArray(value.choices)) return { kind: "chunk", chunk: value };
  return { kind: "invalid", data };
}

/**
 * Feeds raw stream bytes (any split) and calls `onEvent` for each complete event's data, in order. Bytes are decoded
 * as UTF-8 with characters split across reads joined again.
 */
export class EventReader {
  #decoder = new TextDecoder();
  #parser;

  constructor(onEvent: (event: StreamEvent, raw: EventSourceMessage) => void) {
    this.#parser = createParser({ onEvent: (m) => onEvent(readEvent(m.data), m) });
  }

  push(bytes: Uint8Array): void {
    this.#parser.feed(this.#decoder.decode(bytes, { stream: true }));
  }

  /** The end of the bytes: a last event without its blank line is not an event (SSE drops it). */
  end(): void {
    const rest = this.#decoder.decode();
    if (rest) this.#parser.feed(rest);
  }
}

/** The chunk's `finish_reason`s that are set, per choice index. */
export function finishReasons(chunk: Record<string, unknown>): { index: number; reason: string }[] {
  const out: { index: number; reason: string }[] = [];
  for (const [i, choice] of (chunk.choices as unknown[]).entries()) {
    if (!isObject(choice)) continue;
    if (typeof choice.finish_reason === "string") {
      out.push({ index: typeof choice.index === "number" ? choice.index : i, reason: choice.finish_reason });
    }
  }
  return out;
}

/** The chunk's usage: top-level (OpenAI's final `choices: []` chunk) or in a choice (as Moonshot sends it). */
export function usageOf(chunk: Record<string, unknown>): Record<string, unknown> | null {
  if (isObject(chunk.usage)) return chunk.usage;
  for (const choice of chunk.choices as unknown[]) {
    if (isObject(choice) && isObject(choice.usage)) return choice.usage;
  }
  return null;
}

/** Whether the chunk carries any generated text: content, reasoning or tool-call arguments. */
export function carriesOutput(chunk: Record<string, unknown>): boolean {
  for (const choice of chunk.choices as unknown[]) {
    if (!isObject(choice) || !isObject(choice.delta)) continue;
    const d = choice.delta;
    if (typeof d.content === "string" && d.content.length > 0) return true;
    if (typeof d.reasoning_content === "string" && d.reasoning_content.length > 0) return true;
    if (Array.isArray(d.tool_calls) && d.tool_calls.length > 0) return true;
  }
  return false;
}

const encoder = new TextEncoder();

/**
 * The bus's error event, `data: {"error": {...}}` in the shape OpenAI's SDKs raise on; after a blank line when the
 * bytes before it stop inside an event (so that it stands on its own).
 */
export function errorEvent(code: string, message: string, midEvent: boolean): Uint8Array {
  const event = `data: ${JSON.stringify({ error: { message, type: code, code } })}\n\n`;
  return encoder.encode(midEvent ? `\n\n${event}` : event);
}

/** Whether text ending in `tail` ends between two server-sent events (after a blank line). */
export function atEventBoundary(tail: string): boolean {
  return tail === "" || /(\n\n|\r\r|\r\n\r\n)$/.test(tail);
}

/** The last 4 characters of `tail` followed by `bytes` (ASCII line ends are all a boundary needs). */
export function nextTail(tail: string, bytes: Uint8Array): string {
  return (tail + String.fromCharCode(...bytes.subarray(Math.max(0, bytes.length - 4)))).slice(-4);
}

export function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}
