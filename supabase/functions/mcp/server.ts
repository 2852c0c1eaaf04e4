/**
 * The bus as an MCP server (CONTRACT.md §11): one fresh McpServer per HTTP request (createMcpHandler calls the
 * factory per request, for both protocol eras), bound to the caller the route authenticated. The tools answer
 * with claim checks and pages, never with a whole large payload, because MCP clients cut long tool results
 * (Claude Code at ~25,000 tokens, gateways-streaming-mcp.md §3).
 */
import { type AuthInfo, McpServer, ResourceTemplate } from "@modelcontextprotocol/server";
import type { Caller } from "../_shared/auth.ts";
import type { McpDeps, ToolContext } from "./deps.ts";
import { chat } from "./chat_tool.ts";
import { fetchMessage, listMessages, messageMeta, waitMessage } from "./read_tools.ts";
import { listMessageResources, MESSAGE_TEMPLATE, readMessageResource } from "./resource.ts";
import {
  chatInput,
  chatOutput,
  DEFAULT_PAGE_BYTES,
  fetchInput,
  fetchOutput,
  idInput,
  listInput,
  listOutput,
  metaOutput,
  waitInput,
} from "./schemas.ts";

export const SERVER_INFO = { name: "supabase-message-bus", version: "0.1.0" };

const INSTRUCTIONS = "A claim-check message bus for LLM calls. `chat` stores the provider's whole response and " +
  "returns its transaction_id and checksum, not the response. Read the response with `fetch_message` in pages " +
  `(offset 0, then each next_offset, up to ${DEFAULT_PAGE_BYTES} bytes each) or with resources/read on ` +
  "bus://messages/<transaction_id>; the joined pages hash (SHA-256) to the checksum.";

/** The caller that the route put into `authInfo` (see app.ts). */
export function callerOf(authInfo: AuthInfo | undefined): Caller {
  const caller = authInfo?.extra?.caller as Caller | undefined;
  if (!caller) throw new Error("the MCP server was built without an authenticated caller");
  return caller;
}

/** Builds the server for one request of `authInfo`'s caller. */
export function createBusMcpServer(authInfo: AuthInfo | undefined, deps: McpDeps): McpServer {
  const ctx: ToolContext = { ...deps, caller: callerOf(authInfo) };
  const server = new McpServer(SERVER_INFO, {
    capabilities: { tools: {}, resources: {} },
    instructions: INSTRUCTIONS,
  });

  server.registerTool("chat", {
    title: "Chat (stored, checksummed)",
    description: "Ask an LLM provider through the message bus. The whole response is stored and checksummed; " +
      "this returns its transaction_id, checksum and size, not the text. Then read the response with " +
      "fetch_message (pages) or resources/read. Give prompt (plus optional system) or messages.",
    inputSchema: chatInput,
    outputSchema: chatOutput,
    annotations: { readOnlyHint: false, destructiveHint: false, idempotentHint: false, openWorldHint: true },
  }, (args) => chat(args, ctx));

  server.registerTool("fetch_message", {
    title: "Read a stored response, one page at a time",
    description: "Returns bytes [offset, offset+max_bytes) of a message's stored payload as text (a page never " +
      "splits a UTF-8 character, so it may be a few bytes shorter). Start at offset 0 and repeat with " +
      "next_offset until it is null; the joined pages hash (SHA-256) to checksum. The first text block is the " +
      "page itself.",
    inputSchema: fetchInput,
    outputSchema: fetchOutput,
    annotations: { readOnlyHint: true, openWorldHint: false },
  }, (args) => fetchMessage(args, ctx));

  server.registerTool("message_meta", {
    title: "Message status and metadata",
    description: "Status (pending, completed, failed, expired), size, checksum, finish_reason, provider, model, " +
      "watcher findings and errors of one message.",
    inputSchema: idInput,
    outputSchema: metaOutput,
    annotations: { readOnlyHint: true, openWorldHint: false },
  }, (args) => messageMeta(args, ctx));

  server.registerTool("list_messages", {
    title: "List your messages",
    description: "Your messages changed after `since` (ISO time), oldest change first, with their metadata. " +
      "To continue, pass the last message's updated_at as since.",
    inputSchema: listInput,
    outputSchema: listOutput,
    annotations: { readOnlyHint: true, openWorldHint: false },
  }, (args) => listMessages(args, ctx));

  server.registerTool("wait_message", {
    title: "Wait for a message to complete",
    description: "Waits (at most timeout_seconds) until a pending message completes or fails and returns its " +
      "metadata; for clients that cannot subscribe to Realtime. Still pending at the deadline: call it again.",
    inputSchema: waitInput,
    outputSchema: metaOutput,
    annotations: { readOnlyHint: true, openWorldHint: false },
  }, (args, extra) => waitMessage(args, ctx, extra.mcpReq.signal));

  server.registerResource(
    "message",
    new ResourceTemplate(MESSAGE_TEMPLATE, { list: () => listMessageResources(ctx) }),
    {
      title: "Stored message payload",
      description: "The whole stored response of a message (for large ones use the fetch_message tool)",
      mimeType: "application/json",
    },
    (uri, variables) => readMessageResource(uri, variables.transaction_id, ctx),
  );
  return server;
}
