/**
 * Builds the dashboard as a static site for a deployment (hosted functions may not serve HTML,
 * supabase-platform.md §1.7): `<out>/index.html` and `<out>/app.js`, with the API URL fixed in the bundle.
 * The page never takes the API URL or a token from its address (client/dashboard/app.ts).
 *
 * Usage: npm run dashboard:build -- --api-url https://<ref>.supabase.co [--out dist/dashboard]
 *
 * @module
 */
import { parseArgs } from "node:util";
import { resolve } from "node:path";

const ROOT = resolve(new URL("..", import.meta.url).pathname);
const USAGE = "Usage: npm run dashboard:build -- --api-url https://<ref>.supabase.co [--out dist/dashboard]\n";

/**
 * Bundles the dashboard for `apiUrl` into `outDir` (created if needed).
 * @throws Error when the URL is not http(s) or bundling fails.
 */
export async function buildDashboard(apiUrl: string, outDir: string): Promise<void> {
  const url = new URL(apiUrl);
  if ((url.protocol !== "https:" && url.protocol !== "http:") || url.search || url.hash) {
    throw new Error(`--api-url must be an http(s) URL without query or fragment, got ${apiUrl}`);
  }
  const fixed = url.href.replace(/\/$/, "");
  const work = await Deno.makeTempDir({ prefix: "dashboard-build-" });
  try {
    // The API URL is a constant of this entry module, so the bundle carries it; nothing reads it at run time.
    const entry = `${work}/entry.ts`;
    const app = new URL("../client/dashboard/app.ts", import.meta.url).href;
    await Deno.writeTextFile(
      entry,
      `import { mountDashboard } from ${JSON.stringify(app)};\n\n` +
        `mountDashboard(${JSON.stringify(fixed)});\n`,
    );
    await Deno.mkdir(outDir, { recursive: true });
    const out = await new Deno.Command(Deno.execPath(), {
      args: ["bundle", "--platform", "browser", "--config", `${ROOT}/deno.json`, "-o", `${outDir}/app.js`, entry],
      env: { DENO_NO_PACKAGE_JSON: "1" },
      stdout: "piped",
      stderr: "piped",
    }).output();
    if (!out.success) throw new Error(`bundling the dashboard failed:\n${new TextDecoder().decode(out.stderr)}`);
    await Deno.copyFile(`${ROOT}/client/dashboard/index.html`, `${outDir}/index.html`);
  } finally {
    await Deno.remove(work, { recursive: true });
  }
}

if (import.meta.main) {
  let values;
  try {
    ({ values } = parseArgs({
      args: Deno.args,
      options: { "api-url": { type: "string" }, out: { type: "string" } },
      strict: true,
    }));
  } catch (err) {
    console.error(`error: ${err instanceof Error ? err.message : err}\n${USAGE}`);
    Deno.exit(2);
  }
  if (!values["api-url"] || !URL.canParse(values["api-url"])) {
    console.error(`error: expected --api-url <project URL>\n${USAGE}`);
    Deno.exit(2);
  }
  const outDir = resolve(values.out ?? "dist/dashboard");
  try {
    await buildDashboard(values["api-url"], outDir);
  } catch (err) {
    console.error(err instanceof Error ? err.message : err);
    Deno.exit(1);
  }
  console.error(`dashboard for ${values["api-url"]} written to ${outDir}/ (index.html, app.js): serve it statically`);
}
