/**
 * The MCP tools' input and output schemas (zod; the SDK turns them into the JSON Schemas of `tools/list` and
 * checks arguments and structured results against them). Descriptions are written for the model that picks the
 * tool and fills in its arguments. Built once per instance, not per request.
 */
import { z } from "zod";
import { isoTime, transactionId } from "../_shared/door/validate.ts";
import { idempotencyKeySchema } from "../_shared/invoke/request.ts";
import { MIN_PAGE_BYTES } from "../_shared/payload_page.ts";

/** Default and largest `max_bytes` of a fetch_message page. */
export const DEFAULT_PAGE_BYTES = 65_536;
export const MAX_PAGE_BYTES = 4 * 1024 * 1024;
/** Default and longest wait of wait_message, in seconds (a hosted request idles out after 150 s). */
export const DEFAULT_WAIT_SECONDS = 30;
export const MAX_WAIT_SECONDS = 120;

const id = transactionId().describe("The transaction_id that chat (or tool-invoke) returned");

/** An OpenAI chat message; the fields models send, spelled out so that every client can map the schema. */
const chatMessage = z.object({
  role: z.enum(["system", "user", "assistant", "tool", "developer"]),
  content: z.union([z.string(), z.array(z.looseObject({ type: z.string() })), z.null()]),
  name: z.string().optional(),
  tool_call_id: z.string().optional(),
  tool_calls: z.array(z.looseObject({ id: z.string(), type: z.string() })).optional(),
});

export const chatInput = z.object({
  prompt: z.string().min(1).optional().describe("The user's message. Give either prompt or messages."),
  system: z.string().min(1).optional().describe("An optional system message sent before prompt (not with messages)."),
  messages: z.array(chatMessage).min(1).optional().describe(
    "The whole conversation as OpenAI chat messages ({role, content}), instead of prompt.",
  ),
  provider: z.string().min(1).max(100).optional().describe("Which provider answers (default: the bus's default)."),
  model: z.string().min(1).max(200).optional().describe("The model, sent as given (default: the provider's)."),
  max_tokens: z.number().int().positive().optional().describe("The most tokens the answer may take."),
  temperature: z.number().min(0).max(2).optional(),
  mode: z.enum(["sync", "async"]).default("sync").describe(
    "sync (default): answer once the response is stored. async: answer at once with status pending; then call " +
      "wait_message.",
  ),
  session_id: z.string().min(1).max(200).optional().describe("Groups messages of one agent session."),
  ttl_seconds: z.number().int().positive().optional().describe("How long the response is kept (default 2 days)."),
  idempotency_key: idempotencyKeySchema.optional().describe(
    "Repeat a call with the same key to get the same transaction instead of a second provider call.",
  ),
}).superRefine((args, ctx) => {
  if ((args.prompt === undefined) === (args.messages === undefined)) {
    ctx.addIssue({ code: "custom", path: ["prompt"], message: "give exactly one of prompt and messages" });
  }
  if (args.system !== undefined && args.messages !== undefined) {
    ctx.addIssue({ code: "custom", path: ["system"], message: "put the system message into messages instead" });
  }
});

const nullableString = z.string().nullable();
const nullableInt = z.number().int().nullable();

export const chatOutput = z.object({
  transaction_id: z.string(),
  status: z.enum(["pending", "completed", "failed"]),
  checksum: nullableString.describe("sha256:<hex> of the stored payload"),
  payload_size_bytes: nullableInt,
  finish_reason: nullableString,
  provider: nullableString,
  model: nullableString,
  expires_at: nullableString,
});

export const fetchInput = z.object({
  transaction_id: id,
  offset: z.number().int().min(0).default(0).describe("Byte offset of the page: 0, then each page's next_offset."),
  max_bytes: z.number().int().min(MIN_PAGE_BYTES).max(MAX_PAGE_BYTES).default(DEFAULT_PAGE_BYTES).describe(
    `Most bytes in the page (default ${DEFAULT_PAGE_BYTES}); the page ends early rather than split a character.`,
  ),
});

export const fetchOutput = z.object({
  transaction_id: z.string(),
  offset: z.number().int(),
  next_offset: nullableInt.describe("Where the next page starts; null when this page ends the payload"),
  total_bytes: z.number().int(),
  page_bytes: z.number().int(),
  encoding: z.enum(["utf-8", "base64"]).describe("utf-8: the text is the page; base64: the page is not UTF-8"),
  checksum: z.string().describe("sha256:<hex> of the whole payload: hash the joined pages to verify"),
  content_type: nullableString,
});

export const idInput = z.object({ transaction_id: id });

export const listInput = z.object({
  since: isoTime().default("1970-01-01T00:00:00Z").describe(
    "Only messages changed after this ISO time; pass the last updated_at to continue.",
  ),
  // Default 20: a result of 1000 metas (about 1.2 MB) would pass any client's cap on tool results.
  limit: z.number().int().min(1).max(1000).default(20).describe(
    "How many (default 20, at most 1000; each meta is about 1 KB of JSON).",
  ),
});

export const waitInput = z.object({
  transaction_id: id,
  timeout_seconds: z.number().int().min(1).max(MAX_WAIT_SECONDS).default(DEFAULT_WAIT_SECONDS).describe(
    `Longest wait (default ${DEFAULT_WAIT_SECONDS}, at most ${MAX_WAIT_SECONDS}); call again while still pending.`,
  ),
});

/**
 * A message's meta (CONTRACT.md §5) as structured content: the fields programs branch on are typed, the rest
 * pass through, so meta can grow without breaking the output check.
 */
export const metaOutput = z.looseObject({
  transaction_id: z.string(),
  status: z.enum(["pending", "completed", "failed", "expired"]),
  tool: z.string(),
  provider: nullableString,
  model: nullableString,
  checksum: nullableString,
  payload_size_bytes: nullableInt,
  stored_size_bytes: nullableInt,
  compression: z.enum(["none", "gzip"]).nullable(),
  finish_reason: nullableString,
  created_at: z.string(),
  expires_at: z.string(),
  updated_at: z.string(),
  retrieved_count: z.number().int(),
  error: z.looseObject({ code: z.string(), message: z.string() }).nullable(),
  watcher: z.object({
    verdict: z.enum(["ok", "warning", "error"]),
    findings: z.array(z.looseObject({ code: z.string(), message: z.string() })),
  }).nullable(),
});

export const listOutput = z.object({ messages: z.array(metaOutput) });
