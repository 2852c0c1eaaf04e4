/**
 * Writes one benchmark's results: its section of bench/RESULTS.md (replaced in place, other sections kept) and
 * bench/results/<name>.json.
 */
const DIR = new URL("./", import.meta.url).pathname;

/** Replaces (or appends) section `name` of RESULTS.md with `markdown`, and writes the JSON next to it. */
export async function writeResults(name: string, markdown: string, json: unknown): Promise<void> {
  await Deno.mkdir(`${DIR}results`, { recursive: true });
  await Deno.writeTextFile(`${DIR}results/${name}.json`, JSON.stringify(json, null, 2) + "\n");
  const path = `${DIR}RESULTS.md`;
  let text: string;
  try {
    text = await Deno.readTextFile(path);
  } catch (err) {
    if (!(err instanceof Deno.errors.NotFound)) throw err;
    text = "# Benchmark results\n\nWritten by `npm run bench` (each section by its benchmark; machines are shared " +
      "and noisy, so read medians and ratios, not single runs).\n";
  }
  const start = `<!-- section:${name} -->`;
  const end = `<!-- /section:${name} -->`;
  const block = `${start}\n${markdown.trim()}\n${end}`;
  const from = text.indexOf(start);
  const to = text.indexOf(end);
  text = from >= 0 && to > from
    ? text.slice(0, from) + block + text.slice(to + end.length)
    : `${text.trimEnd()}\n\n${block}\n`;
  await Deno.writeTextFile(path, text);
  // Tables' line lengths vary from run to run: the formatter wraps the file as `npm test` checks it.
  const fmt = await new Deno.Command(Deno.execPath(), { args: ["fmt", path] }).output();
  if (!fmt.success) throw new Error(`deno fmt ${path} failed: ${new TextDecoder().decode(fmt.stderr)}`);
}

/** The q-quantile (0..1) of `values` (nearest rank). */
export function quantile(values: number[], q: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))];
}

/** Formats milliseconds with two decimals. */
export const ms = (v: number) => `${v.toFixed(2)} ms`;
