/**
 * Every route of every function, as the door fuzz test attacks it (tests/fuzz_test.ts). A new route is added
 * here with generators that never make a valid write request (the test asserts that nothing was written).
 */
import fc from "fast-check";
import {
  badCompletionBody,
  badControlBody,
  badInvokeBody,
  brokenBody,
  contentType,
  idempotencyKey,
  pathSegment,
  queryString,
} from "./requests.ts";
import { badMcpBody, mcpHeaders } from "./mcp_requests.ts";

/** Who calls: the gateway and the functions must answer each of these without a 5xx. */
export type Auth = "none" | "garbage" | "anon" | "user" | "service" | "expired" | "other-secret";

export interface FuzzRequest {
  method: string;
  /** After `/functions/v1`. */
  path: string;
  headers: Record<string, string>;
  body?: Uint8Array;
  auth: Auth;
}

export interface RouteSpec {
  name: string;
  request: fc.Arbitrary<FuzzRequest>;
}

/** Callers that pass authentication come most often, so that most requests reach the door behind it. */
const WEIGHT: Record<Auth, number> = {
  user: 6,
  service: 4,
  none: 1,
  garbage: 1,
  anon: 1,
  expired: 1,
  "other-secret": 1,
};
const auth = (...allowed: Auth[]) =>
  fc.oneof(...allowed.map((a) => ({ arbitrary: fc.constant<Auth>(a), weight: WEIGHT[a] })));
const ALL_AUTH: Auth[] = ["none", "garbage", "anon", "user", "service", "expired", "other-secret"];

function route(
  name: string,
  method: fc.Arbitrary<string>,
  path: fc.Arbitrary<string>,
  opts: { body?: fc.Arbitrary<Uint8Array | undefined>; auth?: Auth[]; headers?: fc.Arbitrary<Record<string, string>> } =
    {},
): RouteSpec {
  return {
    name,
    request: fc.record({
      method,
      path,
      headers: opts.headers ?? fc.constant({}),
      body: opts.body ?? fc.constant(undefined),
      auth: auth(...(opts.auth ?? ALL_AUTH)),
    }),
  };
}

const jsonHeaders = fc.record({ ct: contentType, key: idempotencyKey }).map(({ ct, key }) => {
  const h: Record<string, string> = {};
  if (ct !== undefined) h["content-type"] = ct;
  if (key !== undefined) h["idempotency-key"] = key;
  return h;
});
const enc = new TextEncoder();
const otherMethod = fc.constantFrom("PUT", "PATCH", "DELETE");
const get = fc.constant("GET"), post = fc.constant("POST");

