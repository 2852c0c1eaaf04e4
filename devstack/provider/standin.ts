import { planBody } from "./body.ts";
import { type Answer, completionParts, completionResponse, CREATED, streamResponse } from "./chat.ts";
import { control, snapshot, type StandinStats } from "./control.ts";
import { type Directive, DirectiveError, DirectiveSchema, parseDirective } from "./directives.ts";
import { ConnectionReset, openAIError } from "./errors.ts";
import { DEFAULT_FILE_LIMITS, type FileLimits, FileStore } from "./files.ts";
import { answerWith, outageOutcome, type Outcome, stepOutcome } from "./outcome.ts";
import { lastUserText, parseChatRequest } from "./request.ts";
import { finalized, withLength } from "./respond.ts";
import { longestMatch, StandinState } from "./state.ts";
import { delay, isAbortError } from "./wait.ts";

export type { StandinStats };

/** Options for {@link createProviderStandin}. */
export interface StandinOptions {
  /** Receives one line per chat request and every unexpected error; default: silent. */
  log?: (message: string) => void;
  /** Aborting it ends pending waits, hangs and stalls (used on shutdown). */
  signal?: AbortSignal;
  /** Bounds of the files API's store; default {@link DEFAULT_FILE_LIMITS}. */
  files?: Partial<FileLimits>;
}

/** A provider stand-in as a fetch handler. */
export interface ProviderStandin {
  /**
   * Answers one request. Rejects with {@link ConnectionReset} when the answer is "no answer" (outage or
   * script step `reset`): a server then drops the connection. A request's `signal` aborting (the client left)
   * ends its waits.
   */
  fetch(req: Request): Promise<Response>;
  stats(): StandinStats;
  /** How many chat requests carried `tag`. */
  calls(tag: string): number;
}

/** Models listed by `GET …/models` (origin-lessons §4.2); any other model name is accepted too. */
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

/** An API path: its base path (what precedes the route, e.g. "/kimi/v1") and the route. */
interface ApiPath {
  base: string;
  route: "chat" | "models" | "files";
  fileId?: string;
  content: boolean;
}

const API_PATH = /^(.*?)\/(?:(chat\/completions)|(models)|files(?:\/([^/]+)(\/content)?)?)$/;

function apiPath(pathname: string): ApiPath | null {
  const m = API_PATH.exec(pathname);
  if (!m) return null;
  const route = m[2] ? "chat" : m[3] ? "models" : "files";
  return { base: m[1], route, fileId: m[4] && decodeURIComponent(m[4]), content: Boolean(m[5]) };
}

