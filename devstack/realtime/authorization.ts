/**
 * Private-channel authorization against the real database (supabase-platform.md §3.2): probe rows in
 * realtime.messages are inserted, the request role and JWT claims are set with set_config(..., true), the rows are
 * read (or written) as that role under the project's RLS policies, and everything is rolled back.
 */
import type postgres from "postgres";
import type { Claims } from "./auth.ts";

/** Who asks for which topic: the sub-topic (without `realtime:`), the verified claims and the request headers. */
export interface AuthContext {
  topic: string;
  claims: Claims;
  headers: Record<string, string>;
}

/** Read permissions found by the join probe. */
export interface ReadPolicies {
  broadcast: boolean;
  presence: boolean;
}

/** Postgres error code for a failed RLS or privilege check. */
const INSUFFICIENT_PRIVILEGE = "42501";

/**
 * Runs the read probe of §3.2. A policy that errors counts as "not allowed" (the server logs RlsPolicyError and
 * answers Unauthorized).
 * @throws when the database cannot be reached.
 */
export async function probeRead(
  sql: postgres.Sql,
  ctx: AuthContext,
  opts: { presence: boolean; log: (msg: string) => void },
): Promise<ReadPolicies> {
  const extensions = opts.presence ? ["broadcast", "presence"] : ["broadcast"];
  return await inRolledBackTransaction(sql, async (tx) => {
    const probes = await tx<{ id: string; extension: string }[]>`
      insert into realtime.messages (topic, extension)
      select ${ctx.topic}, unnest(${tx.array(extensions)}::text[])
      returning id, extension`;
    try {
      await setRequestContext(tx, ctx);
      const visible = await tx<{ extension: string }[]>`
        select extension from realtime.messages
        where topic = ${ctx.topic} and id = any(${tx.array(probes.map((p) => p.id))}::uuid[])`;
      const seen = new Set(visible.map((r) => r.extension));
      return { broadcast: seen.has("broadcast"), presence: seen.has("presence") };
    } catch (err) {
      if (!isPostgresError(err)) throw err;
      opts.log(`RlsPolicyError on topic ${ctx.topic}: ${err.message}`);
      return { broadcast: false, presence: false };
    }
  });
}

/**
 * Runs the write probe of §3.2: an INSERT as the request role. True if allowed, false on insufficient privilege.
 * @throws on any other database error (the message is then dropped and the check retried next time).
 */
export async function probeWrite(sql: postgres.Sql, ctx: AuthContext): Promise<boolean> {
  return await inRolledBackTransaction(sql, async (tx) => {
    await setRequestContext(tx, ctx);
    try {
      await tx`insert into realtime.messages (topic, extension) values (${ctx.topic}, 'broadcast')`;
      return true;
    } catch (err) {
      if (isPostgresError(err) && err.code === INSUFFICIENT_PRIVILEGE) return false;
      throw err;
    }
  });
}

/** §3.2 step 2, plus request.jwt.claim.sub / .role read by auth.uid() and auth.role() (§7). */
async function setRequestContext(tx: postgres.Sql, ctx: AuthContext): Promise<void> {
  const { role, sub } = ctx.claims;
  await tx`select
    set_config('role', ${role}, true),
    set_config('realtime.topic', ${ctx.topic}, true),
    set_config('request.jwt.claims', ${JSON.stringify(ctx.claims)}, true),
    set_config('request.jwt.claim.sub', ${typeof sub === "string" ? sub : ""}, true),
    set_config('request.jwt.claim.role', ${role}, true),
    set_config('request.headers', ${JSON.stringify(ctx.headers)}, true)`;
}

/** Runs `fn` in a transaction on a reserved connection and always rolls back (§3.2 step 4). */
async function inRolledBackTransaction<T>(sql: postgres.Sql, fn: (tx: postgres.Sql) => Promise<T>): Promise<T> {
  const conn = await sql.reserve();
  try {
    await conn`begin`;
    return await fn(conn);
  } finally {
    try {
      await conn`rollback`;
    } finally {
      conn.release();
    }
  }
}

function isPostgresError(err: unknown): err is postgres.PostgresError {
  return err instanceof Error && err.name === "PostgresError";
}
