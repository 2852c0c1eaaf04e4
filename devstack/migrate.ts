/**
 * Applies `supabase/migrations/*.sql` in filename order and records each in
 * `supabase_migrations.schema_migrations` the way the Supabase CLI does (version = the filename's timestamp
 * prefix, name = the rest, statements = the file's text). A later start applies only new files. Each migration
 * runs in its own transaction, so a failing one leaves nothing half-applied.
 */
import type { Sql } from "postgres";

export interface MigrationFile {
  version: string;
  name: string;
  path: string;
}

const FILE_PATTERN = /^(\d+)_(.+)\.sql$/;

/** Lists the migration files of `dir`, sorted by version. */
export function listMigrations(dir: string): MigrationFile[] {
  const files: MigrationFile[] = [];
  for (const entry of Deno.readDirSync(dir)) {
    if (!entry.isFile || !entry.name.endsWith(".sql")) continue;
    const match = FILE_PATTERN.exec(entry.name);
    if (!match) throw new Error(`Migration file name must be <timestamp>_<name>.sql, got ${entry.name}`);
    files.push({ version: match[1], name: match[2], path: `${dir}/${entry.name}` });
  }
  return files.sort((a, b) => a.version.localeCompare(b.version));
}

/** Applies the migrations not yet recorded; returns the versions applied now. */
export async function applyMigrations(sql: Sql, dir: string): Promise<string[]> {
  const applied = new Set(
    (await sql<{ version: string }[]>`select version from supabase_migrations.schema_migrations`).map((r) => r.version),
  );
  const done: string[] = [];
  for (const m of listMigrations(dir)) {
    if (applied.has(m.version)) continue;
    const text = await Deno.readTextFile(m.path);
    try {
      await sql.begin(async (tx) => {
        await tx.unsafe(text);
        await tx`insert into supabase_migrations.schema_migrations (version, name, statements)
                 values (${m.version}, ${m.name}, ${[text]})`;
      });
    } catch (err) {
      throw new Error(`Migration ${m.version}_${m.name}.sql failed: ${err instanceof Error ? err.message : err}`);
    }
    done.push(m.version);
  }
  return done;
}
