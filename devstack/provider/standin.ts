import { planBody } from "./body.ts";
import { completionParts, completionResponse, CREATED } from "./chat.ts";
import { type Directive, DirectiveError, parseDirective } from "./directives.ts";
import { openAIError, steeredMessage } from "./errors.ts";
import { lastUserText, parseChatRequest } from "./request.ts";

/** Counters kept by the stand-in. */
export interface StandinStats {
  /** HTTP requests handled, any route. */
  requests: number;
  /** Chat completion requests that got past authentication. */
  chatRequests: number;
  /** Requests being answered now; a streamed body counts until it has been sent or the client left. */
  inFlight: number;
  /** Chat requests per directive `tag`. */
  tags: Record<string, number>;
}

/** Options for {@link createProviderStandin}. */
export interface StandinOptions {
  /** Receives one line per chat request and every unexpected error; default: silent. */
  log?: (message: string) => void;
  /** Aborting it ends pending `latency_ms` waits (used on shutdown). */
  signal?: AbortSignal;
}

/** A provider stand-in as a fetch handler. */
export interface ProviderStandin {
  fetch(req: Request): Promise<Response>;
  stats(): StandinStats;
  /** How many chat requests carried `tag`. */
  calls(tag: string): number;
}

/** Models listed by `GET /v1/models` (origin-lessons §4.2); any other model name is accepted too. */
const MODELS = [
  "kimi-k2-0905-preview",
  "kimi-k2-turbo-preview",
  "kimi-thinking-preview",
  "moonshot-v1-8k",
  "glm-4.6",
  "glm-4.5",
  "glm-4.5-air",
  "glm-4.5-flash",
];

/**
 * Creates a local OpenAI-compatible provider stand-in for Kimi (Moonshot) and GLM (Z.ai), steered by
 * `#standin {json}` directives in the last user message (see `directives.ts` for the keys).
 *
 * Routes: `POST …/chat/completions` and `GET …/models` under any prefix (`/v1`, `/api/paas/v4`), both needing
 * `Authorization: Bearer <non-empty>`; `GET /__standin/calls?tag=<tag>` → `{"count": n}` and
 * `GET /__standin/stats`, without auth.
 *
 * @example
 * ```ts
 * const standin = createProviderStandin();
 * const res = await standin.fetch(new Request("http://x/v1/models", { headers: { authorization: "Bearer k" } }));
 * ```
 */
export function createProviderStandin(options: StandinOptions = {}): ProviderStandin {
  const log = options.log ?? (() => {});
  const tags = new Map<string, number>();
  const counters = { requests: 0, chatRequests: 0, inFlight: 0 };

  async function chat(req: Request, release: () => void): Promise<{ response: Response; streaming: boolean }> {
    const requestText = await req.text();
    const parsed = parseChatRequest(requestText);
    if (!parsed.ok) return { response: openAIError(400, parsed.message, { param: parsed.param }), streaming: false };
    counters.chatRequests++;
    const { request } = parsed;
    let directive: Directive | null;
    let prompt: string;
    try {
      ({ directive, prompt } = parseDirective(lastUserText(request)));
    } catch (error) {
      if (!(error instanceof DirectiveError)) throw error;
      return { response: openAIError(400, error.message, { param: "messages" }), streaming: false };
    }
    const tag = directive?.tag;
    const call = tag === undefined ? 0 : (tags.get(tag) ?? 0) + 1;
    if (tag !== undefined) tags.set(tag, call);
    log(`standin chat model=${request.model} tag=${tag ?? "-"} call=${call} directive=${JSON.stringify(directive)}`);

    if (directive?.latency_ms) await delay(directive.latency_ms, options.signal);
    const status = directive?.status;
    if (status !== undefined && (directive?.fail_times === undefined || call <= directive.fail_times)) {
      const retryAfter = status === 429 || status === 503 ? directive?.retry_after ?? 1 : undefined;
      return { response: openAIError(status, steeredMessage(status), { retryAfter }), streaming: false };
    }
    const parts = await completionParts(request, directive, prompt, requestText);
    return completionResponse(planBody(parts, directive?.bytes), parts.id, directive?.malformed, release);
  }

  async function route(req: Request, release: () => void): Promise<{ response: Response; streaming: boolean }> {
    const url = new URL(req.url);
    const plain = (response: Response) => ({ response, streaming: false });
    if (url.pathname.startsWith("/__standin/")) {
      if (req.method !== "GET") return plain(openAIError(405, `Expected GET, got ${req.method}`));
      if (url.pathname === "/__standin/stats") return plain(Response.json(snapshot()));
      if (url.pathname !== "/__standin/calls") return plain(openAIError(404, `Unknown route ${url.pathname}`));
      const tag = url.searchParams.get("tag");
      if (!tag) return plain(openAIError(400, "Expected a tag query parameter, got none", { param: "tag" }));
      return plain(Response.json({ count: tags.get(tag) ?? 0 }));
    }
    const isChat = url.pathname.endsWith("/chat/completions");
    const isModels = url.pathname.endsWith("/models");
    if (!isChat && !isModels) return plain(openAIError(404, `Unknown route ${url.pathname}`));
    const wanted = isChat ? "POST" : "GET";
    if (req.method !== wanted) return plain(openAIError(405, `Expected ${wanted}, got ${req.method}`));
    if (!/^Bearer\s+\S+/i.test(req.headers.get("authorization") ?? "")) {
      return plain(openAIError(401, 'Expected an Authorization header "Bearer <API key>", got none or an empty key'));
    }
    if (isModels) {
      const data = MODELS.map((id) => ({ id, object: "model", created: CREATED, owned_by: "standin" }));
      return plain(Response.json({ object: "list", data }));
    }
    return await chat(req, release);
  }

  function snapshot(): StandinStats {
    return { ...counters, tags: Object.fromEntries(tags) };
  }

  return {
    async fetch(req: Request): Promise<Response> {
      counters.requests++;
      counters.inFlight++;
      let released = false;
      const release = () => {
        if (!released) {
          released = true;
          counters.inFlight--;
        }
      };
      let streaming = false;
      try {
        const result = await route(req, release);
        streaming = result.streaming;
        return result.response;
      } catch (error) {
        if (error instanceof DOMException && error.name === "AbortError") {
          log(`standin ${req.method} ${req.url}: aborted while waiting (${error.message})`);
          return openAIError(499, "Client closed the request");
        }
        log(`standin ${req.method} ${req.url} failed: ${(error as Error).stack ?? error}`);
        return openAIError(500, `Stand-in failed unexpectedly: ${(error as Error).message}`);
      } finally {
        if (!streaming) release();
      }
    },
    stats: snapshot,
    calls: (tag: string) => tags.get(tag) ?? 0,
  };
}

/**
 * Waits `ms`, rejecting with an AbortError as soon as `signal` aborts. `request.signal` is deliberately not
 * watched: Deno.serve (legacy abort mode) aborts it after every successful response and warns once any handler
 * has read it, so a client that leaves mid-wait is noticed only when the answer is written.
 */
function delay(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(new DOMException("Aborted before the wait", "AbortError"));
    const onAbort = () => {
      clearTimeout(timer);
      reject(new DOMException(`Aborted during a ${ms} ms wait`, "AbortError"));
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    signal?.addEventListener("abort", onAbort, { once: true });
  });
}
