/**
 * The door: every function validates its path, query, headers and body here, with zod, and answers bad input with
 * 400 `{ error: { code: "invalid_request", message, issues: [{ path, message }] } }` naming every problem.
 *
 * - Path, query and headers go through `@hono/zod-validator` (the ecosystem's piece) with one hook that throws the
 *   bus's error, so the single `onError` answers.
 * - JSON bodies go through {@link jsonBody}: read once under the size limit and the instance's body budget
 *   (body.ts; `hono/body-limit` would buffer a chunked body into a doubling buffer and hold it again for
 *   `c.req.json()`), checked by scanJson (UTF-8, U+0000, lone surrogates, depth, finite numbers, long strings),
 *   sized per member, then validated by the route's schema. The raw bytes stay available ({@link rawBody}) for
 *   routes that store or forward them as received.
 */
import type { Context, MiddlewareHandler, ValidationTargets } from "hono";
import { zValidator } from "@hono/zod-validator";
import { z } from "zod";
import { invalidRequest, type Issue } from "../errors.ts";
import { BodyBudget, type HeldBody, readBody } from "./body.ts";
import { JsonInputError, type MemberRange, scanJson } from "./json_scan.ts";

/** zod issues as `{ path, message }`, with `prefix` before each path. */
export function issuesOf(error: z.ZodError, prefix: ReadonlyArray<string | number> = []): Issue[] {
  return error.issues.map((i) => ({
    path: [...prefix, ...i.path].map(String).join(".") || "(body)",
    message: i.message,
  }));
}

const TARGET_NAMES: Record<string, string> = { query: "query", param: "path", header: "headers", json: "body" };

/** Validates one part of the request with `schema` (`c.req.valid(target)` then has the result). */
export function door<T extends z.ZodType, Target extends keyof ValidationTargets>(target: Target, schema: T) {
  return zValidator(target, schema, (result) => {
    if (!result.success) {
      let issues = issuesOf(result.error as unknown as z.ZodError);
      // Hono hands headers over lower-cased; the answer names them as clients write them (Idempotency-Key).
      if (target === "header") issues = issues.map((i) => ({ ...i, path: headerName(i.path) }));
      throw invalidRequest(`Invalid request ${TARGET_NAMES[target] ?? target}`, issues);
    }
  });
}

const headerName = (name: string) => name.replace(/(^|-)([a-z])/g, (_, dash, c) => dash + c.toUpperCase());

// ---------------------------------------------------------------------------------------------------------------
// Field types shared by the schemas
// ---------------------------------------------------------------------------------------------------------------

/**
 * Text Postgres can store: no U+0000, no lone surrogates. JSON bodies are checked by scanJson; this is for what
 * arrives through the URL and headers (decoded `%00` in a query, for instance).
 */
export const pgText = (max: number) =>
  z.string().max(max).refine((s) => !s.includes("\u0000"), "must not contain U+0000").refine(
    (s) => s.isWellFormed(),
    "must not contain lone surrogates",
  );

/** Earliest and latest time the bus accepts (Postgres has no year 0: `0000-01-01` was a 500). */
const MIN_TIME = Date.UTC(1970, 0, 1), MAX_TIME = Date.UTC(9999, 11, 31, 23, 59, 59, 999);

/** An ISO 8601 date-time with an offset, between 1970 and 9999; the output is a normalised ISO string. */
export const isoTime = () =>
  z.iso.datetime({ offset: true, error: "must be an ISO 8601 date-time, e.g. 2026-01-31T12:00:00Z" })
    .refine((s) => {
      const t = Date.parse(s);
      return Number.isFinite(t) && t >= MIN_TIME && t <= MAX_TIME;
    }, "must lie between 1970-01-01 and 9999-12-31");

/** A transaction id (UUID), lower-cased. */
export const transactionId = () =>
  z.string().trim().pipe(z.uuid({ error: "must be a UUID transaction id" })).transform((s) => s.toLowerCase());

// ---------------------------------------------------------------------------------------------------------------
// JSON bodies
// ---------------------------------------------------------------------------------------------------------------

export interface JsonBodyOptions {
  maxBytes: number;
  budget: BodyBudget;
  maxDepth: number;
  /** Top-level members whose long strings are checked but not decoded (see scanJson). */
  elideUnder?: ReadonlySet<string> | "*";
  /** Largest JSON text per top-level member, in bytes (e.g. `{ metadata: 16384 }`). */
  memberLimits?: Record<string, number>;
  /** Strings longer than this are elided (under `elideUnder`) or refused (elsewhere). Default 64 KiB. */
  longString?: number;
  /** An empty body counts as `{}` (for routes whose body is optional). */
  emptyIsObject?: boolean;
}