export const ROUTES: RouteSpec[] = [
  // tool-invoke (CONTRACT.md §4): every body is invalid; every caller, every header.
  route("tool-invoke POST /", post, queryString.map((q) => `/tool-invoke${q}`), {
    body: badInvokeBody,
    headers: jsonHeaders,
  }),
  route("tool-invoke POST / (broken bytes)", post, fc.constant("/tool-invoke"), {
    body: brokenBody,
    headers: jsonHeaders,
  }),
  route(
    "tool-invoke other paths and methods",
    fc.oneof(get, post, otherMethod),
    pathSegment.map((s) => `/tool-invoke/${s}`),
    {
      body: fc.option(brokenBody, { nil: undefined }),
    },
  ),
  route("tool-invoke GET /health", get, queryString.map((q) => `/tool-invoke/health${q}`)),
  // The dispatcher (service role, pg_cron) takes only {}: every body here is something else.
  route("tool-invoke POST /dispatch", post, queryString.map((q) => `/tool-invoke/dispatch${q}`), {
    body: badControlBody,
    headers: jsonHeaders,
  }),
  // Another run of a message, and a replay: ids that are not messages (404) or not ids (400); nothing is written.
  route("tool-invoke POST /<id>/run", post, pathSegment.map((s) => `/tool-invoke/${s}/run`), {
    body: fc.oneof(
      badControlBody,
      fc.integer({ min: -5, max: 2000 }).map((run) => enc.encode(JSON.stringify({ run }))),
    ),
    headers: jsonHeaders,
  }),
  route("tool-invoke POST /<id>/replay", post, pathSegment.map((s) => `/tool-invoke/${s}/replay`), {
    body: fc.option(badControlBody, { nil: undefined }),
    headers: jsonHeaders,
  }),

  // message-fetch (§5): reads only.
  route("message-fetch GET /?since&limit", get, queryString.map((q) => `/message-fetch${q}`)),
  route("message-fetch GET /<id>", get, fc.tuple(pathSegment, queryString).map(([s, q]) => `/message-fetch/${s}${q}`)),
  route(
    "message-fetch GET /<id>/completion",
    get,
    fc.tuple(pathSegment, queryString).map(([s, q]) => `/message-fetch/${s}/completion${q}`),
  ),
  route(
    "message-fetch GET /<id>/meta",
    get,
    fc.tuple(pathSegment, queryString).map(([s, q]) => `/message-fetch/${s}/meta${q}`),
  ),
  route(
    "message-fetch other methods",
    fc.oneof(post, otherMethod),
    pathSegment.map((s) => `/message-fetch/${s}`),
    { body: fc.option(brokenBody, { nil: undefined }) },
  ),
  route("message-fetch GET /health", get, fc.constant("/message-fetch/health")),

  // watcher and cleanup (service role only; bodies never valid).
  route("watcher POST /", post, queryString.map((q) => `/watcher${q}`), { body: badControlBody, headers: jsonHeaders }),
  route("watcher other", fc.oneof(get, otherMethod), pathSegment.map((s) => `/watcher/${s}`)),
  route("cleanup POST /", post, queryString.map((q) => `/cleanup${q}`), { body: badControlBody, headers: jsonHeaders }),
  route("cleanup other", fc.oneof(get, otherMethod), pathSegment.map((s) => `/cleanup/${s}`)),

  // mcp (§11): JSON-RPC on both eras; chat calls never valid, other tools and resources read random ids.
  route("mcp POST /", post, queryString.map((q) => `/mcp${q}`), { body: badMcpBody, headers: mcpHeaders }),
  route("mcp POST / (broken bytes)", post, fc.constant("/mcp"), { body: brokenBody, headers: mcpHeaders }),
  route("mcp GET and other methods /", fc.oneof(get, otherMethod), fc.constant("/mcp"), { headers: mcpHeaders }),
  route("mcp other paths", fc.oneof(get, post, otherMethod), pathSegment.map((s) => `/mcp/${s}`), {
    body: fc.option(brokenBody, { nil: undefined }),
  }),
  route("mcp GET /health", get, fc.constant("/mcp/health")),

  // openai (§10): OpenAI's API; every body invalid, or a valid body with a bus header that is not.
  route("openai POST /v1/chat/completions", post, queryString.map((q) => `/openai/v1/chat/completions${q}`), {
    body: fc.oneof(badCompletionBody, brokenBody),
    headers: jsonHeaders,
  }),
  route("openai POST /v1/chat/completions (bad bus headers)", post, fc.constant("/openai/v1/chat/completions"), {
    body: fc.constant(enc.encode(JSON.stringify({ model: "kimi", messages: [{ role: "user", content: "x" }] }))),
    headers: fc.oneof(
      fc.constantFrom("0", "-1", "soon", "99999999999", "1.5").map((t) => ({ "x-bus-ttl-seconds": t })),
      fc.constantFrom("", "k".repeat(256), "a b").map((k) => ({ "idempotency-key": k })),
      fc.constantFrom("", "s".repeat(201)).map((v) => ({ "x-bus-session-id": v })),
    ),
  }),
  route(
    "openai GET /v1/models and others",
    fc.oneof(get, post, otherMethod),
    fc.tuple(fc.constantFrom("/v1/models", "/v1/models/", "/v1", "/v1/completions", "/health"), pathSegment)
      .map(([p, s]) => `/openai${p}${p.endsWith("/") ? s : ""}`),
    { body: fc.option(brokenBody, { nil: undefined }) },
  ),

  // files (§13): an upload takes any bytes, so every upload here carries an owner header that is not a UUID;
  // reads and deletes of ids that are not files (404) or not ids (400).
  route("files POST / (bad owner header)", post, queryString.map((q) => `/files${q}`), {
    body: fc.option(brokenBody, { nil: undefined }),
    headers: fc.record({
      "x-owner-id": fc.string({ maxLength: 40 }).map((v) => v.replace(/[^\x21-\x7e]/g, "") + "-not-a-uuid"),
      "x-filename": fc.constantFrom("a.txt", "%ZZ.txt", "dir/a.txt", "", "\u00e9.txt"),
    }),
  }),
  route("files GET /?since&limit", get, queryString.map((q) => `/files${q}`)),
  route("files GET and DELETE /<id>", fc.oneof(get, fc.constant("DELETE")), pathSegment.map((s) => `/files/${s}`)),
  route(
    "files other methods",
    fc.oneof(fc.constant("PUT"), fc.constant("PATCH")),
    pathSegment.map((s) => `/files/${s}`),
    {
      body: fc.option(brokenBody, { nil: undefined }),
    },
  ),
  route("files GET /health", get, fc.constant("/files/health")),

  // ops (§12, service role): reads; writes with bodies that are never valid or on ids that are not groups.
  route(
    "ops GET reads",
    get,
    fc.tuple(fc.constantFrom("metrics", "providers", "errors", "alerts", "series", "health"), queryString).map((
      [r, q],
    ) => `/ops/${r}${q}`),
  ),
  route(
    "ops POST writes (bad bodies)",
    post,
    fc.tuple(fc.constantFrom("fold", "alerts/evaluate", "errors/" + "a".repeat(64) + "/resolve"), queryString)
      .map(([r, q]) => `/ops/${r}${q}`),
    { body: badControlBody, headers: jsonHeaders },
  ),
  route("ops POST /errors/<fingerprint>/resolve", post, pathSegment.map((s) => `/ops/errors/${s}/resolve`), {
    body: fc.option(fc.constant(enc.encode("{}")), { nil: undefined }),
    headers: jsonHeaders,
  }),
  route(
    "ops PUT and GET /limits/<user>",
    fc.oneof(get, fc.constant("PUT")),
    pathSegment.map((s) => `/ops/limits/${s}`),
    {
      body: fc.option(badControlBody, { nil: undefined }),
      headers: jsonHeaders,
    },
  ),
  route("ops other paths", fc.oneof(get, post, otherMethod), pathSegment.map((s) => `/ops/${s}`), {
    body: fc.option(brokenBody, { nil: undefined }),
  }),
];
