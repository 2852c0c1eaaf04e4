/** supabase/schema.sql is the schema the migrations make (devstack/schema_dump.ts; `npm run schema` rewrites it). */
import assert from "node:assert/strict";
import { testStack } from "../devstack/testing/env.ts";
import { dumpSchema, SCHEMA_FILE } from "../devstack/schema_dump.ts";

Deno.test("supabase/schema.sql is the current schema of public and bus after all migrations", async () => {
  const actual = await dumpSchema(testStack().dbUrl);
  const committed = await Deno.readTextFile(SCHEMA_FILE);
  if (actual === committed) return;
  const a = actual.split("\n"), c = committed.split("\n");
  const at = a.findIndex((line, i) => line !== c[i]);
  assert.fail(
    `supabase/schema.sql is out of date (run \`npm run schema\`); first difference at line ${at + 1}:\n` +
      `  committed: ${JSON.stringify(c[at])}\n  actual:    ${JSON.stringify(a[at])}`,
  );
});