/** The body as received, for routes that store or forward it unchanged. */
export interface RawBody extends HeldBody {
  members: Map<string, MemberRange>;
}

const RAW_BODY = "bus.rawBody";
const RAW_BODY_KEPT = "bus.rawBodyKept";

/** The raw body read by {@link jsonBody} on this request. */
export function rawBody(c: Context): RawBody {
  const raw = c.get(RAW_BODY as never) as RawBody | undefined;
  if (!raw) throw new Error("rawBody() needs the jsonBody() middleware on the route");
  return raw;
}

const EMPTY_OBJECT = new TextEncoder().encode("{}");

/**
 * Reads and validates a JSON body with `schema`; `c.req.valid("json")` then holds the parsed value.
 * The reservation of the body budget is released when the handler returns, unless it called {@link keepRawBody},
 * which hands the release to it (background work that still needs the bytes).
 */
export function jsonBody<T extends z.ZodType>(
  schema: T,
  opts: JsonBodyOptions | ((c: Context) => JsonBodyOptions),
): MiddlewareHandler<
  // deno-lint-ignore no-explicit-any
  any,
  string,
  { in: { json: z.input<T> }; out: { json: z.output<T> } }
> {
  return async function jsonBodyDoor(c, next) {
    const o = typeof opts === "function" ? opts(c) : opts;
    const held = await readBody(c.req.raw, { maxBytes: o.maxBytes, budget: o.budget });
    let handed = false;
    try {
      // An empty body, where allowed, is `{}`, validated like any other (a schema that needs a member refuses it).
      const { value, members } = checkJson(
        held.bytes.length === 0 && o.emptyIsObject ? EMPTY_OBJECT : held.bytes,
        schema,
        o,
      );
      c.req.addValidatedData("json", value as object);
      c.set(RAW_BODY as never, { bytes: held.bytes, members, release: held.release } satisfies RawBody as never);
      await next();
      handed = c.get(RAW_BODY_KEPT as never) === true;
    } finally {
      if (!handed) held.release();
    }
  };
}

/**
 * The body door without HTTP: checks `bytes` (scanJson, then the member sizes) and validates them with `schema`,
 * for JSON that arrives another way (an MCP tool's arguments made into an invoke, a stored request run again).
 * @throws BusError 400 naming every problem.
 */
export function checkJson<T extends z.ZodType>(
  bytes: Uint8Array,
  schema: T,
  o: Pick<JsonBodyOptions, "maxDepth" | "elideUnder" | "memberLimits" | "longString">,
): { value: z.output<T>; members: Map<string, MemberRange> } {
  let scanned;
  try {
    scanned = scanJson(bytes, {
      maxDepth: o.maxDepth,
      longString: o.longString ?? 64 * 1024,
      elideUnder: o.elideUnder,
    });
  } catch (err) {
    if (!(err instanceof JsonInputError)) throw err;
    throw invalidRequest(`The request body is not acceptable JSON: ${err.message}`, [{
      path: err.path,
      message: err.message,
    }]);
  }
  const { value, members } = scanned;
  const sizeIssues: Issue[] = Object.entries(o.memberLimits ?? {}).flatMap(([key, limit]) => {
    const r = members.get(key);
    return r && r.end - r.start > limit
      ? [{ path: key, message: `must be at most ${limit} bytes of JSON, got ${r.end - r.start}` }]
      : [];
  });
  const parsed = schema.safeParse(value);
  const issues = [...sizeIssues, ...(parsed.success ? [] : issuesOf(parsed.error))];
  if (issues.length > 0) throw invalidRequest("Invalid request body", issues);
  return { value: parsed.data as z.output<T>, members };
}

/** Marks the raw body as taken over by background work: the door no longer releases it when the handler returns. */
export function keepRawBody(c: Context): RawBody {
  const raw = rawBody(c);
  c.set(RAW_BODY_KEPT as never, true as never);
  return raw;
}

/** Bodies of small control requests (watcher, cleanup): 64 KiB at most, 4 MiB of them per instance at once. */
const SMALL_BODY_BYTES = 64 * 1024;
const smallBodies = new BodyBudget(4 * 1024 * 1024);

/** {@link jsonBody} for a small control request; an empty body is `{}`. */
export function smallJsonBody<T extends z.ZodType>(schema: T, maxDepth: number) {
  return jsonBody(schema, { maxBytes: SMALL_BODY_BYTES, budget: smallBodies, maxDepth, emptyIsObject: true });
}
