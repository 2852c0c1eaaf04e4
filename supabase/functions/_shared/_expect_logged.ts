/**
 * Test helper (not used by the functions): runs a test step that provokes failures the code logs on purpose, with
 * console.error and console.warn collected instead of printed, and asserts those lines. A passing `npm test` thus
 * prints no error lines, and a test fails if a line it does not expect is logged, or one it requires is not.
 */
import assert from "node:assert/strict";

/** Lines a step must log (each pattern matched at least once) and lines it may log (timing-dependent ones). */
export interface ExpectedLines {
  must?: RegExp[];
  may?: RegExp[];
}

/**
 * Runs `fn` with console.error/console.warn collected; after it settles, waits (bounded) for every `must` pattern,
 * restores the console and asserts that every collected line matched a `must` or `may` pattern.
 * @returns what `fn` returned, and the collected lines.
 */
export async function expectLogged<T>(
  expected: ExpectedLines,
  fn: () => Promise<T>,
  timeoutMs = 5_000,
): Promise<{ result: T; lines: string[] }> {
  const must = expected.must ?? [];
  const may = expected.may ?? [];
  const lines: string[] = [];
  const original = { error: console.error, warn: console.warn };
  const collect = (...args: unknown[]) =>
    lines.push(args.map((a) => (typeof a === "string" ? a : Deno.inspect(a))).join(" "));
  console.error = collect;
  console.warn = collect;
  let result: T;
  try {
    result = await fn();
    // Logs from promise handlers that settle right after `fn` (e.g. a read-ahead rejected at a pool's end).
    await new Promise((r) => setTimeout(r, 0));
    const deadline = Date.now() + timeoutMs;
    while (!must.every((p) => lines.some((l) => p.test(l))) && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 10));
    }
  } finally {
    console.error = original.error;
    console.warn = original.warn;
  }
  for (const p of must) assert.ok(lines.some((l) => p.test(l)), `expected a log line matching ${p}, got ${lines}`);
  for (const l of lines) {
    assert.ok([...must, ...may].some((p) => p.test(l)), `unexpected log line: ${l}`);
  }
  return { result, lines };
}
