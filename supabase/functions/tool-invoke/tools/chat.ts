/**
 * The `chat` tool: an OpenAI chat completion through the chosen provider. Its input is the completion request
 * without `model` and `stream` (the bus sets them); unknown OpenAI parameters pass through unchanged.
 */
import { z } from "zod";
import type { Tool } from "./tool.ts";
import { createChatCompletion } from "../../_shared/providers/openai_compatible.ts";

const message = z.looseObject({
  role: z.enum(["system", "user", "assistant", "tool", "developer"]),
  content: z.union([z.string(), z.array(z.unknown()), z.null()]),
});

export const chatInputSchema = z.looseObject({
  messages: z.array(message).min(1, "messages must not be empty"),
  max_tokens: z.number().int().positive().optional(),
  temperature: z.number().min(0).max(2).optional(),
  response_format: z.looseObject({ type: z.string() }).optional(),
  stream: z.literal(false, { error: "stream is not supported: the bus stores whole responses" }).optional(),
  model: z.never({ error: "set model at the top level of the request, not in input" }).optional(),
});

export const chatTool: Tool<z.infer<typeof chatInputSchema>> = {
  name: "chat",
  inputSchema: chatInputSchema,
  call: ({ client, model, input, signal }) => createChatCompletion(client, { ...input, model }, signal),
  wantsJson: (input) => {
    const type = input.response_format?.type;
    return type === "json_object" || type === "json_schema";
  },
};
