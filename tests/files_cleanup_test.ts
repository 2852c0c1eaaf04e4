/**
 * Expiry and cleanup of files (CONTRACT.md §13, §8): a file past its expiry answers 410 and is deleted by cleanup,
 * unless a message that used it has not expired yet (then it is kept, and still served, until that message
 * expires); uploads that stopped are dropped; the provider's copies of deleted files are deleted at the provider.
 */
import assert from "node:assert/strict";
import { adminSql, newUser, testStack } from "../devstack/testing/env.ts";
import { invoke, MODEL } from "./claim_check_helpers.ts";
import { post } from "./watch_helpers.ts";
import { deleteFile, getFile, standinFiles, upload } from "./files_helpers.ts";

const sql = adminSql();

async function cleanupNow() {
  const res = await post("cleanup", testStack().serviceRoleKey);
  assert.equal(res.status, 200, JSON.stringify(res.json));
  return res.json;
}

async function status(token: string, id: string): Promise<number> {
  const res = await getFile(token, id);
  await res.body?.cancel();
  return res.status;
}

const chat = (provider: string, files: string[]) => ({
  tool: "chat",
  provider,
  model: MODEL,
  input: { messages: [{ role: "user", content: `cleanup ${crypto.randomUUID()}` }], files },
});

Deno.test("an expired file is kept while a message that used it lives, then deleted with its chunks", async () => {
  const user = await newUser();
  const used = (await upload(user.token, `used ${crypto.randomUUID()}\n`.repeat(100_000), "used.txt")).json;
  const unused = (await upload(user.token, `unused ${crypto.randomUUID()}`, "unused.txt")).json;
  const res = await invoke(user.token, chat("glm", [used.file_id]));
  assert.equal(res.status, 200, JSON.stringify(res.json));
  const message = res.json.transaction_id;
  await sql`update public.message_bus_files set expires_at = now() - interval '1 minute'
             where file_id in (${used.file_id}::uuid, ${unused.file_id}::uuid)`;

  assert.equal(await status(user.token, unused.file_id), 410, "410 once expired, before any cleanup");
  assert.equal(await status(user.token, used.file_id), 200, "kept: a live message used it");
  const counts = await cleanupNow();
  assert.ok(counts.files_deleted >= 1, JSON.stringify(counts));
  assert.equal(await status(user.token, unused.file_id), 404);
  assert.equal(await status(user.token, used.file_id), 200, "still kept after cleanup");
  // A replay of the message (the same files) still works while the message lives.
  assert.equal((await invoke(user.token, chat("glm", [used.file_id]))).status, 200);

  // Once every message that used it has expired, the file goes at the next cleanup, chunks and references too.
  await sql`update public.message_bus set expires_at = now() - interval '1 minute' where owner_id = ${user.id}::uuid`;
  assert.equal(await status(user.token, used.file_id), 410);
  const later = await cleanupNow();
  assert.ok(later.files_deleted >= 1 && later.file_chunks_deleted >= 1, JSON.stringify(later));
  assert.equal(await status(user.token, used.file_id), 404);
  const [left] = await sql`
    select (select count(*)::int from public.message_bus_file_chunks where file_id = ${used.file_id}::uuid) as chunks,
           (select count(*)::int from bus.message_files where file_id = ${used.file_id}::uuid) as refs`;
  assert.deepEqual(left, { chunks: 0, refs: 0 });
  const [row] = await sql`select files from public.message_bus where transaction_id = ${message}::uuid`;
  assert.equal(row.files[0].file_id, used.file_id, "the message's record of its files stays for the audit trail");
});

Deno.test("cleanup drops uploads that stopped an hour ago, not ones in progress", async () => {
  const user = await newUser();
  const [{ stale }] = await sql`select bus.begin_file(${user.id}::uuid, 'stale.bin', 'x', 3600) as stale`;
  const [{ fresh }] = await sql`select bus.begin_file(${user.id}::uuid, 'fresh.bin', 'x', 3600) as fresh`;
  await sql`insert into public.message_bus_file_chunks (file_id, seq, data) values (${stale}::uuid, 0, '\\x00')`;
  await sql`update public.message_bus_files set created_at = now() - interval '2 hours' where file_id = ${stale}::uuid`;
  await cleanupNow();
  const rows = await sql`select file_id from public.message_bus_files where owner_id = ${user.id}::uuid`;
  assert.deepEqual(rows.map((r) => r.file_id), [fresh]);
  await sql`delete from public.message_bus_files where file_id = ${fresh}::uuid`;
});

Deno.test("the provider's copy of a deleted file is deleted at the provider by the next cleanup", async () => {
  const user = await newUser();
  const name = `copy-${crypto.randomUUID()}.txt`;
  const file = (await upload(user.token, `extract me ${name}`, name)).json;
  assert.equal((await invoke(user.token, chat("kimi", [file.file_id]))).status, 200);
  const [copy] = await standinFiles(name);
  assert.ok(copy);
  assert.equal(await deleteFile(user.token, file.file_id), 204);
  const queued = async () =>
    (await sql`select count(*)::int as n from bus.provider_file_deletions where provider_file_id = ${copy.id}`)[0].n;
  assert.equal(await queued(), 1, "the delete queued the provider's copy");
  assert.equal((await standinFiles(name)).length, 1, "still there until cleanup");
  const counts = await cleanupNow();
  assert.ok(counts.provider_files_deleted >= 1, JSON.stringify(counts));
  assert.deepEqual(await standinFiles(name), [], "deleted at the provider");
  assert.equal(await queued(), 0, "and no longer queued");
});

Deno.test("files cleanup tests: close the database client", async () => {
  await sql.end({ timeout: 5 });
});
