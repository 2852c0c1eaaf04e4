/**
 * `.env.example` lists exactly the settings the code reads: the keys of the two zod settings schemas (functions
 * and local stack) plus the few platform values read directly with Deno.env.get.
 */
import assert from "node:assert/strict";
import { settingsSchema } from "../supabase/functions/_shared/env.ts";
import { loadStackSettings, stackSettingsSchema } from "../devstack/settings.ts";
import { parseDotEnv } from "../devstack/dotenv.ts";

const ROOT = new URL("..", import.meta.url).pathname;

function exampleKeys(): Set<string> {
  const text = Deno.readTextFileSync(`${ROOT}.env.example`);
  const keys = [...text.matchAll(/^#?\s*([A-Z][A-Z0-9_]*)=/gm)].map((m) => m[1]);
  return new Set(keys);
}

function sourceFiles(dir: string): string[] {
  const out: string[] = [];
  for (const e of Deno.readDirSync(dir)) {
    const path = `${dir}/${e.name}`;
    if (e.isDirectory && e.name !== "testing" && e.name !== "tests") out.push(...sourceFiles(path));
    else if (
      e.isFile && e.name.endsWith(".ts") && !e.name.endsWith("_test.ts") && !e.name.startsWith("_test") &&
      e.name !== "test_runner.ts" // tooling: reads PATH to run node, not a setting
    ) {
      out.push(path);
    }
  }
  return out;
}

function keysReadDirectly(): Set<string> {
  const keys = new Set<string>();
  for (const dir of ["supabase/functions", "devstack"]) {
    for (const file of sourceFiles(`${ROOT}${dir}`)) {
      for (const m of Deno.readTextFileSync(file).matchAll(/Deno\.env\.get\("([A-Z0-9_]+)"\)/g)) keys.add(m[1]);
    }
  }
  return keys;
}

Deno.test(".env.example lists exactly the settings the code reads", () => {
  const code = new Set([
    ...Object.keys(settingsSchema.shape),
    ...Object.keys(stackSettingsSchema.shape),
    ...keysReadDirectly(),
  ]);
  const example = exampleKeys();
  const missing = [...code].filter((k) => !example.has(k)).sort();
  const extra = [...example].filter((k) => !code.has(k)).sort();
  assert.deepEqual({ missing, extra }, { missing: [], extra: [] });
});

Deno.test(".env.example's values are valid settings", () => {
  const values = parseDotEnv(Deno.readTextFileSync(`${ROOT}.env.example`));
  const stack = loadStackSettings(values);
  assert.deepEqual(stack.API_PORT, 54321);
  assert.deepEqual(stack.DB_PORT, 54322);
});

Deno.test("a bad stack setting fails with one message listing every problem", () => {
  assert.throws(
    () => loadStackSettings({ API_PORT: "seventy", DB_PORT: "70000", JWT_SECRET: "short" }),
    (err: Error) => {
      assert(err.message.startsWith("Invalid local stack settings:"));
      for (const key of ["API_PORT", "DB_PORT", "JWT_SECRET"]) assert(err.message.includes(key), `${key} named`);
      return true;
    },
  );
});
