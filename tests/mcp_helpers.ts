/**
 * What the MCP tests share: the endpoint, the official SDK's clients connected to it (v2 pinned to the current
 * revision 2026-07-28, v1 on 2025-11-25), and a plain JSON-RPC POST for answers no client shows as they are.
 */
import { Client, StreamableHTTPClientTransport } from "@modelcontextprotocol/client";
import { Client as ClientV1 } from "@modelcontextprotocol/sdk/client";
import { StreamableHTTPClientTransport as TransportV1 } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import { testStack } from "../devstack/testing/env.ts";

export const CURRENT = "2026-07-28";
export const PREVIOUS = "2025-11-25";

export const mcpUrl = () => `${testStack().functionsUrl}/mcp`;

/** A v2 client on the current revision (the v2 client's default is the legacy era: pinned here). */
export async function connectV2(token: string): Promise<{ client: Client; transport: StreamableHTTPClientTransport }> {
  const client = new Client({ name: "bus-test-v2", version: "1.0.0" }, {
    versionNegotiation: { mode: { pin: CURRENT } },
  });
  const transport = new StreamableHTTPClientTransport(new URL(mcpUrl()), {
    requestInit: { headers: { Authorization: `Bearer ${token}` } },
  });
  await client.connect(transport);
  return { client, transport };
}

/** A v1 client: `initialize` handshake, protocol 2025-11-25. */
export async function connectV1(token: string): Promise<{ client: ClientV1; transport: TransportV1 }> {
  const client = new ClientV1({ name: "bus-test-v1", version: "1.0.0" });
  const transport = new TransportV1(new URL(mcpUrl()), {
    requestInit: { headers: { Authorization: `Bearer ${token}` } },
  });
  await client.connect(transport);
  return { client, transport };
}

/** The structured content of a tool result, typed loosely for assertions. */
// deno-lint-ignore no-explicit-any
export const structured = (result: unknown): any => (result as { structuredContent?: unknown }).structuredContent;

/** The `{ code, message, ... }` of a tool error (the result's `_meta["message-bus/error"]`). */
// deno-lint-ignore no-explicit-any
export const toolErrorOf = (result: unknown): any =>
  (result as { _meta?: Record<string, unknown> })._meta?.["message-bus/error"];

/** The first text block of a tool result. */
export function firstText(result: unknown): string {
  const block = (result as { content?: Array<{ type: string; text?: string }> }).content?.[0];
  if (block?.type !== "text" || typeof block.text !== "string") throw new Error(`no text: ${JSON.stringify(result)}`);
  return block.text;
}

/** A prompt that steers the provider stand-in (`#standin {json}`); unique per call. */
export const standinPrompt = (directive: Record<string, unknown>) =>
  `mcp test ${crypto.randomUUID()} #standin ${JSON.stringify(directive)}`;

/** POSTs `body` (JSON-encoded unless a string) to the endpoint with `headers`; returns status, headers and text. */
export async function postMcp(
  body: unknown,
  headers: Record<string, string>,
): Promise<{ status: number; headers: Headers; text: string }> {
  const res = await fetch(mcpUrl(), {
    method: "POST",
    headers: { "content-type": "application/json", accept: "application/json, text/event-stream", ...headers },
    body: typeof body === "string" ? body : JSON.stringify(body),
  });
  return { status: res.status, headers: res.headers, text: await res.text() };
}
