/**
 * The `chat` tool: an OpenAI chat completion through the chosen provider. Its input is the completion request
 * without `model` and `stream` (the bus sets them); unknown OpenAI parameters pass through unchanged.
 */
import { z } from "zod";
import type { ProviderRequest, Tool } from "./tool.ts";
import { pieces } from "../bytes.ts";

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
});

const encoder = new TextEncoder();

export const chatTool: Tool<z.infer<typeof chatInputSchema>> = {
  name: "chat",
  description: "An OpenAI-compatible chat completion (messages in, the provider's chat.completion JSON out).",
  inputSchema: chatInputSchema,
  providerRequest: (inputJson, model) => completionRequest(inputJson, { model, stream: false }),
  wantsJson: (input) => {
    const type = input.response_format?.type;
    return type === "json_object" || type === "json_schema";
  },
};

/**
 * POST /chat/completions with the body `inputJson` (a JSON object, as received) plus `fields` as its last members.
 * The input's bytes are sent as they are, with the fields spliced in before its closing brace: a 90 MB prompt is
 * neither decoded nor serialised again. The input schema refuses `model` and a true `stream` in the input, so the
 * spliced members are never a second copy of a key.
 */
export function completionRequest(inputJson: Uint8Array, fields: Record<string, unknown>): ProviderRequest {
  const close = inputJson.lastIndexOf(0x7d); // "}": the input is a JSON object
  if (inputJson[0] !== 0x7b || close < 0) throw new Error("completionRequest() needs the JSON text of an object");
  const head = inputJson.subarray(0, close);
  let last = head.length - 1; // the last byte before "}" that is not white space: "{" when the object is empty
  while (last > 0 && (head[last] === 0x20 || head[last] === 0x0a || head[last] === 0x0d || head[last] === 0x09)) last--;
  const empty = last === 0;
  const members = Object.entries(fields).map(([k, v]) => `${JSON.stringify(k)}:${JSON.stringify(v)}`).join(",");
  const tail = encoder.encode(`${empty ? "" : ","}${members}}`);
  const size = head.length + tail.length;
  return {
    path: "/chat/completions",
    size,
    body: () => {
      if (size <= SINGLE_BUFFER) {
        const out = new Uint8Array(size);
        out.set(head, 0);
        out.set(tail, head.length);
        return out;
      }
      return ReadableStream.from([...pieces(head), tail]);
    },
  };
}

/** Bodies up to this size are sent as one buffer (a copy costs less than a chunked upload); larger ones stream. */
const SINGLE_BUFFER = 1024 * 1024;
