import { z } from "zod";
import { StepSchema } from "./directives.ts";
import { openAIError } from "./errors.ts";
import type { FileStore } from "./files.ts";
import type { Outage, PrefixScript, PrefixStats, StandinState } from "./state.ts";

/** A path prefix such as "/kimi" or "/glm/api/paas/v4"; "/" means every path. Trailing slashes are dropped. */
const PrefixSchema = z.string().regex(/^\/[^?#\s]*$/, "Expected a path starting with /").refine(
  (p) => !p.startsWith("/__standin"),
  "Expected a provider path, not a control route",
).transform((p) => p.replace(/\/+$/, ""));

const OutageSchema = z.strictObject({
  prefix: PrefixSchema,
  mode: z.union([
    z.enum(["off", "hang", "reset", "slow_body"]),
    z.string().regex(/^[45]\d\d$/, "Expected an HTTP status 400-599"),
    z.number().int().min(400).max(599).transform(String),
  ]),
  retry_after: z.number().int().min(0).max(3600).optional(),
  interval_ms: z.number().int().min(1).max(600_000).optional(),
});

const ScriptSchema = z.strictObject({
  prefix: PrefixSchema,
  steps: z.array(StepSchema).max(1000),
  retry_after: z.number().int().min(0).max(3600).optional(),
});

const ForgetSchema = z.strictObject({ prefix: PrefixSchema.optional() });

/**
 * The unauthenticated control routes under `/__standin/` (see `standin.ts` for the list). Bodies are JSON,
 * validated strictly: unknown keys get a 400.
 */
export async function control(req: Request, url: URL, state: StandinState, files: FileStore): Promise<Response> {
  const route = `${req.method} ${url.pathname}`;
  switch (route) {
    case "GET /__standin/stats":
      return Response.json(snapshot(state, files));
    case "GET /__standin/calls": {
      const tag = url.searchParams.get("tag");
      if (!tag) return openAIError(400, "Expected a tag query parameter, got none", { param: "tag" });
      return Response.json({ count: state.tags.get(tag) ?? 0 });
    }
    case "POST /__standin/reset":
      state.reset();
      files.forget("");
      return Response.json({ reset: true });
    case "POST /__standin/outage": {
      const body = await parse(req, OutageSchema);
      if (body instanceof Response) return body;
      const { prefix, mode, ...rest } = body;
      if (mode === "off") state.outages.delete(prefix);
      else state.outages.set(prefix, { mode, ...rest });
      return Response.json({ outages: Object.fromEntries(state.outages) });
    }
    case "DELETE /__standin/outage":
      return Response.json({ removed: remove(state.outages, url) });
    case "POST /__standin/script": {
      const body = await parse(req, ScriptSchema);
      if (body instanceof Response) return body;
      state.scripts.set(body.prefix, { steps: body.steps, retry_after: body.retry_after, calls: 0 });
      return Response.json({ scripts: Object.fromEntries(state.scripts) });
    }
    case "DELETE /__standin/script":
      return Response.json({ removed: remove(state.scripts, url) });
    case "POST /__standin/files/forget": {
      const body = await parse(req, ForgetSchema);
      if (body instanceof Response) return body;
      return Response.json({ forgotten: files.forget(body.prefix ?? "") });
    }
  }
  const known = ["stats", "calls", "reset", "outage", "script", "files/forget"].map((r) => `/__standin/${r}`);
  if (known.includes(url.pathname)) {
    return openAIError(405, `Expected another method for ${url.pathname}, got ${req.method}`);
  }
  return openAIError(404, `Unknown route ${url.pathname}`);
}

/** Counters kept by the stand-in, as `GET /__standin/stats` reports them. */
export interface StandinStats {
  /** HTTP requests handled, any route. */
  requests: number;
  /** Chat completion requests that got past authentication and parsing. */
  chatRequests: number;
  /** Requests being answered now; a streamed body counts until it has been sent or the client left. */
  inFlight: number;
  /** The highest `inFlight` since start or the last reset. */
  maxInFlight: number;
  /** Chat requests per directive `tag`. */
  tags: Record<string, number>;
  /** Per path prefix of each API request's base path ("/kimi" and "/kimi/v1" for "/kimi/v1/chat/completions"). */
  prefixes: Record<string, PrefixStats>;
  /** Files stored now, over all base paths. */
  files: { count: number; bytes: number };
  /** Outages switched on, by prefix ("" is "/", every path). */
  outages: Record<string, Outage>;
  /** Scripts set by prefix, with the chat calls played so far. */
  scripts: Record<string, PrefixScript>;
}

/** Everything `GET /__standin/stats` reports. */
export function snapshot(state: StandinState, files: FileStore): StandinStats {
  return {
    requests: state.requests,
    chatRequests: state.chatRequests,
    inFlight: state.inFlight,
    maxInFlight: state.maxInFlight,
    tags: Object.fromEntries(state.tags),
    prefixes: Object.fromEntries([...state.prefixes].map(([prefix, stats]) => [prefix, { ...stats }])),
    files: files.snapshot(),
    outages: Object.fromEntries([...state.outages].map(([prefix, outage]) => [prefix, { ...outage }])),
    scripts: Object.fromEntries([...state.scripts].map(([prefix, script]) => [prefix, { ...script }])),
  };
}

/** Removes the entry for `?prefix=` (or every entry without one); returns how many went. */
function remove(map: Map<string, unknown>, url: URL): number {
  const raw = url.searchParams.get("prefix");
  if (raw === null) {
    const size = map.size;
    map.clear();
    return size;
  }
  return map.delete(raw === "/" ? "" : raw.replace(/\/+$/, "")) ? 1 : 0;
}

async function parse<T extends z.ZodType>(req: Request, schema: T): Promise<z.infer<T> | Response> {
  let raw: unknown;
  try {
    raw = JSON.parse(await req.text() || "{}");
  } catch (error) {
    return openAIError(400, `Expected a JSON body, got invalid JSON: ${(error as Error).message}`);
  }
  const parsed = schema.safeParse(raw);
  if (parsed.success) return parsed.data;
  const issue = parsed.error.issues[0];
  const param = issue.path.length ? issue.path.map(String).join(".") : null;
  return openAIError(400, `Invalid body${param ? ` at ${param}` : ""}: ${issue.message}`, { param });
}
