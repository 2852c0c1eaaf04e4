import OpenAI from "openai";
import { type ServedStandin, serveProviderStandin } from "./server.ts";

/** Runs `fn` against a freshly served stand-in on 127.0.0.1 and an `openai` client without retries. */
export async function withStandin(fn: (served: ServedStandin, client: OpenAI) => Promise<void>): Promise<void> {
  const served = serveProviderStandin({ hostname: "127.0.0.1", port: 0 });
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
