/**
 * Applies the platform bootstrap SQL (devstack/sql/*.sql, in filename order): what hosted Supabase provides
 * before a project's migrations run — roles, auth helpers, vault, pg_net's SQL API, the realtime schema. Every
 * file is idempotent and is applied on each start.
 */
import type { Sql } from "postgres";

const SQL_DIR = new URL("./sql/", import.meta.url);

/** Applies every bootstrap file; returns their names. */
export async function applyPlatformSql(sql: Sql): Promise<string[]> {
  const files = [...Deno.readDirSync(SQL_DIR)].filter((e) => e.isFile && e.name.endsWith(".sql")).map((e) => e.name)
    .sort();
  for (const name of files) {
    const text = await Deno.readTextFile(new URL(name, SQL_DIR));
    try {
      await sql.unsafe(text);
    } catch (err) {
      throw new Error(`Platform bootstrap ${name} failed: ${err instanceof Error ? err.message : err}`);
    }
  }
  return files;
}
