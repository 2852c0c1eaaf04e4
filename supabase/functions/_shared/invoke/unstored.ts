/**
 * Degraded mode (MESSAGE_BUS_INLINE_FALLBACK=true, off by default): with the database unreachable, a sync invoke
 * still calls the provider and answers the payload inline, with its checksum and `X-Bus-Degraded: unstored` — the
 * origin system's "fall back to the WebSocket" (origin-lessons.md). Nothing is stored, retried or recorded: there
 * is nowhere to record it. Each route is tried once, in order; the answer is held in memory (bounded by
 * MESSAGE_BUS_MAX_PAYLOAD_MB) so that its checksum is known before the status line goes out.
 */
import { createHash } from "node:crypto";
import { BusError, payloadTooLarge } from "../errors.ts";
import type { Settings } from "../env.ts";
import { concatBytes } from "../bytes.ts";
import { providerClient, sendProviderRequest } from "../providers/openai_compatible.ts";
import type { Tool } from "../tools/tool.ts";
import { classifyFailure } from "../routing/failure.ts";
import type { Route } from "./run.ts";

export interface Unstored {
  bytes: Uint8Array;
  /** `sha256:<hex>` of `bytes`. */
  checksum: string;
  contentType: string;
  provider: string;
  model: string;
}

/**
 * Calls the routes in order, once each, and returns the first answer whole.
 * @throws BusError 502 when every route failed (no transaction id: nothing could be recorded).
 */
export async function callUnstored(
  tool: Tool<Record<string, unknown>>,
  inputJson: Uint8Array,
  routes: Route[],
  s: Settings,
  fetchImpl?: typeof fetch,
): Promise<Unstored> {
  let last: Record<string, unknown> = { code: "provider_error", message: "No provider could be called" };
  for (const route of routes) {
    if (!route.provider.apiKey) continue;
    const controller = new AbortController();
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      controller.abort();
    }, s.PROVIDER_TIMEOUT_MS);
    try {
      const client = providerClient(route.provider, {
        timeoutMs: s.PROVIDER_TIMEOUT_MS + 1_000,
        maxRetries: 0,
        fetch: fetchImpl,
      });
      const response = await sendProviderRequest(
        client,
        tool.providerRequest(inputJson, route.model),
        controller.signal,
      );
      const parts: Uint8Array[] = [];
      let size = 0;
      const max = s.MESSAGE_BUS_MAX_PAYLOAD_MB * 1024 * 1024;
      for await (const chunk of response.body ?? ReadableStream.from<Uint8Array>([])) {
        size += chunk.length;
        if (size > max) {
          throw payloadTooLarge(`The provider response exceeds the ${s.MESSAGE_BUS_MAX_PAYLOAD_MB} MB limit`);
        }
        parts.push(chunk);
      }
      const bytes = concatBytes(parts);
      return {
        bytes,
        checksum: `sha256:${createHash("sha256").update(bytes).digest("hex")}`,
        contentType: response.headers.get("content-type") ?? "application/octet-stream",
        provider: route.provider.name,
        model: route.model,
      };
    } catch (err) {
      if (err instanceof BusError) throw err;
      last = classifyFailure(err, route.provider.name, timedOut).error;
    } finally {
      clearTimeout(timer);
    }
  }
  throw new BusError(502, String(last.code ?? "provider_error"), String(last.message), {
    ...last,
    degraded: "unstored",
  });
}
