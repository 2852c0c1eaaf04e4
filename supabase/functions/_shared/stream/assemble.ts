/**
 * Assembles a stored chat completion stream (the server-sent events exactly as relayed, CONTRACT.md §10) into ONE
 * OpenAI `chat.completion` object (CONTRACT.md §5 `/completion`), incrementally: bytes are pushed as they are read
 * from the database and only the growing strings of the answer are kept, never the stream itself.
 *
 * Per choice (by `index`): `content`, `reasoning_content` and `refusal` deltas concatenated (`content` stays null
 * when the stream never sent any, as OpenAI's non-streamed answers do; the other two are left out then),
 * `tool_calls` merged by `index` — id, type and function name from the fragment that first carries them,
 * `function.arguments` concatenated — and the last `finish_reason`. Moonshot's tool-call deltas may lack `index`
 * (gateways-streaming-mcp.md §4): a fragment with a new `id` then starts a new call and a fragment with neither id
 * nor index continues the last one. `usage` is the last one sent, top level (OpenAI's final `choices: []` chunk)
 * or inside a choice (Moonshot). `id`, `created`, `model`, `system_fingerprint` and `service_tier` come from the
 * chunks. What the stream never carried is left out (`usage` without `include_usage`), so the result of a stream
 * equals the provider's non-streamed answer to the same request.
 */
import { EventReader, finishReasons, isObject, usageOf } from "./events.ts";

/** What was read besides the answer: enough to say what arrived of a stream that broke off. */
export interface StreamStats {
  /** Raw bytes pushed. */
  bytes: number;
  /** Events with data (comments and blank lines are not events). */
  events: number;
  /** `chat.completion.chunk` events. */
  chunks: number;
  /** Whether `data: [DONE]` arrived. */
  done: boolean;
  /** The `error` objects of error events (a provider's mid-stream error, or the bus's `stream_incomplete`). */
  errors: Record<string, unknown>[];
  /** Events whose data is neither a chunk, an error nor [DONE]; `firstInvalid` is the first one's data. */
  invalid: number;
  firstInvalid?: string;
  /** Whether any choice got a `finish_reason`. */
  finished: boolean;
  /** UTF-8 bytes of content and reasoning deltas (clipped or not). */
  outputBytes: number;
  /** True when a text field was longer than `maxChars` and only its start was kept. */
  clipped: boolean;
}

/** The assembled answer and what the stream held. */
export interface AssembledStream {
  completion: Record<string, unknown>;
  stats: StreamStats;
}

export interface AssembleOptions {
  /**
   * Keep at most this many characters (UTF-16 code units) of each text field; the rest is counted but dropped and
   * `stats.clipped` set. For readers that check an answer rather than return it (the watcher). Default: no limit.
   */
  maxChars?: number;
}

/** Pieces of one text field; null until the stream sends the field. */
class Text {
  #parts: string[] = [];
  #kept = 0;
  constructor(readonly max: number, readonly onClip: () => void) {}

  add(piece: string): void {
    if (this.#kept >= this.max) {
      if (piece.length > 0) this.onClip();
      return;
    }
    const room = this.max - this.#kept;
    if (piece.length > room) this.onClip();
    const kept = piece.length > room ? piece.slice(0, room) : piece;
    this.#parts.push(kept);
    this.#kept += kept.length;
  }

  toString(): string {
    return this.#parts.join("");
  }
}

interface ToolCall {
  index: number;
  id?: string;
  type?: string;
  name?: string;
  arguments: Text;
}

interface Choice {
  index: number;
  role?: string;
  content: Text | null;
  reasoning: Text | null;
  refusal: Text | null;
  toolCalls: ToolCall[];
  /** Tool calls by their `index`, and the call the last fragment went to (for fragments without one). */
  callsByIndex: Map<number, ToolCall>;
  lastCall?: ToolCall;
  finishReason: string | null;
  logprobs: { content: unknown[]; refusal: unknown[] } | null;
}

/** Feeds stored stream bytes in any split; {@link StreamAssembler.end} gives the one completion. */
export class StreamAssembler {
  readonly stats: StreamStats = {
    bytes: 0,
    events: 0,
    chunks: 0,
    done: false,
    errors: [],
    invalid: 0,
    finished: false,
    outputBytes: 0,
    clipped: false,
  };
  #reader: EventReader;
  #choices = new Map<number, Choice>();
  #top: Record<string, unknown> = {};
  #usage: Record<string, unknown> | null = null;
  #maxChars: number;
  #clip = () => (this.stats.clipped = true);

