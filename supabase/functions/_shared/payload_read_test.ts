/**
 * storedChunks + verifiedPayload against the real database (SUPABASE_DB_URL): payloads are stored with
 * storePayload and committed as the service role, then read back as their owner (RLS applies), as identity and as
 * gzip passthrough, and verified. Corrupted or mislabelled data must make the stream fail, never end normally.
 */
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { gunzipSync, gzipSync } from "node:zlib";
import postgres from "postgres";
import { asService, type Sql } from "./db.ts";
import type { Caller } from "./auth.ts";
import { storePayload } from "./payload_store.ts";
import {
  ChecksumMismatchError,
  copiedBytea,
  COPY_SIGNATURE,
  decodeProven,
  MissingChunkError,
  readChunk,
  storedChunks,
  type StoredMeta,
  verifiedPayload,
} from "./payload_read.ts";
import { concatBytes } from "./bytes.ts";
import { type ExpectedLines, expectLogged } from "./_expect_logged.ts";

const DB_URL = Deno.env.get("SUPABASE_DB_URL");
if (!DB_URL) throw new Error("SUPABASE_DB_URL is not set: run the tests through 'npm test'");
const MiB = 1024 * 1024;

const sha256 = (b: Uint8Array) => `sha256:${createHash("sha256").update(b).digest("hex")}`;

function userCaller(sub: string): Caller {
  return { role: "authenticated", sub, claims: { role: "authenticated", sub } };
}

async function* pieces(bytes: Uint8Array, size = 65_536): AsyncGenerator<Uint8Array> {
  for (let at = 0; at < bytes.length; at += size) yield bytes.slice(at, at + size);
}

function randomBytes(n: number): Uint8Array {
  const out = new Uint8Array(n);
  for (let at = 0; at < n; at += 65_536) crypto.getRandomValues(out.subarray(at, Math.min(n, at + 65_536)));
  return out;
}

/** JSON-like text that gzip shrinks to about a third (so large inputs span several gzip chunks). */
function compressibleText(n: number): Uint8Array {
  let x = 11;
  let s = "";
  while (s.length < n) {
    x = (x * 1103515245 + 12345) & 0x7fffffff;
    s += `{"k":"v${x}","ü":"漢${x % 97}"},`;
  }
  return new TextEncoder().encode(s).slice(0, n);
}

async function collect(source: AsyncIterable<Uint8Array>): Promise<Uint8Array> {
  const parts: Uint8Array[] = [];
  for await (const p of source) parts.push(p);
  return new Uint8Array(concatBytes(parts)); // a plain Uint8Array, whatever the parts are (Buffer from postgres.js)
}

interface Stored {
  owner: string;
  meta: StoredMeta;
  storedBytes: Uint8Array;
  storedChecksum: string;
  payloadSize: number;
}

/** `s.meta` as message-fetch sees it once the watcher has proven the decode (its stored digest and raw size too). */
const proven = (s: Stored): StoredMeta => ({
  ...s.meta,
  stored_checksum: s.storedChecksum,
  payload_size_bytes: s.payloadSize,
  decode_proven: true,
});

/** Stores `input` for a new owner and commits it as a completed message. */
async function storeCommitted(sql: Sql, input: Uint8Array): Promise<Stored> {
  const owner = crypto.randomUUID();
  return await asService(async (tx) => {
    const [{ transaction_id: id }] = await tx<{ transaction_id: string }[]>`
      select transaction_id from bus.begin_message(${owner}::uuid, 'chat', 'kimi', 'm', null, null, 3600)`;
    const s = await storePayload(tx, id, pieces(input), 200 * MiB);
    await tx`select bus.complete_message(${id}::uuid, ${s.payloadSize}, ${s.storedSize}, ${s.compression},
               ${s.checksum}, ${s.chunkCount}, 'stop', null, null, 1, 1, '{}', ${s.storedChecksum}, ${s.lastChunk})`;
    const rows = await tx<{ data: Uint8Array }[]>`
      select data from public.message_bus_chunks where transaction_id = ${id}::uuid order by seq`;
    return {
      owner,
      meta: { transaction_id: id, checksum: s.checksum, chunk_count: s.chunkCount, compression: s.compression },
      storedBytes: concatBytes(rows.map((r) => new Uint8Array(r.data))),
      storedChecksum: s.storedChecksum,
      payloadSize: s.payloadSize,
    };
  }, sql);
}

