/**
 * The `chat` tool: an OpenAI chat completion through the chosen provider. Its input is the completion request
 * without `model` and `stream` (the bus sets them); unknown OpenAI parameters pass through unchanged.
 */
import { z } from "zod";
import { scanJson } from "../door/json_scan.ts";
import type { BodyPart, ProviderRequest, Tool } from "./tool.ts";
import { pieces } from "../bytes.ts";

/** Most files one chat may use (CONTRACT.md §13). */
export const MAX_CHAT_FILES = 20;

const message = z.looseObject({
  role: z.enum(["system", "user", "assistant", "tool", "developer"]),
  content: z.union([z.string(), z.array(z.unknown()), z.null()]),
});

export const chatInputSchema = z.looseObject({
  messages: z.array(message).min(1, "messages must not be empty"),
  max_tokens: z.number().int().positive().optional(),
  temperature: z.number().min(0).max(2).optional(),
  response_format: z.looseObject({ type: z.string() }).optional(),
  stream: z.literal(false, { error: "stream is not supported here: use the openai endpoint to stream" }).optional(),
  model: z.never({ error: "set model at the top level of the request, not in input" }).optional(),
  /** Uploaded files (the `files` function) sent with the messages as the provider understands them (§13). */
  files: z.array(z.uuid({ error: "must be a file id (a UUID)" }).transform((s) => s.toLowerCase()))
    .min(1, "must name at least one file (or leave files out)")
    .max(MAX_CHAT_FILES, `must name at most ${MAX_CHAT_FILES} files`)
    .refine((ids) => new Set(ids).size === ids.length, "must not name a file twice")
    .optional(),
});

const encoder = new TextEncoder();

export const chatTool: Tool<z.infer<typeof chatInputSchema>> = {
  name: "chat",
  description: "An OpenAI-compatible chat completion (messages in, the provider's chat.completion JSON out).",
  inputSchema: chatInputSchema,
  // `files` is the bus's own member: it names what the file messages carry and does not go to the provider.
  providerRequest: (inputJson, model, messages, opts) => {
    const fields = { model, stream: opts?.stream === true };
    return messages
      ? completionRequest(inputJson, fields, { messages, drop: ["files"] })
      : completionRequest(inputJson, fields);
  },
  wantsJson: (input) => {
    const type = input.response_format?.type;
    return type === "json_object" || type === "json_schema";
  },
};

/** What goes into the input's bytes besides the fields at the end. */
export interface Splice {
  /** JSON messages put first in `messages` (the file messages, CONTRACT.md §13). */
  messages: BodyPart[];
  /** Top-level members of the input left out (their bytes are cut). */
  drop?: string[];
}

/**
 * POST /chat/completions with the body `inputJson` (a JSON object, as received) plus `fields` as its last members.
 * The input's bytes are sent as they are, with the fields spliced in before its closing brace: a 90 MB prompt is
 * neither decoded nor serialised again. The input schema refuses `model` and a true `stream` in the input, so the
 * spliced members are never a second copy of a key. With `splice`, `splice.messages` go first in the `messages`
 * array (after its `[`) and the members named in `splice.drop` are cut out, still without decoding anything else.
 */
