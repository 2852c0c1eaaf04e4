/**
 * Providers are OpenAI-compatible chat completion APIs (CONTRACT.md §3), called with the `openai` SDK. The bus
 * asks the SDK for the raw `Response` (`asResponse()`), so the body it stores is the provider's bytes exactly as
 * received, never a re-serialisation (origin-lessons.md §1.5). The bus owns retries (routing/): the SDK's are off.
 */
import OpenAI from "openai";
import type { Settings } from "../env.ts";
import type { ProviderConfig } from "./config.ts";
import type { ProviderRequest } from "../tools/tool.ts";

export type { ProviderConfig };

/** The provider named `name` in the settings. @throws Error when there is none (the door checks names first). */
export function providerConfig(name: string, s: Settings): ProviderConfig {
  const config = s.providers.get(name);
  if (!config) throw new Error(`provider ${name} is not configured`);
  return config;
}

export interface ProviderCallOptions {
  timeoutMs: number;
  maxRetries: number;
  /** Injected for tests; defaults to the global fetch. */
  fetch?: typeof fetch;
}

const clients = new Map<string, OpenAI>();

/** An SDK client for `config` (cached per base URL and key). */
export function providerClient(config: ProviderConfig, opts: ProviderCallOptions): OpenAI {
  if (!config.apiKey) throw new Error(`No API key configured for provider ${config.name}`);
  const key = `${config.baseURL}|${config.apiKey}|${opts.timeoutMs}|${opts.maxRetries}|${opts.fetch ? "custom" : ""}`;
  let client = clients.get(key);
  if (!client) {
    client = new OpenAI({
      apiKey: config.apiKey,
      baseURL: config.baseURL,
      timeout: opts.timeoutMs,
      maxRetries: opts.maxRetries,
      fetch: opts.fetch,
    });
    clients.set(key, client);
  }
  return client;
}

/**
 * Sends `request` to the provider and returns its raw response (2xx only; the SDK throws `OpenAI.APIError` for an
 * error status, and `APIConnectionError` when no response came). The body goes as the tool made it (the caller's
 * bytes, spliced, never re-serialised), and the answer's body is left unread for the caller to stream.
 */
export function sendProviderRequest(client: OpenAI, request: ProviderRequest, signal?: AbortSignal): Promise<Response> {
  return client.post(request.path, {
    body: request.body(),
    headers: { "content-type": "application/json" },
    signal,
  }).asResponse();
}

/**
 * One call of the reviewer model (the watcher's review, the ops investigation): deterministic, a JSON object as the
 * answer, bounded by the review settings, no retries.
 */
export function askReviewer(
  config: ProviderConfig,
  model: string,
  s: Pick<Settings, "WATCHER_REVIEW_TIMEOUT_MS" | "WATCHER_REVIEW_MAX_OUTPUT_TOKENS">,
  prompt: { system: string; user: string },
  fetchFn?: typeof fetch,
): Promise<OpenAI.Chat.ChatCompletion> {
  const client = providerClient(config, { timeoutMs: s.WATCHER_REVIEW_TIMEOUT_MS, maxRetries: 0, fetch: fetchFn });
  return client.chat.completions.create({
    model,
    temperature: 0,
    max_tokens: s.WATCHER_REVIEW_MAX_OUTPUT_TOKENS,
    response_format: { type: "json_object" },
    messages: [{ role: "system", content: prompt.system }, { role: "user", content: prompt.user }],
  });
}
