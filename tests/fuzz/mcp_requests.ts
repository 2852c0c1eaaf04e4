/**
 * Bad requests for the MCP endpoint (CONTRACT.md §11) in the door fuzz test: JSON-RPC messages of every method,
 * on both protocol eras, with hostile headers. A `chat` call is always made invalid by at least one mutation, so
 * that no generated request can write a message; the other tools and resources only read (random ids).
 */
import fc from "fast-check";
import { contentType, hostileString, hostileUrlString } from "./requests.ts";

const enc = new TextEncoder();
type Args = Record<string, unknown>;

/** One change that makes valid `chat` arguments invalid (by the tool's schema or by the invoke door behind it). */
const chatMutation: fc.Arbitrary<(a: Args) => void> = fc.oneof(
  fc.constantFrom(1, "", null, ["x"]).map((p) => (a: Args) => void (a.prompt = p)),
  fc.constant((a: Args) => void delete a.prompt),
  fc.constant((a: Args) => void (a.messages = [{ role: "user", content: "both" }])),
  fc.constantFrom([], "x", [{ role: "wizard", content: "x" }], [{ content: "x" }]).map((m) => (a: Args) => {
    delete a.prompt;
    a.messages = m;
  }),
  fc.constantFrom("openai", "", "kimi\u0000", 7).map((p) => (a: Args) => void (a.provider = p)),
  fc.constantFrom("", "x".repeat(201), 1).map((m) => (a: Args) => void (a.model = m)),
  fc.constantFrom("both", "", null).map((m) => (a: Args) => void (a.mode = m)),
  fc.constantFrom(0, -5, 1.5, "60", 99_999_999_999).map((t) => (a: Args) => void (a.ttl_seconds = t)),
  fc.constantFrom(-1, 0, 1.5, "9").map((t) => (a: Args) => void (a.max_tokens = t)),
  fc.constantFrom(-1, 5, "0.5").map((t) => (a: Args) => void (a.temperature = t)),
  fc.constantFrom("", "a b", "é", "k".repeat(256)).map((k) => (a: Args) => void (a.idempotency_key = k)),
);

const badChatArgs = fc.array(chatMutation, { minLength: 1, maxLength: 3 }).map((mutations) => {
  const args: Args = { prompt: "fuzz #standin {}" };
  for (const m of mutations) m(args);
  return args;
});

const anyId = fc.oneof(fc.uuid(), hostileString, fc.constantFrom(1, null, "", "00000000-0000-0000-0000-000000000000"));

/** `params` of a tools/call that reads only, or of a chat that is invalid. */
const toolCall = fc.oneof(
  badChatArgs.map((args) => ({ name: "chat", arguments: args })),
  fc.record({
    name: fc.constantFrom("fetch_message", "message_meta", "wait_message"),
    arguments: fc.record({
      transaction_id: anyId,
      offset: fc.oneof(fc.integer(), fc.double(), hostileString),
      max_bytes: fc.oneof(fc.integer(), fc.constant(4_194_305)),
      // A random id is never pending, so wait_message answers at once; the bound keeps a surprise short.
      timeout_seconds: fc.constantFrom(1, 0, -1, "x", 1e9),
    }, { requiredKeys: [] }),
  }),
  fc.record({
    name: fc.constant("list_messages"),
    arguments: fc.record({ since: hostileString, limit: fc.oneof(fc.integer(), hostileString) }, { requiredKeys: [] }),
  }),
  fc.record({ name: hostileString, arguments: fc.jsonValue({ maxDepth: 2 }) }),
);

const ENVELOPE = {
  "io.modelcontextprotocol/protocolVersion": "2026-07-28",
  "io.modelcontextprotocol/clientInfo": { name: "fuzz", version: "1" },
  "io.modelcontextprotocol/clientCapabilities": {},
};

const message = fc.record({
  method: fc.oneof(
    { weight: 4, arbitrary: fc.constant("tools/call") },
    {
      weight: 3,
      arbitrary: fc.constantFrom(
        "tools/list",
        "resources/read",
        "resources/list",
        "resources/templates/list",
        "initialize",
        "server/discover",
        "ping",
        "notifications/initialized",
        "subscriptions/listen",
      ),
    },
    { weight: 1, arbitrary: hostileString },
  ),
  id: fc.oneof(fc.integer(), hostileString, fc.constant(null), fc.constant(undefined)),
  jsonrpc: fc.constantFrom("2.0", "2.0", "1.0", undefined),
  call: toolCall,
  uri: fc.oneof(anyId.map((id) => `bus://messages/${id}`), hostileString),
  other: fc.jsonValue({ maxDepth: 2 }),
  meta: fc.oneof(fc.constant(ENVELOPE), fc.constant(undefined), fc.jsonValue({ maxDepth: 2 })),
});

type Message = typeof message extends fc.Arbitrary<infer T> ? T : never;

function jsonRpc(x: Message) {
  const params = x.method === "tools/call" ? x.call : x.method === "resources/read" ? { uri: x.uri } : x.other;
  const withMeta = x.meta !== undefined && typeof params === "object" && params !== null && !Array.isArray(params)
    ? { ...params, _meta: x.meta }
    : params;
  return { jsonrpc: x.jsonrpc, id: x.id, method: x.method, params: withMeta };
}

/** A JSON-RPC message (or a batch of them) that writes nothing. */
export const badMcpBody: fc.Arbitrary<Uint8Array> = fc.oneof(
  { weight: 5, arbitrary: message },
  { weight: 1, arbitrary: fc.array(message, { minLength: 0, maxLength: 3 }) },
).map((m) => enc.encode(JSON.stringify(Array.isArray(m) ? m.map(jsonRpc) : jsonRpc(m))));

/** Streamable HTTP's headers, each sometimes missing or wrong, and browser origins allowed and not. */
export const mcpHeaders: fc.Arbitrary<Record<string, string>> = fc.record({
  ct: fc.oneof({ weight: 3, arbitrary: fc.constant("application/json") }, { weight: 1, arbitrary: contentType }),
  accept: fc.constantFrom(
    "application/json, text/event-stream",
    "application/json, text/event-stream",
    "application/json",
    "text/event-stream",
    "text/html",
    undefined,
  ),
  version: fc.constantFrom("2026-07-28", "2025-11-25", "2025-03-26", "1999-01-01", "", undefined),
  mcpMethod: fc.option(fc.constantFrom("tools/call", "tools/list", "x"), { nil: undefined }),
  mcpName: fc.option(fc.constantFrom("chat", "fetch_message", ""), { nil: undefined }),
  origin: fc.constantFrom(undefined, undefined, "http://localhost:6274", "https://evil.example", "null", "not a url"),
  session: fc.option(hostileUrlString.map((s) => s.replace(/[^\x21-\x7e]/g, "").slice(0, 64)), { nil: undefined }),
}).map((h) => {
  const out: Record<string, string> = {};
  if (h.ct !== undefined) out["content-type"] = h.ct;
  if (h.accept !== undefined) out.accept = h.accept;
  if (h.version !== undefined) out["mcp-protocol-version"] = h.version;
  if (h.mcpMethod !== undefined) out["mcp-method"] = h.mcpMethod;
  if (h.mcpName !== undefined) out["mcp-name"] = h.mcpName;
  if (h.origin !== undefined) out.origin = h.origin;
  if (h.session) out["mcp-session-id"] = h.session;
  return out;
});
