/**
 * The message bus SDK for agents: start tool calls, get the transaction ID pushed over Supabase Realtime when a
 * message changes status, then fetch the bytes and verify them. Runs under Deno, in browsers, and on Node 20
 * (pass `realtime: { transport: WebSocket }` from `ws`).
 *
 * @example
 * ```ts
 * import { createBusClient } from "./client/mod.ts";
 *
 * const bus = createBusClient({ url: "http://127.0.0.1:54321", accessToken: userJwt });
 * const { data, error } = await bus.call({
 *   tool: "chat",
 *   provider: "kimi",
 *   input: { messages: [{ role: "user", content: "Summarise the report." }] },
 * });
 * if (error) console.error(error.code, error.message);
 * else console.log(data.payload.json());
 * await bus.close();
 * ```
 *
 * @module
 */
export { BusClient, type BusClientOptions, createBusClient, userIdOf } from "./bus_client.ts";
export type { CallOptions } from "./call.ts";
export { ChatStream, streamBody, type StreamOptions, type StreamRequest } from "./stream.ts";
export {
  type AssembledToolCall,
  type ContentPart,
  type FinishPart,
  partsOfChunk,
  type ReasoningPart,
  type StreamPart,
  type StreamResult,
  ToolCallAssembler,
  type ToolCallPart,
  type TransactionPart,
  type UsagePart,
  type VerifiedPart,
} from "./stream_parts.ts";
export type { UploadOptions } from "./files.ts";
export { type SubscribeOptions, Subscription } from "./subscribe.ts";
export {
  BusApiError,
  BusClientError,
  type BusClientErrorOptions,
  BusNetworkError,
  BusStreamError,
  BusTimeoutError,
  ChecksumMismatchError,
  ErrorCode,
  isBusClientError,
  RealtimeError,
} from "./errors.ts";
export { createSha256, readVerified, type Sha256, statedChecksums } from "./verify.ts";
export { type McpPayload, type McpToolCaller, readMessageViaMcp, type ReadViaMcpOptions } from "./mcp.ts";
export type * from "./types.ts";
