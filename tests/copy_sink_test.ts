/**
 * CopySink (supabase/functions/_shared/copy_chunk.ts) against the stack's Postgres: rows by binary COPY, one COPY
 * per MAX_ROWS rows or per burst (closed after IDLE_MS idle), every failure reported (never a hang), abort rolls
 * back the open COPY.
 */
import assert from "node:assert/strict";
import postgres from "postgres";
import { newUser, testStack } from "../devstack/testing/env.ts";
import { CopySink, FILE_CHUNKS, IDLE_MS, MAX_ROWS } from "../supabase/functions/_shared/copy_chunk.ts";
import { noDelaySocket } from "../supabase/functions/_shared/db_socket.ts";

const sql = postgres(testStack().dbUrl, { prepare: false, max: 4, onnotice: () => {}, socket: noDelaySocket } as never);

async function newFile(owner: string): Promise<string> {
  const [{ id }] = await sql`select bus.begin_file(${owner}::uuid, 'sink.bin', 'application/octet-stream', 600) as id`;
  return id;
}

const rows = (id: string) =>
  sql`select seq, data, owner_id from public.message_bus_file_chunks where file_id = ${id}::uuid order by seq`;

/** Fails after `ms` instead of hanging. */
function within<T>(ms: number, p: Promise<T>): Promise<T> {
  let timer: ReturnType<typeof setTimeout>;
  return Promise.race([p, new Promise<T>((_, r) => (timer = setTimeout(() => r(new Error(`hung for ${ms} ms`)), ms)))])
    .finally(() => clearTimeout(timer));
}

Deno.test("CopySink writes every row byte for byte, across several COPYs, with the file's owner", async () => {
  const user = await newUser();
  const id = await newFile(user.id);
  const sink = new CopySink(sql, FILE_CHUNKS, id);
  const data = Array.from({ length: MAX_ROWS + 5 }, (_, i) => new Uint8Array(1000 + i).fill(i));
  for (const [i, d] of data.entries()) await sink.write(i, d);
  await within(10_000, sink.flush());
  const stored = await rows(id);
  assert.equal(stored.length, data.length);
  for (const r of stored) {
    assert.deepEqual(new Uint8Array(r.data), data[r.seq], `row ${r.seq}`);
    assert.equal(r.owner_id, user.id);
  }
  await sql`delete from public.message_bus_files where file_id = ${id}::uuid`;
});

Deno.test("CopySink commits a burst once no row came for IDLE_MS, before flush", async () => {
  const id = await newFile((await newUser()).id);
  const sink = new CopySink(sql, FILE_CHUNKS, id);
  await sink.write(0, new Uint8Array([1, 2, 3]));
  assert.equal((await rows(id)).length, 0, "not committed while the COPY is open");
  await new Promise((r) => setTimeout(r, IDLE_MS + 300));
  assert.equal((await rows(id)).length, 1, "committed after the pause");
  await sink.write(1, new Uint8Array([4]));
  await within(10_000, sink.flush());
  assert.equal((await rows(id)).length, 2);
  await sql`delete from public.message_bus_files where file_id = ${id}::uuid`;
});

Deno.test("CopySink reports a COPY refused by the database (a file no longer being uploaded), never hangs", async () => {
  const id = await newFile((await newUser()).id);
  const sink = new CopySink(sql, FILE_CHUNKS, id);
  await sink.write(0, new Uint8Array([1]));
  // The file stops being an upload while the COPY is open: the guard trigger refuses the next row.
  await sql`update public.message_bus_files set status = 'ready', sha256 = ${"0".repeat(64)}, size_bytes = 1,
              stored_size_bytes = 1, compression = 'none', stored_checksum = ${"sha256:" + "0".repeat(64)},
              chunk_count = 1, is_text = false where file_id = ${id}::uuid`;
  await sink.write(1, new Uint8Array([2])).catch(() => {}); // the refusal may show here or at flush
  await assert.rejects(() => within(10_000, sink.flush()));
  assert.equal((await rows(id)).length, 0, "the refused COPY's rows were rolled back");
  await sql`delete from public.message_bus_files where file_id = ${id}::uuid`;
});

Deno.test("CopySink.abort() rolls back the open COPY", async () => {
  const id = await newFile((await newUser()).id);
  const sink = new CopySink(sql, FILE_CHUNKS, id);
  await sink.write(0, new Uint8Array(10_000));
  await within(10_000, sink.abort());
  assert.equal((await rows(id)).length, 0);
  await sql`delete from public.message_bus_files where file_id = ${id}::uuid`;
});

Deno.test("copy sink tests: close the database client", async () => {
  await sql.end({ timeout: 5 });
});
