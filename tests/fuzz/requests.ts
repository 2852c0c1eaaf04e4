/**
 * Generators of bad requests for the door fuzz test (tests/fuzz_test.ts): hostile strings, broken bytes, deep and
 * wide JSON, and invoke bodies made invalid by at least one mutation each, so that no generated write request can
 * be valid (the test asserts that nothing was written).
 */
import fc from "fast-check";

/** Strings the bus must survive anywhere: NUL, lone surrogates, long, unicode, SQL and path tricks. */
const hostile = (maxRepeat: number): fc.Arbitrary<string> =>
  fc.oneof(
    fc.string({ maxLength: 40 }),
    fc.string({ unit: "grapheme", maxLength: 20 }),
    fc.constantFrom(
      "\u0000",
      "a\u0000b",
      "\ud800",
      "x\udc00y",
      "constructor",
      "__proto__",
      "toString",
      "' or 1=1 --",
      "../../etc/passwd",
      "%00",
      "%ED%A0%80",
      "😀".repeat(50),
      "0000-01-01T00:00:00Z",
      "-1",
      "1e400",
      "NaN",
      "null",
      "",
      " ",
    ),
    fc.nat(maxRepeat).map((n) => "z".repeat(n)),
  );

/** For bodies: up to 70,000 characters (past the 64 KiB long-string bound). */
export const hostileString = hostile(70_000);
/**
 * For URLs: up to 2,000 characters. Longer request lines are refused by the HTTP server itself before any function
 * runs (Deno's server resets the connection; hosted Supabase's gateway answers 414), which is not the door's to test.
 */
export const hostileUrlString = hostile(2_000);

/**
 * Percent-encodes `s` for a URL; a lone surrogate, which encodeURIComponent refuses, becomes its WTF-8 bytes
 * (`%ED%A0%80` for U+D800), which is not UTF-8: what a hostile client can send.
 */
export function pct(s: string): string {
  let out = "";
  for (const ch of s) {
    const cp = ch.codePointAt(0)!;
    if (cp >= 0xd800 && cp <= 0xdfff) {
      out += [0xe0 | (cp >> 12), 0x80 | ((cp >> 6) & 0x3f), 0x80 | (cp & 0x3f)]
        .map((b) => `%${b.toString(16).toUpperCase()}`).join("");
    } else out += encodeURIComponent(ch);
  }
  return out;
}

/** Path segments: ids that are almost UUIDs, and everything else. */
export const pathSegment: fc.Arbitrary<string> = fc.oneof(
  fc.uuid(),
  fc.uuid().map((u) => u.toUpperCase()),
  fc.uuid().map((u) => u.slice(0, 35)),
  fc.uuid().map((u) => ` ${u}`),
  hostileUrlString,
).map(pct);

/** Times at and past the edges: years 0 and beyond 9999, 1969, bad months, offsets, fractions. */
const timeish: fc.Arbitrary<string> = fc.oneof(
  fc.tuple(
    fc.integer({ min: -300_000, max: 300_000 }),
    fc.integer({ min: 0, max: 14 }),
    fc.integer({ min: 0, max: 33 }),
  )
    .map(([y, m, d]) =>
      `${y < 0 ? "-" : y > 9999 ? "+" : ""}${String(Math.abs(y)).padStart(y > 9999 || y < 0 ? 6 : 4, "0")}-${
        String(m).padStart(2, "0")
      }-${String(d).padStart(2, "0")}T00:00:00Z`
    ),
  fc.date({ noInvalidDate: true }).map((d) => d.toISOString()),
  fc.constantFrom("0000-01-01T00:00:00Z", "1969-12-31T23:59:59.999Z", "2026-02-30T00:00:00Z", "2026-01-01", "now", "")
    .map((t) => t),
);

/** Numbers at and past the edges, as query text. */
const numberish: fc.Arbitrary<string> = fc.oneof(
  fc.integer().map(String),
  fc.constantFrom("0", "-1", "1001", "1e3", "1.5", "0x10", "99999999999999999999", "", " 5"),
);

