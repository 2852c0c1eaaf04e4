/**
 * JSON text that Postgres stores as `json` and `jsonb`. JSON.stringify writes a lone surrogate (half of an emoji cut
 * by a `slice`, or by V8 inside an error message such as `Unexpected token '\ud83d'`) as a `\udxxx` escape, and
 * U+0000 as `\u0000`; jsonb refuses both (22P02 "Unicode low surrogate must follow a high surrogate", 22P05), which
 * failed a whole watcher drain once, over one finding's text. Such characters can only come from text the bus
 * records about others (provider error messages, findings, reviews): callers' input is refused at the door
 * (door/json_scan.ts). Here they become U+FFFD, the replacement character, as `String.prototype.toWellFormed` does.
 */

/** Escapes that jsonb refuses, as JSON.stringify writes them (a false positive only costs the slow path). */
const REFUSED_ESCAPE = /\\u(?:0000|d[89a-f][0-9a-f]{2})/i;

/** `JSON.stringify(value)`, with lone surrogates and U+0000 in strings (values and keys) replaced by U+FFFD. */
export function storableJson(value: unknown): string {
  const text = JSON.stringify(value);
  if (text === undefined || !REFUSED_ESCAPE.test(text)) return text;
  return JSON.stringify(value, function (this: unknown, _key, v: unknown) {
    if (typeof v === "string") return storable(v);
    if (v === null || typeof v !== "object" || Array.isArray(v)) return v;
    // Keys too: rebuild an object whose keys need it.
    const entries = Object.entries(v as Record<string, unknown>);
    return entries.some(([k]) => storable(k) !== k) ? Object.fromEntries(entries.map(([k, x]) => [storable(k), x])) : v;
  });
}

const storable = (s: string) => s.toWellFormed().replaceAll("\u0000", "\uFFFD");

/** The postgres.js `types` entry for json and jsonb (replaces the default `json`: same oids, same parser). */
export const jsonType = { to: 114, from: [114, 3802], serialize: storableJson, parse: (x: string) => JSON.parse(x) };