/**
 * Creates a local OpenAI-compatible provider stand-in for Kimi (Moonshot) and GLM (Z.ai), steered by
 * `#standin {json}` directives in the last user message (see `directives.ts` for the keys) and by control
 * routes. Answers are byte-identical for identical requests.
 *
 * API routes, under any base path (`/v1`, `/kimi/v1`, `/glm/api/paas/v4`, …), all needing
 * `Authorization: Bearer <non-empty>`:
 * - `POST {base}/chat/completions`: a chat completion, or with `"stream": true` a `text/event-stream` of
 *   `chat.completion.chunk` events ending in `data: [DONE]` (usage chunk with `stream_options.include_usage`).
 * - `GET {base}/models`: Kimi and GLM model ids.
 * - Moonshot's files API (CONTRACT.md §13): `POST {base}/files` (multipart `file`, `purpose` =
 *   `file-extract`) → the file object; `GET {base}/files` (list), `GET {base}/files/{id}`,
 *   `GET {base}/files/{id}/content` (the extraction as Moonshot's JSON text `{"content", "file_type",
 *   "filename", "title", "type"}`), `DELETE {base}/files/{id}`; 404 for unknown ids. Files are kept per base
 *   path, in memory, at most 100 MB each and 256 MiB in all (413 past either).
 *
 * Control routes, no auth (a prefix matches itself and the paths below it; "/" matches every path):
 * - `GET /__standin/stats`: counters, with `prefixes` (per path prefix: `requests`, `chat_requests`,
 *   `streams`, `in_flight`, `max_in_flight`, `uploads`, `deletes`, `content_reads`), `files`, `outages`,
 *   `scripts`.
 * - `GET /__standin/calls?tag=<tag>` → `{"count": n}`.
 * - `POST /__standin/reset`: zeroes counters and tags, lowers high-water marks to what is in flight, drops
 *   outages, scripts and files.
 * - `POST /__standin/outage {"prefix", "mode", "retry_after"?, "interval_ms"?}`: every API request under the
 *   prefix, before authentication, gets `mode`: an HTTP status 400-599 (OpenAI-style error; Retry-After on 429
 *   and 503, default 1), "hang" (never answered until the client leaves or the stand-in closes), "reset"
 *   (connection closed without an HTTP answer), "slow_body" (headers at once, then the body 16 bytes every
 *   `interval_ms`, default 1000), or "off". `DELETE /__standin/outage?prefix=` ends one (all without prefix).
 * - `POST /__standin/script {"prefix", "steps", "retry_after"?}`: chat call N under the prefix (counted from
 *   now) plays step N (steps as in the `script` directive), later calls succeed; replaces the prefix's script.
 *   `DELETE /__standin/script?prefix=` removes one (all without prefix).
 * - `POST /__standin/files/forget {"prefix"?}`: the provider forgets its files (all, or under the prefix)
 *   without counting deletes, so a client must upload again.
 *
 * Precedence for a chat call: outage, then authentication and parsing, `latency_ms`, the prefix's script
 * step, then the directive's `status`/`fail_times` or `script` step.
 *
 * @example
 * ```ts
 * const standin = createProviderStandin();
 * const res = await standin.fetch(new Request("http://x/v1/models", { headers: { authorization: "Bearer k" } }));
 * ```
 */