  constructor(opts: AssembleOptions = {}) {
    this.#maxChars = opts.maxChars ?? Infinity;
    this.#reader = new EventReader((event) => {
      this.stats.events++;
      if (event.kind === "done") this.stats.done = true;
      else if (event.kind === "error") this.stats.errors.push(event.error);
      else if (event.kind === "invalid") {
        this.stats.invalid++;
        this.stats.firstInvalid ??= event.data;
      } else this.#chunk(event.chunk);
    });
  }

  /** The next stored bytes (any split, characters and events cut anywhere). */
  push(bytes: Uint8Array): void {
    this.stats.bytes += bytes.length;
    this.#reader.push(bytes);
  }

  /** The end of the stream: the completion assembled from every chunk read. */
  end(): AssembledStream {
    this.#reader.end();
    const completion: Record<string, unknown> = {
      id: this.#top.id ?? null,
      object: "chat.completion",
      created: this.#top.created ?? null,
      model: this.#top.model ?? null,
      choices: [...this.#choices.values()].sort((a, b) => a.index - b.index).map(choiceOut),
    };
    for (const key of ["system_fingerprint", "service_tier"]) {
      if (this.#top[key] !== undefined) completion[key] = this.#top[key];
    }
    if (this.#usage) completion.usage = this.#usage;
    return { completion, stats: this.stats };
  }

  #chunk(chunk: Record<string, unknown>): void {
    this.stats.chunks++;
    for (const key of ["id", "created", "model", "system_fingerprint", "service_tier"]) {
      if (this.#top[key] === undefined && chunk[key] !== undefined && chunk[key] !== null) this.#top[key] = chunk[key];
    }
    this.#usage = usageOf(chunk) ?? this.#usage;
    for (const [position, raw] of (chunk.choices as unknown[]).entries()) {
      if (!isObject(raw)) continue;
      const choice = this.#choice(typeof raw.index === "number" ? raw.index : position);
      if (isObject(raw.delta)) this.#delta(choice, raw.delta);
      if (isObject(raw.logprobs)) {
        choice.logprobs ??= { content: [], refusal: [] };
        if (Array.isArray(raw.logprobs.content)) choice.logprobs.content.push(...raw.logprobs.content);
        if (Array.isArray(raw.logprobs.refusal)) choice.logprobs.refusal.push(...raw.logprobs.refusal);
      }
    }
    for (const { index, reason } of finishReasons(chunk)) {
      this.#choice(index).finishReason = reason;
      this.stats.finished = true;
    }
  }

  #choice(index: number): Choice {
    let choice = this.#choices.get(index);
    if (!choice) {
      choice = {
        index,
        content: null,
        reasoning: null,
        refusal: null,
        toolCalls: [],
        callsByIndex: new Map(),
        finishReason: null,
        logprobs: null,
      };
      this.#choices.set(index, choice);
    }
    return choice;
  }

  #text(): Text {
    return new Text(this.#maxChars, this.#clip);
  }

  #delta(choice: Choice, delta: Record<string, unknown>): void {
    if (typeof delta.role === "string") choice.role ??= delta.role;
    if (typeof delta.content === "string") {
      (choice.content ??= this.#text()).add(delta.content);
      this.stats.outputBytes += utf8Length(delta.content);
    }
    if (typeof delta.reasoning_content === "string") {
      (choice.reasoning ??= this.#text()).add(delta.reasoning_content);
      this.stats.outputBytes += utf8Length(delta.reasoning_content);
    }
    if (typeof delta.refusal === "string") (choice.refusal ??= this.#text()).add(delta.refusal);
    if (Array.isArray(delta.tool_calls)) {
      for (const fragment of delta.tool_calls) if (isObject(fragment)) this.#toolFragment(choice, fragment);
    }
  }

  #toolFragment(choice: Choice, fragment: Record<string, unknown>): void {
    const id = typeof fragment.id === "string" && fragment.id !== "" ? fragment.id : undefined;
    let call: ToolCall | undefined;
    if (typeof fragment.index === "number") call = choice.callsByIndex.get(fragment.index);
    else if (id === undefined || choice.lastCall?.id === id) call = choice.lastCall; // Moonshot: no index
    if (!call) {
      const index = typeof fragment.index === "number"
        ? fragment.index
        : Math.max(-1, ...choice.callsByIndex.keys()) + 1;
      call = { index, arguments: this.#text() };
      choice.callsByIndex.set(index, call);
      choice.toolCalls.push(call);
    }
    choice.lastCall = call;
    call.id ??= id;
    if (typeof fragment.type === "string" && fragment.type !== "") call.type ??= fragment.type;
    const fn = isObject(fragment.function) ? fragment.function : {};
    if (typeof fn.name === "string" && fn.name !== "") call.name ??= fn.name;
    if (typeof fn.arguments === "string") call.arguments.add(fn.arguments);
  }
}

/**
 * Reads `source` (stored stream bytes, decoded and verified by the caller) to its end and assembles it.
 *
 * @example
 * ```ts
 * const { completion, stats } = await assembleStream(verifiedPayload(meta, storedChunks(caller, meta), "identity"));
 * if (!stats.done) console.warn("the stream did not end with [DONE]");
 * ```
 */
export async function assembleStream(
  source: AsyncIterable<Uint8Array>,
  opts: AssembleOptions = {},
): Promise<AssembledStream> {
  const assembler = new StreamAssembler(opts);
  for await (const bytes of source) assembler.push(bytes);
  return assembler.end();
}

function choiceOut(c: Choice): Record<string, unknown> {
  const message: Record<string, unknown> = { role: c.role ?? "assistant", content: c.content?.toString() ?? null };
  if (c.reasoning) message.reasoning_content = c.reasoning.toString();
  if (c.refusal) message.refusal = c.refusal.toString();
  if (c.toolCalls.length > 0) {
    message.tool_calls = [...c.toolCalls].sort((a, b) => a.index - b.index).map((t) => ({
      id: t.id ?? null,
      type: t.type ?? "function",
      function: { name: t.name ?? null, arguments: t.arguments.toString() },
    }));
  }
  const out: Record<string, unknown> = { index: c.index, message };
  if (c.logprobs) out.logprobs = c.logprobs;
  out.finish_reason = c.finishReason;
  return out;
}

/** UTF-8 length of a string as TextEncoder encodes it (a lone surrogate becomes U+FFFD), without encoding it. */
export function utf8Length(s: string): number {
  let n = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x80) n += 1;
    else if (c < 0x800) n += 2;
    else if (c >= 0xd800 && c <= 0xdbff && i + 1 < s.length && (s.charCodeAt(i + 1) & 0xfc00) === 0xdc00) {
      n += 4; // a surrogate pair
      i++;
    } else n += 3;
  }
  return n;
}
