/**
 * Providers are OpenAI-compatible chat completion APIs (CONTRACT.md §3), called with the `openai` SDK. The bus
 * asks the SDK for the raw `Response` (`asResponse()`), so the body it stores is the provider's bytes exactly as
 * received, never a re-serialisation (origin-lessons.md §1.5). The SDK's retries (429, 408, 409, 5xx and
 * connection errors, honouring `Retry-After`) run before a response is handed over.
 */
import OpenAI from "openai";
import type { Settings } from "../env.ts";
import type { ProviderRequest } from "../tools/tool.ts";

export const PROVIDERS = ["kimi", "glm"] as const;
export type ProviderName = (typeof PROVIDERS)[number];

export interface ProviderConfig {
  name: ProviderName;
  baseURL: string;
  apiKey?: string;
  defaultModel: string;
}

/** The configuration of `name` from the settings. */
export function providerConfig(name: ProviderName, s: Settings): ProviderConfig {
  return name === "kimi"
    ? { name, baseURL: s.KIMI_BASE_URL, apiKey: s.KIMI_API_KEY, defaultModel: s.KIMI_MODEL }
    : { name, baseURL: s.GLM_BASE_URL, apiKey: s.GLM_API_KEY, defaultModel: s.GLM_MODEL };
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