/**
 * Runs `fn` with a database client and messages that are deleted afterwards; `logged` are the lines payload_read
 * is expected to log meanwhile (asserted, not printed).
 */
async function withMessages(
  fn: (sql: Sql, store: (input: Uint8Array) => Promise<Stored>) => Promise<void>,
  logged: ExpectedLines = {},
) {
  await expectLogged(logged, () => withMessagesUnlogged(fn));
}

async function withMessagesUnlogged(fn: (sql: Sql, store: (input: Uint8Array) => Promise<Stored>) => Promise<void>) {
  const sql = postgres(DB_URL!, { prepare: false, max: 3, onnotice: () => {} });
  const ids: string[] = [];
  try {
    await fn(sql, async (input) => {
      const s = await storeCommitted(sql, input);
      ids.push(s.meta.transaction_id);
      return s;
    });
  } finally {
    if (ids.length) await sql`delete from public.message_bus where transaction_id = any(${ids}::uuid[])`;
    await sql.end();
  }
}

// What payload_read logs on purpose when stored data is bad: the mismatch (a streamed answer only breaks off, so the
// log is where operators see why), and reads still in flight when a failed stream stops (their timing varies).
const MISMATCH = (read: string) =>
  new RegExp(`^Checksum mismatch for [0-9a-f-]{36}: stored sha256:[0-9a-f]{64}, read ${read}$`);
const IN_FLIGHT = [
  /^read-ahead of [0-9a-f-]{36} after the consumer stopped: /,
  /^reading stored chunks after the gunzip stopped: /,
];

const read = (sql: Sql, s: Stored, encoding: "identity" | "gzip", meta = s.meta, caller = userCaller(s.owner)) =>
  collect(verifiedPayload(meta, storedChunks(caller, meta, sql), encoding));

Deno.test("payload_read: a raw payload over several chunks reads back byte for byte as its owner", async () => {
  await withMessages(async (sql, store) => {
    const input = randomBytes(2.5 * MiB);
    const s = await store(input);
    assert.equal(s.meta.compression, "none");
    assert.equal(s.meta.chunk_count, 3);
    assert.deepEqual(await read(sql, s, "identity"), input);
    assert.deepEqual(await read(sql, s, "gzip"), input, "raw payloads are served raw even to gzip clients");
  });
});

Deno.test("payload_read: gzip payloads decode to the same bytes, and pass through as the stored gzip", async () => {
  await withMessages(async (sql, store) => {
    for (const input of [compressibleText(20_000), compressibleText(6 * MiB)]) {
      const s = await store(input);
      assert.equal(s.meta.compression, "gzip");
      const identity = await read(sql, s, "identity");
      assert.equal(sha256(identity), s.meta.checksum);
      assert.deepEqual(identity, input);
      const gz = await read(sql, s, "gzip");
      assert.deepEqual(gz, s.storedBytes, "gzip passthrough serves the stored bytes unchanged");
      assert.equal(sha256(new Uint8Array(gunzipSync(gz))), s.meta.checksum, "the passthrough decodes to the checksum");
    }
    const multi = await store(compressibleText(6 * MiB));
    assert.ok(multi.meta.chunk_count >= 2, `gzip spans chunks (${multi.meta.chunk_count})`);
  });
});

