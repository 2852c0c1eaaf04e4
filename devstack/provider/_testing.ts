import OpenAI from "openai";
import { type ServedStandin, type ServeOptions, serveProviderStandin } from "./server.ts";

/** Runs `fn` against a freshly served stand-in on 127.0.0.1 and an `openai` client without retries. */
export async function withStandin(
  fn: (served: ServedStandin, client: OpenAI) => Promise<void>,
  options: ServeOptions = {},
): Promise<void> {
  const served = serveProviderStandin({ ...options, hostname: "127.0.0.1", port: 0 });
  const client = new OpenAI({ apiKey: "standin-test-key", baseURL: served.baseURL, maxRetries: 0, timeout: 60_000 });
  try {
    await served.ready;
    await fn(served, client);
  } finally {
    await served.close();
  }
}

/** A one-message chat request body whose user message carries `directive` (omitted when undefined). */
export function chatBody(prompt: string, directive?: Record<string, unknown>, model = "kimi-k2-0905-preview") {
  const content = directive ? `${prompt} #standin ${JSON.stringify(directive)}` : prompt;
  return { model, messages: [{ role: "user" as const, content }] };
}

/** POSTs a chat body with plain fetch and returns the raw response. */
export function postChat(served: ServedStandin, body: unknown, key: string | null = "standin-test-key") {
  const headers: Record<string, string> = { "content-type": "application/json" };
  if (key !== null) headers.authorization = `Bearer ${key}`;
  return fetch(`${served.baseURL}/chat/completions`, { method: "POST", headers, body: JSON.stringify(body) });
}

/** Lowercase hex SHA-256 of `bytes`. */
export async function sha256Hex(bytes: Uint8Array<ArrayBuffer>): Promise<string> {
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", bytes));
  return [...digest].map((b) => b.toString(16).padStart(2, "0")).join("");
}

/** An `openai` client (no retries) whose base URL is the stand-in's origin plus `path`, e.g. "/kimi/v1". */
export function clientAt(served: ServedStandin, path: string, timeout = 60_000): OpenAI {
  return new OpenAI({ apiKey: "standin-test-key", baseURL: served.url + path, maxRetries: 0, timeout });
}

/** Calls a `/__standin/` control route and returns its status and JSON body. */
export async function controlRoute(
  served: ServedStandin,
  method: string,
  route: string,
  body?: unknown,
): Promise<{ status: number; json: Record<string, unknown> }> {
  const res = await fetch(`${served.url}/__standin/${route}`, {
    method,
    headers: body === undefined ? {} : { "content-type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  return { status: res.status, json: await res.json() };
}

/** Polls `check` every 10 ms until it holds or 5 s pass; returns whether it held. */
export async function eventually(check: () => boolean): Promise<boolean> {
  const deadline = Date.now() + 5_000;
  while (!check() && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
  return check();
}

/** Reads a body to its end or its first error: the bytes that arrived, and the error if any. */
export async function readAll(res: Response): Promise<{ bytes: Uint8Array; error: unknown }> {
  const reader = res.body!.getReader();
  const chunks: Uint8Array[] = [];
  let error: unknown = null;
  try {
    while (true) {
      const { value, done } = await reader.read();
      if (done) break;
      chunks.push(value);
    }
  } catch (e) {
    error = e;
  }
  const bytes = new Uint8Array(chunks.reduce((n, c) => n + c.length, 0));
  let at = 0;
  for (const c of chunks) (bytes.set(c, at), at += c.length);
  return { bytes, error };
}

/** The `data:` payloads of an SSE text, in order (`[DONE]` included as is). */
export function ssePayloads(text: string): string[] {
  return text.split("\n\n").filter((event) => event.startsWith("data: ")).map((event) => event.slice(6));
}
