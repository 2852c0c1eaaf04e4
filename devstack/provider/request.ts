import { z } from "zod";

const MessageSchema = z.looseObject({ role: z.string().min(1), content: z.unknown().optional() });

/** The part of a chat completion request the stand-in reads; other fields are accepted and ignored. */
const ChatRequestSchema = z.looseObject({
  model: z.string().min(1),
  messages: z.array(MessageSchema).min(1),
  stream: z.boolean().nullish(),
  stream_options: z.looseObject({ include_usage: z.boolean().nullish() }).nullish(),
});

/** A validated chat completion request. */
export type ChatRequest = z.infer<typeof ChatRequestSchema>;

/** The outcome of {@link parseChatRequest}: the request, or what is wrong with it and which field. */
export type ParsedChatRequest =
  | { ok: true; request: ChatRequest }
  | { ok: false; message: string; param: string | null };

/**
 * Parses and minimally validates a chat completion request body: `model` (non-empty string) and `messages`
 * (non-empty array of objects with a `role`) are required; `stream` and `stream_options.include_usage` are
 * read when present.
 */
export function parseChatRequest(text: string): ParsedChatRequest {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (error) {
    return { ok: false, message: `Expected a JSON body, got invalid JSON: ${(error as Error).message}`, param: null };
  }
  const parsed = ChatRequestSchema.safeParse(raw);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const param = issue.path.length ? issue.path.map(String).join(".") : null;
    return { ok: false, message: `Invalid request${param ? ` at ${param}` : ""}: ${issue.message}`, param };
  }
  return { ok: true, request: parsed.data };
}

/** The text of a message's content: a string, or the `text` of its text parts joined by newlines. */
export function contentText(content: unknown): string {
  if (typeof content === "string") return content;
  if (!Array.isArray(content)) return "";
  return content
    .map((part) => (part && typeof part === "object" && typeof part.text === "string" ? part.text : ""))
    .filter(Boolean)
    .join("\n");
}

/** The text of the last message with role "user" ("" when there is none). */
export function lastUserText(request: ChatRequest): string {
  for (let i = request.messages.length - 1; i >= 0; i--) {
    if (request.messages[i].role === "user") return contentText(request.messages[i].content);
  }
  return "";
}

/** A rough prompt token estimate: UTF-8 bytes of all message texts over 4, at least 1. */
export function promptTokens(request: ChatRequest): number {
  const encoder = new TextEncoder();
  const bytes = request.messages.reduce((sum, m) => sum + encoder.encode(contentText(m.content)).length, 0);
  return Math.max(1, Math.ceil(bytes / 4));
}
