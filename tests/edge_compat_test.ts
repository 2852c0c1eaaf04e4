/**
 * Each function's entry point, on its own, type-checks and reaches only what the hosted Edge Runtime has:
 * modules under supabase/functions, `npm:` packages and `node:` built-ins (supabase-platform.md §1.2); never
 * devstack/, tests/ or bench/; and no API the runtime lacks (subprocesses, file writes, KV, workers, §1.7).
 */
import assert from "node:assert/strict";

const ROOT = new URL("..", import.meta.url).pathname;
const FUNCTIONS = `${ROOT}supabase/functions`;
const FORBIDDEN = [
  /\bDeno\.(Command|run|writeFile|writeTextFile|mkdir|remove|rename|chmod|chown|symlink|truncate|create|makeTempDir|openKv|listen)\b/,
  /["']node:(child_process|vm|worker_threads|cluster)["']/,
  /\bnew Worker\(/,
];

const entries = [...Deno.readDirSync(FUNCTIONS)]
  .filter((e) => e.isDirectory && !e.name.startsWith("_") && e.name !== "tests")
  .map((e) => e.name)
  .sort();

Deno.test("the functions exist", () => {
  assert.deepEqual(entries, ["cleanup", "files", "mcp", "message-fetch", "openai", "ops", "tool-invoke", "watcher"]);
});

interface InfoModule {
  specifier: string;
  local?: string;
  error?: string;
}

for (const name of entries) {
  const entry = `${FUNCTIONS}/${name}/index.ts`;

  Deno.test(`${name}: its module graph stays inside supabase/functions, npm: and node:`, async () => {
    const out = await new Deno.Command(Deno.execPath(), {
      args: ["info", "--json", entry],
      cwd: ROOT,
      stdout: "piped",
      stderr: "piped",
    }).output();
    assert(out.success, new TextDecoder().decode(out.stderr));
    const info = JSON.parse(new TextDecoder().decode(out.stdout)) as { modules: InfoModule[] };
    const local = info.modules.filter((m) => m.specifier.startsWith("file://"));
    assert(local.length > 1);
    for (const m of info.modules) {
      assert(!m.error, `${m.specifier}: ${m.error}`);
      const ok = m.specifier.startsWith(`file://${FUNCTIONS}/`) || m.specifier.startsWith("npm:") ||
        m.specifier.startsWith("node:") || m.specifier.startsWith("https://registry.npmjs.org/");
      assert(ok, `${name} reaches ${m.specifier}, which the hosted runtime would not have`);
    }
    for (const m of local) {
      const path = decodeURIComponent(new URL(m.specifier).pathname);
      const text = await Deno.readTextFile(path);
      for (const pattern of FORBIDDEN) {
        assert(!pattern.test(text), `${path} uses ${pattern.exec(text)?.[0]}, which Edge Runtime does not allow`);
      }
    }
    const index = await Deno.readTextFile(entry);
    assert(/Deno\.serve\(/.test(index), `${name}/index.ts must serve with Deno.serve`);
  });

  Deno.test(`${name}: its entry point type-checks on its own`, async () => {
    const out = await new Deno.Command(Deno.execPath(), {
      args: ["check", entry],
      cwd: ROOT,
      stdout: "piped",
      stderr: "piped",
    }).output();
    assert(out.success, new TextDecoder().decode(out.stderr));
  });
}