Deno.test("payload_read: a corrupted raw chunk fails the stream with ChecksumMismatchError", async () => {
  await withMessages(async (sql, store) => {
    const input = randomBytes(1.5 * MiB);
    const s = await store(input);
    await sql`update public.message_bus_chunks set data = set_byte(data, 1000, (get_byte(data, 1000) + 1) % 256)
              where transaction_id = ${s.meta.transaction_id}::uuid and seq = 1`;
    const received: Uint8Array[] = [];
    const error = await (async () => {
      for await (const p of verifiedPayload(s.meta, storedChunks(userCaller(s.owner), s.meta, sql), "identity")) {
        received.push(p);
      }
    })().then(() => assert.fail("the stream must not end normally"), (err: unknown) => err);
    assert.ok(error instanceof ChecksumMismatchError, `ChecksumMismatchError, got ${error}`);
    assert.equal(error.expected, s.meta.checksum);
    assert.match(error.actual, /^sha256:[0-9a-f]{64}$/);
    assert.notEqual(error.actual, error.expected);
    assert.equal(error.transactionId, s.meta.transaction_id);
    const passedOn = received.reduce((n, p) => n + p.length, 0);
    assert.ok(passedOn > 0 && passedOn < input.length, `the last piece is held back (${passedOn} of ${input.length})`);
  }, { must: [MISMATCH("sha256:[0-9a-f]{64}")], may: IN_FLIGHT });
});

Deno.test("payload_read: a wrong checksum on gzip data fails identity and passthrough streams", async () => {
  await withMessages(async (sql, store) => {
    for (const input of [compressibleText(50_000), compressibleText(5 * MiB)]) {
      const s = await store(input);
      const wrong = { ...s.meta, checksum: `sha256:${"0".repeat(64)}` };
      for (const encoding of ["identity", "gzip"] as const) {
        await assert.rejects(
          read(sql, s, encoding, wrong),
          ChecksumMismatchError,
          `${encoding}, ${input.length} bytes`,
        );
      }
    }
  }, { must: [MISMATCH("sha256:[0-9a-f]{64}")], may: IN_FLIGHT });
});

Deno.test("payload_read: corrupted gzip bytes fail the stream (identity and passthrough)", async () => {
  await withMessages(async (sql, store) => {
    const s = await store(compressibleText(5 * MiB));
    // Break the deflate data in the middle of chunk 0 (past the 10-byte gzip header).
    await sql`update public.message_bus_chunks set data = overlay(data placing '\\xffffffffffffffff'::bytea from 5000)
              where transaction_id = ${s.meta.transaction_id}::uuid and seq = 0`;
    // Decoding it (for the identity answer, or on the side to verify a passthrough) names it an integrity failure.
    for (const encoding of ["identity", "gzip"] as const) {
      await assert.rejects(read(sql, s, encoding), ChecksumMismatchError, `${encoding}: undecodable gzip`);
    }
  }, { must: [MISMATCH("undecodable gzip \\(Z_DATA_ERROR\\)")], may: IN_FLIGHT });
});

Deno.test("decodeProven(): only an observation without a checksum_mismatch finding proves the decode", () => {
  assert.equal(decodeProven(null), false, "not observed yet");
  assert.equal(decodeProven(undefined), false);
  assert.equal(decodeProven({ findings: [] }), true);
  assert.equal(decodeProven({ findings: [{ code: "truncated" }, { code: "partial_analysis" }] }), true);
  assert.equal(decodeProven({ findings: [{ code: "partial_analysis" }, { code: "checksum_mismatch" }] }), false);
});

Deno.test("payload_read: once the decode is proven, gzip decodes to the same bytes, verified by the stored digest", async () => {
  await withMessages(async (sql, store) => {
    // One chunk (decoded in one call) and several (streamed through zlib).
    for (const input of [compressibleText(20_000), compressibleText(6 * MiB)]) {
      const s = await store(input);
      assert.equal(s.meta.compression, "gzip");
      const identity = await read(sql, s, "identity", proven(s));
      assert.deepEqual(identity, input);
      assert.deepEqual(await read(sql, s, "gzip", proven(s)), s.storedBytes);
    }
  });
});

