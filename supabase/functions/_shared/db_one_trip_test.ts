/**
 * asCallerInOneTrip against the real database (SUPABASE_DB_URL): the statement runs as the caller (RLS applies),
 * its settings end with it, and a failing statement leaves nothing behind on the connection.
 */
import assert from "node:assert/strict";
import postgres from "postgres";
import { asCallerInOneTrip, asService } from "./db.ts";
import type { Caller } from "./auth.ts";
import { readMeta } from "./message/read.ts";

const DB_URL = Deno.env.get("SUPABASE_DB_URL");
if (!DB_URL) throw new Error("SUPABASE_DB_URL is not set: run the tests through 'npm test'");

const user = (sub: string): Caller => ({ role: "authenticated", sub, claims: { role: "authenticated", sub } });

Deno.test("asCallerInOneTrip: runs as the caller, RLS applies, and the settings end with the statement", async () => {
  // One connection, so the statements after it run on the connection it used.
  const sql = postgres(DB_URL!, { prepare: false, max: 1, onnotice: () => {} });
  const owner = crypto.randomUUID();
  let id: string | undefined;
  try {
    [{ transaction_id: id }] = await asService((tx) =>
      tx<{ transaction_id: string }[]>`
        select transaction_id from bus.begin_message(${owner}::uuid, 'chat', 'kimi', 'm', null, null, 3600)`, sql);
    const [me] = await asCallerInOneTrip<{ role: string; sub: string }>(
      user(owner),
      "select current_user::text as role, auth.uid()::text as sub",
      sql,
    );
    assert.deepEqual(me, { role: "authenticated", sub: owner });
    assert.equal((await readMeta(sql, user(owner), id))?.transaction_id, id, "the owner sees it");
    assert.equal(await readMeta(sql, user(crypto.randomUUID()), id), undefined, "another user does not");

    const [after] = await sql<{ role: string; claims: string }[]>`
      select current_user::text as role, current_setting('request.jwt.claims', true) as claims`;
    assert.equal(after.role, "postgres", "the role was local to the statement's transaction");
    assert.ok(!after.claims, `no claims left behind (${after.claims})`);

    await assert.rejects(asCallerInOneTrip(user(owner), "select 1/0", sql), /division by zero/);
    const [clean] = await sql<{ role: string }[]>`select current_user::text as role`;
    assert.equal(clean.role, "postgres", "a failed statement rolls the whole query back");
    await assert.rejects(readMeta(sql, user(owner), `${id}' or true --`), /not a transaction ID/);
  } finally {
    if (id) await sql`delete from public.message_bus where transaction_id = ${id}::uuid`;
    await sql.end();
  }
});