/** A query string of 0-3 parameters (known names with edge values, or anything), sometimes repeated. */
export const queryString: fc.Arbitrary<string> = fc.array(
  fc.oneof(
    fc.tuple(fc.constant("since"), timeish),
    fc.tuple(fc.constant("limit"), numberish),
    fc.tuple(fc.constantFrom("partial", "x"), hostileUrlString),
    fc.tuple(fc.constant("partial"), fc.constantFrom("1", "0", "true", "false", "")),
    fc.tuple(hostileUrlString, fc.oneof(hostileUrlString, numberish)),
  ),
  { maxLength: 3 },
).map((pairs) => pairs.length ? "?" + pairs.map(([k, v]) => `${pct(k)}=${pct(v)}`).join("&") : "");

const enc = new TextEncoder();

/** Bodies that are not acceptable JSON at all (bytes), or JSON of the wrong kind. */
export const brokenBody: fc.Arbitrary<Uint8Array> = fc.oneof(
  fc.uint8Array({ maxLength: 64 }),
  fc.constantFrom("", "{", "[", "null", "1", '"x"', "{}}", '{"a":}', "\u0000", '{"a":"\\ud800"}').map((s) =>
    enc.encode(s)
  ),
  fc.nat({ max: 20_000 }).map((n) => enc.encode("[".repeat(65 + n) + "]".repeat(65 + n))),
  fc.jsonValue({ maxDepth: 3 }).map((v) => enc.encode(JSON.stringify(v))),
  fc.tuple(fc.jsonValue({ maxDepth: 2 }), fc.nat(), fc.integer({ min: 0x80, max: 0xff })).map(([v, at, byte]) => {
    const b = enc.encode(JSON.stringify({ v }));
    b[at % b.length] = byte; // one byte that is not UTF-8 where it stands
    return b;
  }),
);

type Body = Record<string, unknown>;

/** One change that makes a valid invoke body invalid. */
const invokeMutation: fc.Arbitrary<(b: Body) => void> = fc.oneof(
  hostileString.filter((s) => s !== "chat").map((tool) => (b: Body) => void (b.tool = tool)),
  fc.constantFrom(null, 1, [], {}, "chat").map((tool) => (b: Body) =>
    void (b.tool = tool === "chat" ? ["chat"] : tool)
  ),
  fc.constantFrom("openai", "KIMI", "", "kimi\u0000", 7).map((p) => (b: Body) => void (b.provider = p)),
  fc.constantFrom("", "m\u0000", "x".repeat(201), 1, null).map((m) => (b: Body) => void (b.model = m)),
  fc.constantFrom(
    null,
    [],
    "messages",
    1,
    { messages: [] },
    { messages: "x" },
    {
      messages: [{ role: "wizard", content: "x" }],
    },
    { messages: [{ role: "user", content: "x" }], model: "m" },
    {
      messages: [{ role: "user", content: "x" }],
      stream: true,
    },
    { messages: [{ role: "user", content: "x" }], max_tokens: -1 },
  ).map((i) => (b: Body) => void (b.input = i)),
  fc.constantFrom("a\u0000", "", "x".repeat(201), 5).map((s) => (b: Body) => void (b.session_id = s)),
  fc.constantFrom("both", "", null, "SYNC").map((m) => (b: Body) => void (b.mode = m)),
  fc.constantFrom(0, -5, 59, 1.5, 99_999_999_999, "60", null).map((t) => (b: Body) => void (b.ttl_seconds = t)),
  fc.constantFrom([], "x", 1, { k: "\u0000" }, { big: "m".repeat(17_000) }).map((m) => (b: Body) =>
    void (b.metadata = m)
  ),
  fc.constantFrom("not-a-uuid", 1, "").map((o) => (b: Body) => void (b.owner_id = o)),
  hostileString.map((k) => (b: Body) => void (b[`unknown_${k}`] = 1)),
);

