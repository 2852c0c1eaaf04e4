/**
 * What the streamed-message stack tests share: a stream from the provider stand-in (its bytes exactly as they came,
 * also when it is cut), the same request's non-streamed answer, and a streamed message stored the way the relay
 * stores one (bus.begin_message with p_stream, storePayload over the event bytes, then completeMessage, or
 * failMessage with the partial payload after the bus's own `stream_incomplete` error event).
 */
import type postgres from "postgres";
import { testStack } from "../devstack/testing/env.ts";
import { storePayload } from "../supabase/functions/_shared/payload_store.ts";
import { completeMessage, failMessage } from "../supabase/functions/_shared/message/lifecycle.ts";
import { concatBytes, pieces } from "../supabase/functions/_shared/bytes.ts";

const enc = new TextEncoder();

/** The stand-in's kimi chat completions URL. */
function standinChatUrl(): string {
  return `${new URL(testStack().standinUrl).origin}/kimi/v1/chat/completions`;
}

function chatRequest(prompt: string, directive: Record<string, unknown>, stream: boolean) {
  return JSON.stringify({
    model: "kimi-k2-thinking",
    messages: [{ role: "user", content: `${prompt} #standin ${JSON.stringify(directive)}` }],
    stream,
    ...(stream ? { stream_options: { include_usage: true } } : {}),
  });
}

/** A fresh prompt (the stand-in's answers depend on it). */
export const freshPrompt = () => `stream ${crypto.randomUUID()}`;

/**
 * The stand-in's event stream for `prompt` + `directive`, as the bytes that arrived: a stream the stand-in cuts
 * (`cut_after_bytes`) ends in a network error, and what came before it is returned with `cut: true`.
 */
export async function standinStream(
  prompt: string,
  directive: Record<string, unknown>,
): Promise<{ bytes: Uint8Array; cut: boolean }> {
  const res = await fetch(standinChatUrl(), {
    method: "POST",
    headers: { authorization: "Bearer standin", "content-type": "application/json" },
    body: chatRequest(prompt, directive, true),
    signal: AbortSignal.timeout(60_000),
  });
  if (res.status !== 200) throw new Error(`stand-in answered ${res.status}: ${await res.text()}`);
  const parts: Uint8Array[] = [];
  let cut = false;
  try {
    for await (const part of res.body!) parts.push(part);
  } catch (err) {
    if (!(err instanceof TypeError)) throw err; // a cut connection: fetch's body errors with a TypeError
    cut = true;
  }
  return { bytes: concatBytes(parts).slice(), cut };
}

/** The stand-in's non-streamed answer to the same prompt and directive, parsed. */
export async function standinWhole(prompt: string, directive: Record<string, unknown>) {
  const res = await fetch(standinChatUrl(), {
    method: "POST",
    headers: { authorization: "Bearer standin", "content-type": "application/json" },
    body: chatRequest(prompt, directive, false),
    signal: AbortSignal.timeout(60_000),
  });
  if (res.status !== 200) throw new Error(`stand-in answered ${res.status}: ${await res.text()}`);
  return await res.json();
}

/** The event the bus appends to a stream that broke off (CONTRACT.md §10). */
export function incompleteEvent(message: string): Uint8Array {
  const error = { message, type: "stream_incomplete", code: "stream_incomplete" };
  return enc.encode(`data: ${JSON.stringify({ error })}\n\n`);
}

export interface StoredStream {
  id: string;
  /** The stored bytes (for a failed stream: what arrived plus the bus's error event). */
  bytes: Uint8Array;
  checksum: string;
  chunkCount: number;
}

/**
 * Records a streamed message of `owner` with `sse` as its payload, as the relay will: completed (`finishReason`,
 * `usage`), or failed `stream_incomplete` keeping what arrived (with the bus's error event appended).
 */
export async function storeStream(
  sql: postgres.Sql,
  owner: string,
  sse: Uint8Array,
  opts: {
    outcome?: "completed" | "stream_incomplete";
    finishReason?: string | null;
    metadata?: Record<string, unknown>;
  } = {},
): Promise<StoredStream> {
  const [{ transaction_id: id }] = await sql<{ transaction_id: string }[]>`
    select transaction_id from bus.begin_message(
      p_owner => ${owner}::uuid, p_tool => 'chat', p_provider => 'kimi', p_model => 'kimi-k2-thinking',
      p_session_id => null, p_idempotency_key => null, p_ttl_seconds => 3600,
      p_metadata => ${sql.json({ content_type: "text/event-stream", ...opts.metadata } as never)},
      p_stream => true)`;
  const failed = opts.outcome === "stream_incomplete";
  // A stream cut mid-event: the relay ends that event (its data stays broken) before its own, which then parses.
  const endCut = failed && !new TextDecoder().decode(sse.subarray(-2)).endsWith("\n\n") ? enc.encode("\n\n") : null;
  const bytes = failed
    ? concatBytes([sse, ...(endCut ? [endCut] : []), incompleteEvent("The provider's stream broke off")]).slice()
    : sse;
  const stored = await storePayload(sql, id, ReadableStream.from(pieces(bytes, 64 * 1024)), 200 * 1024 * 1024);
  if (failed) {
    await failMessage(sql, id, { code: "stream_incomplete", message: "The provider's stream broke off" }, {
      run: 1,
      partial: stored,
    });
  } else {
    await completeMessage(sql, id, {
      ...stored,
      run: 1,
      finishReason: opts.finishReason === undefined ? "stop" : opts.finishReason,
      usage: null,
      model: "kimi-k2-thinking",
      providerMs: 5,
      writeMs: 1,
      metadata: {},
      stream: true,
    });
  }
  return { id, bytes, checksum: stored.checksum, chunkCount: stored.chunkCount };
}

/**
 * GET /functions/v1/message-fetch<path> as `token`: status, headers and the body's bytes, asked for without content
 * coding (Deno's fetch would ask for gzip and decode it silently; the validators then name the gzip form).
 */
export async function getBytes(
  token: string,
  path: string,
  headers: Record<string, string> = {},
): Promise<{ status: number; headers: Headers; bytes: Uint8Array }> {
  const res = await fetch(`${testStack().functionsUrl}/message-fetch${path}`, {
    headers: { authorization: `Bearer ${token}`, "accept-encoding": "identity", ...headers },
  });
  return { status: res.status, headers: res.headers, bytes: new Uint8Array(await res.arrayBuffer()) };
}
