/** Migrations: applied in order, recorded like the Supabase CLI, applied once, all-or-nothing. */
import assert from "node:assert/strict";
import { applyMigrations, listMigrations } from "./migrate.ts";
import { adminSql } from "./testing/env.ts";

const PROJECT_MIGRATIONS = new URL("../supabase/migrations", import.meta.url).pathname;

Deno.test("every project migration is recorded once in supabase_migrations.schema_migrations", async () => {
  const sql = adminSql();
  try {
    const files = listMigrations(PROJECT_MIGRATIONS);
    assert(files.length > 0);
    const rows = await sql<{ version: string; name: string; n: number }[]>`
      select version, name, count(*) over (partition by version)::int as n
      from supabase_migrations.schema_migrations order by version`;
    for (const f of files) {
      const row = rows.find((r) => r.version === f.version);
      assert(row, `migration ${f.version}_${f.name} is not recorded`);
      assert.deepEqual(row.name, f.name);
      assert.deepEqual(row.n, 1);
    }
    assert.deepEqual(await applyMigrations(sql, PROJECT_MIGRATIONS), [], "a second run applies nothing");
  } finally {
    await sql.end();
  }
});

Deno.test("a new migration is applied once; a failing one leaves nothing behind", async () => {
  const sql = adminSql();
  const dir = await Deno.makeTempDir();
  const schema = `migrate_test_${crypto.randomUUID().slice(0, 8)}`;
  try {
    await Deno.writeTextFile(
      `${dir}/99990000000001_first.sql`,
      `create schema ${schema}; create table ${schema}.t (x int);`,
    );
    assert.deepEqual(await applyMigrations(sql, dir), ["99990000000001"]);
    assert.deepEqual(await applyMigrations(sql, dir), []);

    await Deno.writeTextFile(`${dir}/99990000000002_broken.sql`, `create table ${schema}.u (x int); select 1/0;`);
    await assert.rejects(applyMigrations(sql, dir), /99990000000002_broken\.sql failed/);
    const [u] = await sql`select to_regclass(${schema + ".u"}) as t`;
    assert.deepEqual(u.t, null, "the failing migration's first statement was rolled back");
    const recorded = await sql`select version from supabase_migrations.schema_migrations where version like '9999%'`;
    assert.deepEqual(recorded.map((r) => r.version), ["99990000000001"]);
  } finally {
    await sql.unsafe(`drop schema if exists ${schema} cascade`);
    await sql`delete from supabase_migrations.schema_migrations where version like '9999%'`;
    await sql.end();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("listMigrations refuses a file name without a timestamp", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await Deno.writeTextFile(`${dir}/init.sql`, "select 1");
    assert(
      (() => {
        try {
          listMigrations(dir);
          return false;
        } catch (err) {
          return String(err).includes("<timestamp>_<name>.sql");
        }
      })(),
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
