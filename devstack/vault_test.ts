/** The local Vault stand-in: secrets read back through vault.decrypted_secrets, service role only. */
import assert from "node:assert/strict";
import { adminSql } from "./testing/env.ts";

Deno.test("vault.create_secret and update_secret read back through vault.decrypted_secrets", async () => {
  const sql = adminSql();
  const name = `test_secret_${crypto.randomUUID()}`;
  try {
    const [{ id }] = await sql`select vault.create_secret('s3cret value', ${name}, 'a test secret') as id`;
    let [row] = await sql`select name, description, decrypted_secret from vault.decrypted_secrets where id = ${id}`;
    assert.deepEqual(row, { name, description: "a test secret", decrypted_secret: "s3cret value" });
    await sql`select vault.update_secret(${id}, 'new value')`;
    [row] = await sql`select decrypted_secret from vault.decrypted_secrets where name = ${name}`;
    assert.deepEqual(row.decrypted_secret, "new value");
    await assert.rejects(sql`select vault.create_secret('dup', ${name})`, /duplicate key/);
  } finally {
    await sql`delete from vault.secrets where name = ${name}`;
    await sql.end();
  }
});

Deno.test("the stack stores project_url and service_role_key in vault for triggers and cron", async () => {
  const sql = adminSql();
  try {
    const rows = await sql<{ name: string; decrypted_secret: string }[]>`
      select name, decrypted_secret from vault.decrypted_secrets where name in ('project_url', 'service_role_key')
      order by name`;
    assert.deepEqual(rows.map((r) => r.name), ["project_url", "service_role_key"]);
    assert.deepEqual(rows[0].decrypted_secret, Deno.env.get("SUPABASE_URL"));
    assert.deepEqual(rows[1].decrypted_secret, Deno.env.get("SUPABASE_SERVICE_ROLE_KEY"));
  } finally {
    await sql.end();
  }
});

Deno.test("authenticated users cannot read vault secrets", async () => {
  const sql = adminSql();
  try {
    await assert.rejects(
      sql.begin(async (tx) => {
        await tx`select set_config('role', 'authenticated', true)`;
        await tx`select decrypted_secret from vault.decrypted_secrets`;
      }),
      /permission denied/,
    );
  } finally {
    await sql.end();
  }
});
