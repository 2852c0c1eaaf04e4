/**
 * Reading a whole message through the bus's MCP server (CONTRACT.md §11): `fetch_message` pages from offset 0 to
 * the last `next_offset`, joined and checked against the checksum every page states. MCP clients cut long tool
 * results (Claude Code at ~25,000 tokens), so a large response never travels as one result; the pages are small
 * enough to pass, and the SHA-256 of the joined pages proves nothing was lost or altered.
 *
 * Works with any client that has `callTool({ name, arguments })`: the official SDK's v2 `Client`
 * (`@modelcontextprotocol/client`) or v1 `Client` (`@modelcontextprotocol/sdk`). This module imports no MCP
 * package itself, so the SDK stays light for browsers.
 *
 * @example
 * ```ts
 * import { Client, StreamableHTTPClientTransport } from "@modelcontextprotocol/client";
 * import { readMessageViaMcp } from "./client/mod.ts";
 *
 * const mcp = new Client({ name: "agent", version: "1.0.0" });
 * await mcp.connect(new StreamableHTTPClientTransport(new URL("http://127.0.0.1:54321/functions/v1/mcp"), {
 *   requestInit: { headers: { Authorization: `Bearer ${userJwt}` } },
 * }));
 * const { data, error } = await readMessageViaMcp(mcp, transactionId);
 * if (error) console.error(error.code, error.message);
 * else console.log(data.size, data.checksum, data.json());
 * ```
 */
import { BusClientError, ChecksumMismatchError, ErrorCode } from "./errors.ts";
import { concat, createSha256, fromBase64 } from "./verify.ts";
import type { BusResult, FetchedPayload } from "./types.ts";

/** What the helper needs of an MCP client: the `callTool` of the SDK's v1 and v2 `Client`. */
export interface McpToolCaller {
  callTool(params: { name: string; arguments?: Record<string, unknown> }): Promise<unknown>;
}

/** Options of {@link readMessageViaMcp}. */
export interface ReadViaMcpOptions {
  /** `max_bytes` of each page (server default 65536, at most 4 MiB). */
  pageBytes?: number;
  /** Called after each page with its place in the payload. */
  onPage?: (page: { offset: number; bytes: number; total: number }) => void;
  /** Stops after this many pages with an error (default: enough for the payload at the smallest page size). */
  maxPages?: number;
}

/** A verified payload read through MCP, with how many pages it took. */
export interface McpPayload extends FetchedPayload {
  pages: number;
}

interface PageInfo {
  offset: number;
  next_offset: number | null;
  total_bytes: number;
  page_bytes: number;
  encoding: "utf-8" | "base64";
  checksum: string;
  content_type: string | null;
}

const encoder = new TextEncoder();

/** Where the server puts a tool error's `{ code, message, ... }` (supabase/functions/mcp/results.ts). */
export const ERROR_META = "message-bus/error";

/**
 * Reads message `transactionId` through `fetch_message` pages and verifies the joined bytes against the checksum.
 * Returns `{ data, error }`; `error` is a {@link ChecksumMismatchError} when the bytes do not match, a
 * {@link BusClientError} with the tool's error code (`not_found`, `pending`, `message_failed`, `expired`, ...,
 * from the result's `_meta["message-bus/error"]`) when the server refused a page, `invalid_response` when an
 * answer is not a page.
 */
export async function readMessageViaMcp(
  client: McpToolCaller,
  transactionId: string,
  opts: ReadViaMcpOptions = {},
): Promise<BusResult<McpPayload>> {
  try {
    return { data: await readPages(client, transactionId, opts), error: null };
  } catch (err) {
    if (err instanceof BusClientError) return { data: null, error: err };
    return {
      data: null,
      error: new BusClientError(
        `fetch_message failed: ${err instanceof Error ? err.message : err}`,
        ErrorCode.Network,
        {
          transactionId,
          cause: err,
        },
      ),
    };
  }
}

async function readPages(client: McpToolCaller, id: string, opts: ReadViaMcpOptions): Promise<McpPayload> {
  const hash = await createSha256();
  const parts: Uint8Array[] = [];
  let offset: number | null = 0;
  let first: PageInfo | undefined;
  let pages = 0;
  let size = 0;
  while (offset !== null) {
    const result = await client.callTool({
      name: "fetch_message",
      arguments: { transaction_id: id, offset, ...(opts.pageBytes ? { max_bytes: opts.pageBytes } : {}) },
    });
    const { info, text } = pageOf(result, id);
    first ??= info;
    if (info.offset !== offset || info.checksum !== first.checksum || info.total_bytes !== first.total_bytes) {
      throw invalid(id, `page at ${offset} does not continue the pages before it (${JSON.stringify(info)})`);
    }
    const bytes = info.encoding === "base64" ? fromBase64(text) : encoder.encode(text);
    if (bytes.length !== info.page_bytes) {
      throw invalid(id, `page at ${offset} holds ${bytes.length} bytes, the server counted ${info.page_bytes}`);
    }
    if (info.next_offset !== null && info.next_offset !== offset + bytes.length) {
      throw invalid(id, `page at ${offset} of ${bytes.length} bytes says the next starts at ${info.next_offset}`);
    }
    hash.update(bytes);
    parts.push(bytes);
    size += bytes.length;
    pages++;
    opts.onPage?.({ offset, bytes: bytes.length, total: info.total_bytes });
    const maxPages = opts.maxPages ?? info.total_bytes / 4 + 1;
    if (info.next_offset !== null && pages >= maxPages) throw invalid(id, `more than ${maxPages} pages`);
    offset = info.next_offset;
  }
  const actual = await hash.digest();
  if (size !== first!.total_bytes || actual !== first!.checksum) {
    throw new ChecksumMismatchError(id, first!.checksum, actual, "client", {
      details: { size, total_bytes: first!.total_bytes },
    });
  }
  const all = concat(parts);
  return {
    transaction_id: id,
    checksum: actual,
    content_type: first!.content_type,
    bytes: all,
    size,
    pages,
    text: () => new TextDecoder("utf-8", { ignoreBOM: true }).decode(all),
    json: <T>() => JSON.parse(new TextDecoder().decode(all)) as T,
  };
}

/** The page info and the page's text from a `fetch_message` result, or the error it reports. */
function pageOf(result: unknown, id: string): { info: PageInfo; text: string } {
  const r = result as {
    isError?: boolean;
    content?: Array<{ type: string; text?: string }>;
    structuredContent?: unknown;
  };
  const first = r?.content?.[0];
  if (r?.isError) {
    const error = (r.structuredContent as { error?: { code?: string } } | undefined)?.error;
    throw new BusClientError(first?.text ?? "fetch_message failed", error?.code ?? "tool_error", {
      transactionId: id,
      details: r.structuredContent as Record<string, unknown> | undefined,
    });
  }
  const info = r?.structuredContent as PageInfo | undefined;
  if (!info || typeof info.offset !== "number" || first?.type !== "text" || typeof first.text !== "string") {
    throw invalid(id, "the answer is not a fetch_message page");
  }
  return { info, text: first.text };
}

function invalid(id: string, message: string): BusClientError {
  return new BusClientError(`fetch_message: ${message}`, ErrorCode.InvalidResponse, { transactionId: id });
}
