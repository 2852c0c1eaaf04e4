/**
 * scanJson against JSON.parse: on generated documents (fast-check) it must give the same value, and on generated
 * byte strings it must accept exactly what JSON.parse (after a fatal UTF-8 decode) accepts, except for what the bus
 * refuses on purpose (U+0000, lone surrogates, non-finite numbers, nesting past the limit).
 */
import assert from "node:assert/strict";
import fc from "fast-check";
import { ELIDED, JsonInputError, scanJson } from "./json_scan.ts";

const enc = new TextEncoder();
const OPTS = { maxDepth: 64, longString: 1 << 20 };

/** What the bus refuses on purpose, found in a parsed value. */
function refusedOnPurpose(v: unknown, depth = 1): boolean {
  if (depth > OPTS.maxDepth && typeof v === "object" && v !== null) return true;
  if (typeof v === "string") {
    return v.includes("\u0000") || /\p{Surrogate}/u.test(v.replace(/[\uD800-\uDBFF][\uDC00-\uDFFF]/g, ""));
  }
  if (typeof v === "number") return !Number.isFinite(v);
  if (Array.isArray(v)) return v.some((x) => refusedOnPurpose(x, depth + 1));
  if (typeof v === "object" && v !== null) {
    return Object.entries(v).some(([k, x]) => refusedOnPurpose(k) || refusedOnPurpose(x, depth + 1));
  }
  return false;
}

function reference(bytes: Uint8Array): { ok: true; value: unknown } | { ok: false } {
  try {
    return { ok: true, value: JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(bytes)) };
  } catch {
    return { ok: false };
  }
}

Deno.test("scanJson() reads generated JSON documents exactly as JSON.parse does", () => {
  fc.assert(
    fc.property(fc.jsonValue({ maxDepth: 6 }), fc.boolean(), (doc, pretty) => {
      const text = JSON.stringify(doc, null, pretty ? 2 : undefined);
      const parsed = JSON.parse(text);
      if (refusedOnPurpose(parsed)) return;
      assert.deepStrictEqual(scanJson(enc.encode(text), OPTS).value, parsed);
    }),
    { numRuns: 2000 },
  );
});

Deno.test("scanJson() accepts exactly the byte strings JSON.parse accepts, but for what the bus refuses", () => {
  const pieces = fc.constantFrom(
    "{",
    "}",
    "[",
    "]",
    ",",
    ":",
    '"',
    '"a"',
    "\\",
    "\\u0041",
    "\\ud83d\\ude00",
    "\\ud83d",
    "\\u0000",
    "\\n",
    "1",
    "-0",
    "1.5e3",
    "01",
    "1.",
    "true",
    "nul",
    " ",
    "\t",
    "é",
    "😀",
    "\u0001",
  );
  const raw = fc.oneof(
    fc.array(pieces, { maxLength: 12 }).map((p) => enc.encode(p.join(""))),
    fc.uint8Array({ maxLength: 16 }),
    fc.tuple(fc.jsonValue({ maxDepth: 3 }), fc.nat(40), fc.integer({ min: 0, max: 255 })).map(([v, at, byte]) => {
      const b = enc.encode(JSON.stringify(v));
      if (b.length > 0) b[at % b.length] = byte; // one corrupted byte
      return b;
    }),
  );
  fc.assert(
    fc.property(raw, (bytes) => {
      const ref = reference(bytes);
      let got: { ok: true; value: unknown } | { ok: false; error: unknown };
      try {
        got = { ok: true, value: scanJson(bytes, OPTS).value };
      } catch (error) {
        assert.ok(error instanceof JsonInputError, `only JsonInputError is thrown, got ${error}`);
        got = { ok: false, error };
      }
      if (ref.ok && !refusedOnPurpose(ref.value)) {
        assert.ok(got.ok, `JSON.parse accepts ${JSON.stringify(new TextDecoder().decode(bytes))}`);
        assert.deepStrictEqual(got.value, ref.value);
      } else assert.ok(!got.ok, `scanJson must refuse ${JSON.stringify(new TextDecoder().decode(bytes))}`);
    }),
    { numRuns: 20000 },
  );
});

Deno.test("scanJson() refuses U+0000, lone surrogates, non-finite numbers and deep nesting, naming where", () => {
  const cases: Array<[string, RegExp, string]> = [
    ['{"session_id":"a\\u0000b"}', /U\+0000/, "session_id"],
    ['{"metadata":{"k":"\\ud800"}}', /Lone high surrogate/, "metadata.k"],
    ['{"m":["\\udc00x"]}', /Lone low surrogate/, "m.0"],
    ['{"n":1e400}', /out of range/, "n"],
    ["[".repeat(65) + "]".repeat(65), /deeper than 64/, "0.0"],
    ['{"a\\u0000":1}', /U\+0000/, "(property name)"],
  ];
  for (const [text, message, path] of cases) {
    assert.throws(() => scanJson(enc.encode(text), OPTS), (err: unknown) => {
      assert.ok(err instanceof JsonInputError);
      assert.match(err.message, message, text);
      assert.ok(err.path.startsWith(path), `${text}: path ${err.path} starts with ${path}`);
      return true;
    });
  }
  // 10,000 deep: refused at depth 65 without recursion.
  assert.throws(() => scanJson(enc.encode("[".repeat(10_000) + "]".repeat(10_000)), OPTS), /deeper than 64/);
  assert.deepStrictEqual(scanJson(enc.encode("[".repeat(64) + "]".repeat(64)), OPTS).value !== undefined, true);
});

Deno.test("scanJson() elides long strings under the named members only, and gives each member's bytes", () => {
  const long = "é".repeat(50);
  const text = `{"tool":"chat", "input": {"messages":[{"role":"user","content":"${long}"}]} ,"x":1}`;
  const bytes = enc.encode(text);
  const out = scanJson(bytes, { maxDepth: 64, longString: 64, elideUnder: new Set(["input"]) });
  const input = out.value as { input: { messages: Array<{ content: string }> } };
  assert.equal(input.input.messages[0].content, ELIDED);
  assert.equal(out.elided, 1);
  const range = out.members.get("input")!;
  assert.deepStrictEqual(JSON.parse(new TextDecoder().decode(bytes.subarray(range.start, range.end))), {
    messages: [{ role: "user", content: long }],
  });
  assert.equal(
    new TextDecoder().decode(bytes.subarray(out.members.get("tool")!.start, out.members.get("tool")!.end)),
    '"chat"',
  );
  // The same string elsewhere is refused, not decoded.
  assert.throws(
    () =>
      scanJson(enc.encode(`{"session_id":"${long}"}`), {
        maxDepth: 64,
        longString: 64,
        elideUnder: new Set(["input"]),
      }),
    /longer than 64 bytes/,
  );
});

Deno.test("scanJson() keeps __proto__ as an own property and the last of repeated keys, as JSON.parse", () => {
  const text = '{"__proto__":{"polluted":true},"a":1,"a":2}';
  const value = scanJson(enc.encode(text), OPTS).value as Record<string, unknown>;
  assert.deepStrictEqual(value, JSON.parse(text));
  assert.equal(Object.getPrototypeOf(value), Object.prototype);
  assert.equal(({} as Record<string, unknown>).polluted, undefined);
});
