/**
 * chunk_range_read: the binary COPY parser on bytes split anywhere, and readChunkRange against the real database
 * (SUPABASE_DB_URL): RLS applies, the bounds hold, and the connection stays usable after every read.
 */
import assert from "node:assert/strict";
import postgres from "postgres";
import { copiedChunks, readChunkRange } from "./chunk_range_read.ts";
import { COPY_SIGNATURE } from "./copy_signature.ts";
import { asService } from "./db.ts";
import type { Caller } from "./auth.ts";
import { storePayload } from "./payload_store.ts";
import { storedChunks } from "./payload_read.ts";
import { concatBytes } from "./bytes.ts";

const DB_URL = Deno.env.get("SUPABASE_DB_URL");
if (!DB_URL) throw new Error("SUPABASE_DB_URL is not set: run the tests through 'npm test'");
const MiB = 1024 * 1024;
const CHUNKS = { table: "public.message_bus_chunks", key: "transaction_id" };
const user = (sub: string): Caller => ({ role: "authenticated", sub, claims: { role: "authenticated", sub } });

function int(n: number, bytes: 2 | 4): Uint8Array {
  const b = new Uint8Array(bytes);
  if (bytes === 2) new DataView(b.buffer).setInt16(0, n);
  else new DataView(b.buffer).setInt32(0, n);
  return b;
}

/** A binary COPY of (seq, data) rows, as Postgres writes it. */
function copyOf(rows: Array<[number, Uint8Array]>): Uint8Array {
  return concatBytes([
    new Uint8Array(COPY_SIGNATURE),
    int(0, 4),
    int(0, 4),
    ...rows.flatMap(([seq, data]) => [int(2, 2), int(4, 4), int(seq, 4), int(data.length, 4), data]),
    int(-1, 2),
  ]);
}

Deno.test("copiedChunks: the rows of a binary COPY, however its bytes were split", () => {
  const rows: Array<[number, Uint8Array]> = [[3, new Uint8Array([1, 2, 3])], [4, new Uint8Array(0)], [
    5,
    new Uint8Array(300).fill(7),
  ]];
  const copy = copyOf(rows);
  for (const size of [1, 2, 5, 64, copy.length]) {
    const parts: Uint8Array[] = [];
    for (let at = 0; at < copy.length; at += size) parts.push(copy.subarray(at, at + size));
    parts.splice(1, 0, new Uint8Array(0)); // an empty part changes nothing
    const got = copiedChunks(parts, "test");
    assert.deepEqual([...got.keys()], [3, 4, 5], `split every ${size}`);
    for (const [seq, data] of rows) assert.deepEqual(got.get(seq), data, `chunk ${seq}, split every ${size}`);
  }
  const whole = copiedChunks([copy], "test").get(5)!;
  assert.equal(whole.buffer, copy.buffer, "a field inside one part is a view of it, not a copy");
  assert.equal(copiedChunks([copyOf([])], "test").size, 0);
});

Deno.test("copiedChunks: malformed copies are refused", () => {
  const copy = copyOf([[0, new Uint8Array([9, 9])]]);
  assert.throws(() => copiedChunks([copy.subarray(1)], "x"), /no signature/);
  assert.throws(() => copiedChunks([copy.subarray(0, copy.length - 2)], "x"), /no trailer/);
  assert.throws(() => copiedChunks([copy.subarray(0, copy.length - 3)], "x"), /cut short/);
  assert.throws(() => copiedChunks([copy, new Uint8Array([0])], "x"), /after the trailer/);
  const oneField = concatBytes([copy.subarray(0, 19), int(1, 2), int(2, 4), new Uint8Array(2), int(-1, 2)]);
  assert.throws(() => copiedChunks([oneField], "x"), /1 fields/);
});

Deno.test("readChunkRange: the caller's chunks in range, RLS applying; the connection stays usable", async () => {
  const sql = postgres(DB_URL!, { prepare: false, max: 1, onnotice: () => {} });
  const owner = crypto.randomUUID();
  let id: string | undefined;
  try {
    const input = crypto.getRandomValues(new Uint8Array(65_536));
    const big = concatBytes(Array.from({ length: 6 * 16 }, () => input)); // 6 MiB, stored raw (no gzip on random)
    const stored = await asService(async (tx) => {
      [{ transaction_id: id }] = await tx<{ transaction_id: string }[]>`
        select transaction_id from bus.begin_message(${owner}::uuid, 'chat', 'kimi', 'm', null, null, 3600)`;
      const s = await storePayload(
        tx,
        id!,
        (async function* () {
          for (let at = 0; at < big.length; at += 65_536) yield big.subarray(at, at + 65_536);
        })(),
        10 * MiB,
      );
      await tx`select bus.complete_message(${id!}::uuid, ${s.payloadSize}, ${s.storedSize}, ${s.compression},
                 ${s.checksum}, ${s.chunkCount}, 'stop', null, null, 1, 1, '{}', ${s.storedChecksum}, ${s.lastChunk})`;
      return s;
    }, sql);
    assert.equal(stored.chunkCount, 6);
    const range = await readChunkRange(user(owner), CHUNKS, id!, 1, 4, sql);
    assert.deepEqual([...range.keys()], [1, 2, 3]);
    assert.deepEqual(range.get(2), big.subarray(2 * MiB, 3 * MiB));
    assert.equal((await readChunkRange(user(owner), CHUNKS, id!, 5, 9, sql)).size, 1, "past the last chunk: none");
    assert.equal((await readChunkRange(user(crypto.randomUUID()), CHUNKS, id!, 0, 6, sql)).size, 0, "not theirs");
    await assert.rejects(readChunkRange(user(owner), CHUNKS, `${id}'--`, 0, 1, sql), /not a transaction ID/);
    await assert.rejects(readChunkRange(user(owner), CHUNKS, id!, 2, 2, sql), /not a chunk range/);
    // Queries sent while the COPY streams, on a pool whose one connection it holds: postgres.js pipelines them onto
    // that connection, where one arriving mid-COPY failed (COPY_IN_PROGRESS: a 500 under concurrent fetches). They
    // now wait for the read to end. One query every millisecond until the read is done (bounded).
    let reading = true;
    const read = readChunkRange(user(owner), CHUNKS, id!, 0, 6, sql).finally(() => (reading = false));
    const probes: Array<Promise<unknown>> = [];
    for (let i = 0; i < 2_000 && reading; i++) {
      probes.push(sql`select 1 as one`.then((rows) => rows[0].one, (err: Error) => err.message));
      await new Promise((r) => setTimeout(r, 1));
    }
    assert.equal((await read).size, 6);
    const answers = await Promise.all(probes);
    assert.ok(answers.length > 1, `queries were sent during the read: ${answers.length}`);
    assert.deepEqual(answers.filter((a) => a !== 1), [], "every query sent during the read answered");
    const [after] = await sql<{ role: string }[]>`select current_user::text as role`;
    assert.equal(after.role, "postgres", "the caller's role ended with the read, and the connection answers");
    // Every run size reads the same bytes.
    const meta = { transaction_id: id!, checksum: stored.checksum, chunk_count: 6, compression: "none" as const };
    for (const perRead of [1, 4, 6, 10]) {
      const parts: Uint8Array[] = [];
      for await (const chunk of storedChunks(user(owner), meta, sql, "payload", perRead)) parts.push(chunk);
      assert.deepEqual(concatBytes(parts), big, `${perRead} chunks per read`);
    }
  } finally {
    if (id) await sql`delete from public.message_bus where transaction_id = ${id}::uuid`;
    await sql.end();
  }
});