Deno.test("payload_read: once the decode is proven, a changed stored byte that gzip cannot see still fails", async () => {
  await withMessages(async (sql, store) => {
    for (const input of [compressibleText(20_000), compressibleText(6 * MiB)]) {
      const s = await store(input);
      // Byte 4 of a gzip stream is part of its MTIME: zlib ignores it, so the bytes still decode to the payload,
      // and only the digest of the stored bytes shows that they are not the bytes stored.
      await sql`update public.message_bus_chunks set data = set_byte(data, 4, (get_byte(data, 4) + 1) % 256)
                where transaction_id = ${s.meta.transaction_id}::uuid and seq = 0`;
      const received: Uint8Array[] = [];
      const error = await (async () => {
        for await (const p of verifiedPayload(proven(s), storedChunks(userCaller(s.owner), s.meta, sql), "identity")) {
          received.push(p);
        }
      })().then(() => assert.fail("the stream must not end normally"), (err: unknown) => err);
      assert.ok(error instanceof ChecksumMismatchError, `ChecksumMismatchError, got ${error}`);
      assert.equal(error.expected, s.storedChecksum, "verified against the stored bytes' digest");
      assert.match(error.actual, /^sha256:[0-9a-f]{64}$/);
      assert.notEqual(error.actual, error.expected);
      const passedOn = received.reduce((n, p) => n + p.length, 0);
      assert.ok(passedOn < input.length, `the last piece is held back (${passedOn} of ${input.length})`);
      if (s.meta.chunk_count > 1) assert.ok(passedOn > 0, "a long payload streams before the end is verified");
      // Without the proof, the decoded bytes are hashed instead: they are the payload, so they are served.
      assert.deepEqual(await read(sql, s, "identity"), input);
    }
  }, { must: [MISMATCH("sha256:[0-9a-f]{64}")], may: IN_FLIGHT });
});

Deno.test("payload_read: once the decode is proven, undecodable gzip, a wrong digest or a wrong size fail", async () => {
  await withMessages(async (sql, store) => {
    for (const input of [compressibleText(50_000), compressibleText(5 * MiB)]) {
      const s = await store(input);
      const what = `${input.length} bytes`;
      await assert.rejects(
        read(sql, s, "identity", { ...proven(s), stored_checksum: `sha256:${"0".repeat(64)}` }),
        (err) => err instanceof ChecksumMismatchError && err.expected === `sha256:${"0".repeat(64)}`,
        `wrong stored digest, ${what}`,
      );
      await assert.rejects(
        read(sql, s, "identity", { ...proven(s), payload_size_bytes: input.length + 1 }),
        (err) => err instanceof ChecksumMismatchError && err.actual === `${input.length} bytes decoded`,
        `wrong size, ${what}`,
      );
      // The deflate data broken in the middle of chunk 0: zlib refuses it.
      await sql`update public.message_bus_chunks set data = overlay(data placing '\\xffffffffffffffff'::bytea from 5000)
                where transaction_id = ${s.meta.transaction_id}::uuid and seq = 0`;
      await assert.rejects(read(sql, s, "identity", proven(s)), ChecksumMismatchError, `undecodable, ${what}`);
    }
  }, {
    must: [
      MISMATCH("sha256:[0-9a-f]{64}"),
      MISMATCH("\\d+ bytes decoded"),
      MISMATCH("undecodable gzip \\(Z_DATA_ERROR\\)"),
    ],
    may: IN_FLIGHT,
  });
});

Deno.test("payload_read: a chunk missing in the middle of gzip fails the decoded stream with that error", async () => {
  await withMessages(async (sql, store) => {
    const s = await store(compressibleText(12 * MiB));
    assert.equal(s.meta.compression, "gzip");
    assert.ok(s.meta.chunk_count >= 3, `${s.meta.chunk_count} chunks`);
    await sql`delete from public.message_bus_chunks where transaction_id = ${s.meta.transaction_id}::uuid and seq = 1`;
    await assert.rejects(read(sql, s, "identity"), MissingChunkError, "Chunk 1 of");
  }, { may: IN_FLIGHT });
});

Deno.test("payload_read: RLS hides another owner's chunks; a missing chunk fails the stream", async () => {
  await withMessages(async (sql, store) => {
    const s = await store(randomBytes(2 * MiB + 10));
    await assert.rejects(read(sql, s, "identity", s.meta, userCaller(crypto.randomUUID())), /Chunk 0 of .* is missing/);
    await assert.rejects(
      read(sql, s, "identity", s.meta, { role: "anon", claims: { role: "anon" } }),
      /permission denied/,
    );
    await sql`delete from public.message_bus_chunks where transaction_id = ${s.meta.transaction_id}::uuid and seq = 2`;
    await assert.rejects(read(sql, s, "identity"), /Chunk 2 of .* is missing/);
  }, { may: IN_FLIGHT });
});