export function completionRequest(
  inputJson: Uint8Array,
  fields: Record<string, unknown>,
  splice?: Splice,
): ProviderRequest {
  const close = inputJson.lastIndexOf(0x7d); // "}": the input is a JSON object
  if (inputJson[0] !== 0x7b || close < 0) throw new Error("completionRequest() needs the JSON text of an object");
  const head = inputJson.subarray(0, close);
  let last = head.length - 1; // the last byte before "}" that is not white space: "{" when the object is empty
  while (last > 0 && isSpace(head[last])) last--;
  const empty = last === 0;
  const members = Object.entries(fields).map(([k, v]) => `${JSON.stringify(k)}:${JSON.stringify(v)}`).join(",");
  const tail = encoder.encode(`${empty ? "" : ","}${members}}`);
  const parts: BodyPart[] = splice ? [...spliced(head, splice), tail] : [head, tail];
  const size = parts.reduce((n, p) => n + (p instanceof Uint8Array ? p.length : p.size), 0);
  const streams = parts.some((p) => !(p instanceof Uint8Array));
  return {
    path: "/chat/completions",
    size,
    body: () => {
      if (!streams && size <= SINGLE_BUFFER) {
        const out = new Uint8Array(size);
        let at = 0;
        for (const p of parts as Uint8Array[]) {
          out.set(p, at);
          at += p.length;
        }
        return out;
      }
      return ReadableStream.from((async function* () {
        for (const p of parts) {
          // Large buffers as 64 KiB views: fetch copies each piece it is handed (bench/RESULTS.md, hardening).
          if (p instanceof Uint8Array) yield* pieces(p);
          else yield* p.stream();
        }
      })());
    },
  };
}

/**
 * The pieces of `head` (the input without its closing brace) with `splice` applied: the input is scanned again,
 * with every long string left undecoded, only to find where `messages` starts and which byte ranges to cut.
 */
function spliced(head: Uint8Array, splice: Splice): BodyPart[] {
  const object = new Uint8Array(head.length + 1);
  object.set(head);
  object[head.length] = 0x7d;
  const { members } = scanJson(object, { maxDepth: 10_000, longString: 64 * 1024, elideUnder: "*" });
  const messages = members.get("messages");
  if (!messages || object[messages.start] !== 0x5b) throw new Error("the chat input has no messages array");
  // Cuts: each dropped member from its key to its value's end, with the comma that joins it to its neighbour.
  const cuts = (splice.drop ?? []).flatMap((key) => {
    const range = members.get(key);
    return range ? [memberSpan(object, range.start, range.end)] : [];
  }).sort((a, b) => a[0] - b[0]);
  const at = messages.start + 1; // just after "["
  const out: BodyPart[] = [];
  let from = 0;
  const copy = (to: number) => {
    for (const [start, end] of cuts) {
      if (start >= to || end <= from) continue;
      if (start > from) out.push(head.subarray(from, start));
      from = Math.max(from, end);
    }
    if (to > from) out.push(head.subarray(from, to));
    from = Math.max(from, to);
  };
  copy(at);
  for (const m of splice.messages) out.push(m, COMMA);
  copy(head.length);
  return out;
}

/**
 * The byte span to cut for a member whose value is `[valueStart, valueEnd)`: from its key (found backwards) to the
 * value's end, plus the comma after it; or, for the last member, the comma before it.
 */
function memberSpan(json: Uint8Array, valueStart: number, valueEnd: number): [number, number] {
  let i = valueStart - 1;
  while (isSpace(json[i])) i--;
  i--; // the colon
  while (isSpace(json[i])) i--;
  // The key's closing quote is at i; its opening quote is the first unescaped quote before it.
  let keyStart = i - 1;
  while (!(json[keyStart] === 0x22 && !escaped(json, keyStart))) keyStart--;
  let end = valueEnd;
  while (isSpace(json[end])) end++;
  if (json[end] === 0x2c) return [keyStart, end + 1];
  let start = keyStart - 1;
  while (isSpace(json[start])) start--;
  return json[start] === 0x2c ? [start, valueEnd] : [keyStart, valueEnd];
}

/** Whether the byte at `i` is escaped (an odd number of backslashes before it). */
function escaped(json: Uint8Array, i: number): boolean {
  let n = 0;
  while (json[i - 1 - n] === 0x5c) n++;
  return n % 2 === 1;
}

const isSpace = (b: number) => b === 0x20 || b === 0x0a || b === 0x0d || b === 0x09;
const COMMA = encoder.encode(",");

/** Bodies up to this size are sent as one buffer (a copy costs less than a chunked upload); larger ones stream. */
const SINGLE_BUFFER = 1024 * 1024;