export function createProviderStandin(options: StandinOptions = {}): ProviderStandin {
  const log = options.log ?? (() => {});
  const state = new StandinState();
  const files = new FileStore({ ...DEFAULT_FILE_LIMITS, ...options.files }, state);
  const fixed = (response: Response): Answer => ({ response, live: false });

  async function chat(req: Request, url: URL, base: string, signal: AbortSignal): Promise<Answer> {
    const requestText = await req.text();
    const parsed = parseChatRequest(requestText);
    if (!parsed.ok) return fixed(openAIError(400, parsed.message, { param: parsed.param }));
    const { request } = parsed;
    let directive: Directive | null;
    let prompt: string;
    try {
      ({ directive, prompt } = parseDirective(lastUserText(request)));
    } catch (error) {
      if (!(error instanceof DirectiveError)) throw error;
      return fixed(openAIError(400, error.message, { param: "messages" }));
    }
    state.chatRequests++;
    state.count(base, "chat_requests");
    if (request.stream) state.count(base, "streams");
    const d: Directive = directive ?? {};
    const call = d.tag === undefined ? 0 : state.countTag(d.tag);
    log(
      `standin chat ${url.pathname} model=${request.model} tag=${d.tag ?? "-"} call=${call} directive=${
        JSON.stringify(directive)
      } stream=${Boolean(request.stream)}`,
    );

    const complete = async (d: Directive): Promise<Answer> => {
      const parts = await completionParts(request, d, prompt, requestText);
      const plan = planBody(parts, d.bytes);
      if (!request.stream) return completionResponse(plan, parts.id, d, signal);
      return streamResponse(parts, plan, Boolean(request.stream_options?.include_usage), d, signal);
    };
    // The directive's own failure steering: status (for the first fail_times calls) or its script.
    const respond = (d: Directive): Promise<Answer> => {
      let outcome: Outcome = { kind: "ok" };
      if (d.status !== undefined && (d.fail_times === undefined || call <= d.fail_times)) {
        outcome = { kind: "status", status: d.status, retryAfter: d.retry_after };
      } else if (d.script !== undefined) outcome = stepOutcome(d.script[call - 1], d.retry_after, "#standin");
      return answerWith(outcome, signal, (keys) => keys ? respond(merged(d, keys)) : complete(d));
    };

    try {
      if (d.latency_ms) await delay(d.latency_ms, signal);
      const script = longestMatch(state.scripts, url.pathname)?.[1];
      const scripted: Outcome = script
        ? stepOutcome(script.steps[script.calls++], script.retry_after, "/__standin/script")
        : { kind: "ok" };
      return await answerWith(scripted, signal, (keys) => respond(keys ? merged(d, keys) : d));
    } catch (error) {
      if (!(error instanceof DirectiveError)) throw error;
      return fixed(openAIError(400, error.message, { param: "messages" }));
    }
  }

  function authorised(req: Request): boolean {
    return /^Bearer\s+\S+/i.test(req.headers.get("authorization") ?? "");
  }

  async function api(req: Request, url: URL, path: ApiPath, signal: AbortSignal): Promise<Answer> {
    const wanted = path.route === "chat" ? ["POST"] : path.route === "models" ? ["GET"] : null;
    if (wanted && !wanted.includes(req.method)) return fixed(openAIError(405, `Expected ${wanted}, got ${req.method}`));
    if (!authorised(req)) {
      return fixed(openAIError(401, 'Expected an Authorization header "Bearer <API key>", got none or an empty key'));
    }
    if (path.route === "chat") return await chat(req, url, path.base, signal);
    if (path.route === "files") return await files.handle(req, path.base, path.fileId, path.content);
    const data = MODELS.map((id) => ({ id, object: "model", created: CREATED, owned_by: "standin" }));
    return fixed(Response.json({ object: "list", data }));
  }

  async function route(req: Request, url: URL, path: ApiPath | null, signal: AbortSignal): Promise<Answer> {
    if (url.pathname.startsWith("/__standin/")) return fixed(await control(req, url, state, files));
    if (!path) return fixed(openAIError(404, `Unknown route ${url.pathname}`));
    const outage = longestMatch(state.outages, url.pathname)?.[1];
    if (!outage) return await api(req, url, path, signal);
    return await answerWith(outageOutcome(outage), signal, () => api(req, url, path, signal));
  }

  return {
    async fetch(req: Request): Promise<Response> {
      const url = new URL(req.url);
      const path = url.pathname.startsWith("/__standin/") ? null : apiPath(url.pathname);
      const leave = state.enter(path?.base ?? null);
      const signal = options.signal ? AbortSignal.any([options.signal, req.signal]) : req.signal;
      let live = false;
      try {
        const answer = await route(req, url, path, signal);
        live = answer.live && answer.response.body !== null;
        return live ? finalized(answer.response, leave) : await withLength(answer.response);
      } catch (error) {
        if (error instanceof ConnectionReset) throw error;
        if (isAbortError(error)) {
          log(`standin ${req.method} ${req.url}: aborted while waiting (${(error as Error).message})`);
          return openAIError(499, "Client closed the request");
        }
        log(`standin ${req.method} ${req.url} failed: ${(error as Error).stack ?? error}`);
        return openAIError(500, `Stand-in failed unexpectedly: ${(error as Error).message}`);
      } finally {
        if (!live) leave();
      }
    },
    stats: () => snapshot(state, files),
    calls: (tag: string) => state.tags.get(tag) ?? 0,
  };
}

/**
 * The directive with a script step's keys merged over it, validated again (a step must not clash with the
 * directive). `script` is dropped: the step replaces it for this call.
 */
function merged(d: Directive, keys: Partial<Directive>): Directive {
  const { script: _script, ...rest } = d;
  const parsed = DirectiveSchema.safeParse({ ...rest, ...keys });
  if (parsed.success) return parsed.data;
  const issues = parsed.error.issues.map((i) => (i.path.length ? `${i.path.join(".")}: ` : "") + i.message);
  throw new DirectiveError(`Invalid script step for this #standin directive: ${issues.join("; ")}`);
}