Deno.test("payload_read: a consumer that stops early leaves no dangling verification behind", async () => {
  const input = compressibleText(300_000);
  const gz = new Uint8Array(gzipSync(input));
  const meta: StoredMeta = {
    transaction_id: "early-stop",
    checksum: sha256(input),
    chunk_count: 2,
    compression: "gzip",
  };
  for (const encoding of ["identity", "gzip"] as const) {
    let closed = false;
    const source = (async function* () {
      try {
        yield gz.slice(0, 1000);
        yield gz.slice(1000);
      } finally {
        closed = true;
      }
    })();
    for await (const part of verifiedPayload(meta, source, encoding)) {
      assert.ok(part.length > 0);
      break;
    }
    assert.ok(closed, `${encoding}: the source (the chunk reads) is closed when the consumer stops`);
  }
});

Deno.test("readChunk: binary COPY reads leave the connection usable, whatever the chunk size", async () => {
  await withMessages(async (_sql, store) => {
    // Sizes that fit in one socket read and sizes that span many: one of the first kind wedged the connection
    // before readChunk resumed postgres.js's socket (porsager/postgres#499).
    const stored: { size: number; s: Stored }[] = [];
    for (const size of [10, 70_000, 200_000, MiB]) stored.push({ size, s: await store(randomBytes(size)) });
    const single = postgres(DB_URL!, { prepare: false, max: 1, onnotice: () => {} }); // every read on one connection
    let timer: ReturnType<typeof setTimeout> | undefined;
    try {
      const reads = (async () => {
        for (let round = 0; round < 3; round++) {
          for (const { size, s } of stored) {
            const data: Uint8Array | undefined = await asService(
              (tx) => readChunk(tx, s.meta.transaction_id, 0),
              single,
            );
            assert.deepEqual(data?.length, size);
            assert.deepEqual(sha256(data!), sha256(s.storedBytes));
            assert.deepEqual(await asService((tx) => readChunk(tx, s.meta.transaction_id, 1), single), undefined);
          }
        }
        return (await single`select 1 as one`)[0].one;
      })();
      const hung = new Promise((_, reject) => {
        timer = setTimeout(() => reject(new Error("a read after a COPY hung")), 20_000);
      });
      assert.deepEqual(await Promise.race([reads, hung]), 1);
    } finally {
      clearTimeout(timer);
      await single.end({ timeout: 1 });
    }
  });
});

Deno.test("readChunk: refuses an ID that is not a UUID before it reaches the statement", async () => {
  await withMessages(async (sql) => {
    await assert.rejects(
      asService((tx) => readChunk(tx, "x' or true) to stdout; --", 0), sql),
      /not a transaction ID/,
    );
  });
});

Deno.test("copiedBytea: the field of a binary COPY; no row; malformed input", () => {
  const field = randomBytes(5000);
  const header = new Uint8Array([...COPY_SIGNATURE, 0, 0, 0, 0, 0, 0, 0, 0]); // no flags, no header extension
  const row = new Uint8Array(6 + field.length);
  new DataView(row.buffer).setInt16(0, 1);
  new DataView(row.buffer).setInt32(2, field.length);
  row.set(field, 6);
  const trailer = new Uint8Array([0xff, 0xff]);
  const id = "01890000-0000-7000-8000-000000000001";
  assert.deepEqual(copiedBytea(concatBytes([header, row, trailer]), id, 0), field);
  assert.deepEqual(copiedBytea(concatBytes([header, trailer]), id, 0), undefined);
  assert.throws(() => copiedBytea(concatBytes([header, row, trailer]).slice(1), id, 0), /no signature/);
  assert.throws(() => copiedBytea(concatBytes([header, row]), id, 0), /not one bytea row/);
  const twoFields = new Uint8Array(row);
  new DataView(twoFields.buffer).setInt16(0, 2);
  assert.throws(() => copiedBytea(concatBytes([header, twoFields, trailer]), id, 0), /2 fields/);
});