/** A valid-looking invoke body with one to three mutations, each of which makes it invalid. */
export const badInvokeBody: fc.Arbitrary<Uint8Array> = fc.array(invokeMutation, { minLength: 1, maxLength: 3 }).map(
  (mutations) => {
    const body: Record<string, unknown> = {
      tool: "chat",
      input: { messages: [{ role: "user", content: "fuzz #standin {}" }] },
    };
    for (const m of mutations) m(body);
    return enc.encode(JSON.stringify(body));
  },
);

/** One change that makes a valid OpenAI chat completion request invalid (unknown members are valid: passed on). */
const completionMutation: fc.Arbitrary<(b: Body) => void> = fc.oneof(
  fc.constantFrom("", 1, null, [], "x".repeat(301), undefined).map((m) => (b: Body) => void (b.model = m)),
  fc.constantFrom(null, [], "messages", 1, [{ role: "wizard", content: "x" }], [{ role: "user" }], [{
    role: "user",
    content: 5,
  }]).map((m) => (b: Body) => void (b.messages = m)),
  fc.constantFrom("yes", 1, null, "true").map((v) => (b: Body) => void (b.stream = v)),
  fc.constantFrom("glm", [""], ["nope"], ["kimi/"], [1], Array(9).fill("glm")).map((f) => (b: Body) =>
    void (b.fallbacks = f)
  ),
  fc.constantFrom(-1, 0, 1.5, "10").map((n) => (b: Body) => void (b.max_tokens = n)),
  fc.constantFrom(-0.1, 2.5, "1").map((t) => (b: Body) => void (b.temperature = t)),
  fc.constantFrom([], ["x"], [crypto.randomUUID(), "not-a-uuid"]).map((f) => (b: Body) => void (b.files = f)),
  hostileString.map((s) => (b: Body) => void (b.model = `${s}\u0000`)),
);

/** A valid-looking OpenAI request with one to three mutations, each of which makes it invalid. */
export const badCompletionBody: fc.Arbitrary<Uint8Array> = fc.array(completionMutation, { minLength: 1, maxLength: 3 })
  .map((mutations) => {
    const body: Body = { model: "kimi", messages: [{ role: "user", content: "fuzz #standin {}" }] };
    for (const m of mutations) m(body);
    return enc.encode(JSON.stringify(body));
  });

/** True for a body that cleanup would accept (`{}` or `{ "async": boolean }`), which would run a cleanup. */
function validCleanupBody(b: Uint8Array): boolean {
  try {
    const v = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(b).trim() || "{}");
    return typeof v === "object" && v !== null && !Array.isArray(v) &&
      Object.keys(v).every((k) => k === "async" && typeof v[k] === "boolean");
  } catch {
    return false; // not JSON: certainly invalid
  }
}

/** Bodies of small control requests (watcher, cleanup) that are never valid. */
export const badControlBody: fc.Arbitrary<Uint8Array> = fc.oneof(
  brokenBody.filter((b) => !validCleanupBody(b)),
  fc.record({ transaction_id: hostileString, async: fc.constantFrom("yes", 1, null) }).map((v) =>
    enc.encode(JSON.stringify(v))
  ),
  fc.record({ async: fc.constantFrom("true", 1, null, {}) }).map((v) => enc.encode(JSON.stringify(v))),
  // The watcher's drain request, wrong: only `{ "drain": true }` is one.
  fc.record({ drain: fc.constantFrom(false, "true", 1, null) }, { requiredKeys: [] }).map((v) =>
    enc.encode(JSON.stringify({ ...v, transaction_id: undefined, x: 1 }))
  ),
  hostileString.map((k) => enc.encode(JSON.stringify({ [`unknown_${k}`]: true }))),
);

/** Header values, some broken. */
export const idempotencyKey: fc.Arbitrary<string | undefined> = fc.oneof(
  fc.constant(undefined),
  fc.constantFrom("", " ", "k".repeat(256), "é", "a b"),
  fc.string({ maxLength: 20 }).map((s) => s.replace(/[^\x20-\x7e]/g, "")),
);

export const contentType: fc.Arbitrary<string | undefined> = fc.constantFrom(
  undefined,
  "application/json",
  "text/plain",
  "application/json; charset=latin1",
  "multipart/form-data; boundary=x",
  "",
);
