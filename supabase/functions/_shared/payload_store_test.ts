/**
 * storePayload against the real database (SUPABASE_DB_URL): each case begins a message with bus.begin_message as
 * the service role, stores a payload, checks the chunks, the checksum and the compression decision, and lets
 * bus.complete_message confirm that the reported count and size match what is stored. Most cases roll their
 * transaction back, so they leave nothing behind.
 */
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { gunzipSync } from "node:zlib";
import postgres from "postgres";
import { asService, type Sql, type Tx } from "./db.ts";
import { CHUNK_SIZE, MIN_GZIP_BYTES, storedForm, storePayload } from "./payload_store.ts";
import { BusError } from "./errors.ts";
import { concatBytes } from "./bytes.ts";

const DB_URL = Deno.env.get("SUPABASE_DB_URL");
if (!DB_URL) throw new Error("SUPABASE_DB_URL is not set: run the tests through 'npm test'");
const MiB = 1024 * 1024;
const NO_LIMIT = 200 * MiB;

async function withDb<T>(fn: (sql: Sql) => Promise<T>): Promise<T> {
  const sql = postgres(DB_URL!, { prepare: false, max: 2, onnotice: () => {} });
  try {
    return await fn(sql);
  } finally {
    await sql.end();
  }
}

/** Runs `fn` as the service role on a freshly begun message, then rolls everything back. */
async function inRolledBackMessage<T>(fn: (tx: Tx, id: string) => Promise<T>): Promise<T> {
  const rollback = Symbol("rollback");
  let result: T | undefined;
  await withDb(async (sql) => {
    try {
      await asService(async (tx) => {
        const [{ transaction_id }] = await tx<{ transaction_id: string }[]>`
          select transaction_id from bus.begin_message(${crypto.randomUUID()}::uuid, 'chat', 'kimi', 'test-model',
                                                       null, null, 3600)`;
        result = await fn(tx, transaction_id);
        throw rollback;
      }, sql);
    } catch (err) {
      if (err !== rollback) throw err;
    }
  });
  return result as T;
}

const sha256 = (b: Uint8Array) => `sha256:${createHash("sha256").update(b).digest("hex")}`;

/** Yields `bytes` in pieces of the given sizes (cycled), like a network stream does. */
async function* pieces(bytes: Uint8Array, sizes = [65_536]): AsyncGenerator<Uint8Array> {
  let i = 0;
  for (let at = 0; at < bytes.length; i++) {
    const n = sizes[i % sizes.length];
    yield bytes.slice(at, at + n);
    at += n;
  }
}

function randomBytes(n: number): Uint8Array {
  const out = new Uint8Array(n);
  for (let at = 0; at < n; at += 65_536) crypto.getRandomValues(out.subarray(at, Math.min(n, at + 65_536)));
  return out;
}

/** Text that gzip shrinks to roughly a third: words from a vocabulary in a seeded random order. */
function compressibleText(n: number, seed = 7): Uint8Array {
  const words = ["claim", "check", "payload", "chunk", "übergröße", "漢字", "🙂", "provider", "gzip", "token"];
  let x = seed;
  const parts: string[] = [];
  let length = 0;
  while (length < n) {
    x = (x * 1103515245 + 12345) & 0x7fffffff;
    const w = `${words[x % words.length]}${x % 1000} `;
    parts.push(w);
    length += new TextEncoder().encode(w).length;
  }
  return new TextEncoder().encode(parts.join("")).slice(0, n);
}

async function chunksOf(tx: Tx, id: string): Promise<Uint8Array[]> {
  const rows = await tx<{ data: Uint8Array }[]>`
    select data from public.message_bus_chunks where transaction_id = ${id}::uuid order by seq`;
  return rows.map((r) => new Uint8Array(r.data));
}

/** Stores `source` inside `tx` and completes the message with what the store reports, as tool-invoke does. */
async function store(tx: Tx, id: string, source: AsyncIterable<Uint8Array>, maxBytes = NO_LIMIT) {
  const stored = await storePayload(tx, id, source, maxBytes);
  // bus.complete_message stores the last chunk, then refuses unless the reported count and size match the rows.
  const [row] = await tx<{ status: string; stored_checksum: string }[]>`
    select status, stored_checksum from bus.complete_message(${id}::uuid, ${stored.payloadSize},
      ${stored.storedSize}, ${stored.compression}, ${stored.checksum}, ${stored.chunkCount}, 'stop', null, null, 1, 1,
      '{}', ${stored.storedChecksum}, ${stored.lastChunk})`;
  assert.equal(row.status, "completed", "complete_message accepts what storePayload reports");
  assert.equal(row.stored_checksum, stored.storedChecksum);
  return stored;
}

/** Stores `input`, checks everything that must hold for any payload, and returns the result and stored chunks. */
async function storeAndCheck(input: Uint8Array, sizes?: number[]) {
  return await inRolledBackMessage(async (tx, id) => {
    const stored = await store(tx, id, pieces(input, sizes));
    const chunks = await chunksOf(tx, id);
    assert.equal(stored.payloadSize, input.length, "payloadSize is the raw size");
    assert.equal(stored.checksum, sha256(input), "checksum is sha256 over the raw bytes");
    assert.equal(stored.chunkCount, chunks.length, "chunkCount is the number of rows");
    assert.equal(stored.storedSize, chunks.reduce((n, c) => n + c.length, 0), "storedSize is the sum of the rows");
    chunks.slice(0, -1).forEach((c, i) => assert.equal(c.length, CHUNK_SIZE, `chunk ${i} is a full chunk`));
    const joined = concatBytes(chunks);
    assert.equal(stored.storedChecksum, sha256(joined), "storedChecksum is sha256 over the stored bytes");
    const last = stored.lastChunk ? new Uint8Array(stored.lastChunk) : undefined; // gzipSync answers a Buffer
    assert.deepEqual(last, chunks.at(-1), "the last chunk was stored by the completion");
    const decoded = stored.compression === "gzip" ? new Uint8Array(gunzipSync(joined)) : joined;
    assert.deepEqual(decoded, input, "the stored bytes decode to the input exactly");
    return { stored, chunks };
  });
}

Deno.test("storePayload: a small compressible payload is stored gzip in one chunk", async () => {
  const input = compressibleText(10_000);
  const { stored, chunks } = await storeAndCheck(input);
  assert.equal(stored.compression, "gzip");
  assert.equal(chunks.length, 1);
  assert.ok(
    stored.storedSize < input.length * 0.9,
    `gzip saves at least 10% (${stored.storedSize} of ${input.length})`,
  );
  assert.deepEqual([...chunks[0].subarray(0, 2)], [0x1f, 0x8b], "the stored chunk is a gzip stream");
});

Deno.test("storedForm: a compressible payload under MIN_GZIP_BYTES is stored as it is, from that size gzip", () => {
  const below = compressibleText(MIN_GZIP_BYTES - 1);
  assert.deepEqual(storedForm(below), { bytes: below, compression: "none" });
  const at = storedForm(compressibleText(MIN_GZIP_BYTES));
  assert.equal(at.compression, "gzip");
  assert.ok(at.bytes.length < MIN_GZIP_BYTES * 0.9);
});

Deno.test("storePayload: random bytes are stored as they are (gzip would not pay off)", async () => {
  const input = randomBytes(200_000);
  const { stored, chunks } = await storeAndCheck(input, [1, 4095, 100_000]);
  assert.equal(stored.compression, "none");
  assert.equal(stored.storedSize, input.length);
  assert.deepEqual(chunks[0], input);
});

Deno.test("storePayload: random bytes over several chunks are cut at exactly 1 MiB", async () => {
  const input = randomBytes(3.5 * MiB);
  const { stored, chunks } = await storeAndCheck(input, [7, 65_536, 2 * MiB + 3, 1000]);
  assert.equal(stored.compression, "none");
  assert.deepEqual(chunks.map((c) => c.length), [MiB, MiB, MiB, MiB / 2]);
});

Deno.test("storePayload: a compressible payload over several chunks is stored gzip, cut in 1 MiB chunks", async () => {
  const input = compressibleText(6 * MiB);
  const { stored, chunks } = await storeAndCheck(input, [65_536, 13]);
  assert.equal(stored.compression, "gzip");
  assert.ok(chunks.length >= 2, `the gzip output spans chunks (${stored.storedSize} bytes)`);
  assert.ok(stored.storedSize < input.length * 0.9);
});

Deno.test("storePayload: the first chunk decides compression for large payloads", async () => {
  // Random first MiB, then compressible text: stored raw, and `compression` says so.
  const input = concatBytes([randomBytes(MiB), compressibleText(MiB + 17)]);
  const { stored } = await storeAndCheck(input);
  assert.equal(stored.compression, "none");
  assert.equal(stored.storedSize, input.length);
});

Deno.test("storePayload: chunk boundaries at exactly 1 MiB and one byte more", async () => {
  const exact = await storeAndCheck(randomBytes(MiB), [MiB]);
  assert.equal(exact.stored.chunkCount, 1);
  const plusOne = await storeAndCheck(randomBytes(MiB + 1), [MiB + 1]);
  assert.deepEqual(plusOne.chunks.map((c) => c.length), [MiB, 1]);
});

Deno.test("storePayload: an empty payload has no chunks and the checksum of nothing", async () => {
  const { stored } = await storeAndCheck(new Uint8Array(0));
  assert.deepEqual(stored, {
    payloadSize: 0,
    storedSize: 0,
    compression: "none",
    checksum: sha256(new Uint8Array(0)),
    storedChecksum: sha256(new Uint8Array(0)),
    chunkCount: 0,
    lastChunk: null,
  });
});

Deno.test("storePayload: multi-byte UTF-8 split across pieces is stored byte for byte", async () => {
  const input = new TextEncoder().encode("é漢字🙂".repeat(5000));
  await storeAndCheck(input, [1, 2, 3, 5, 8, 13]); // cuts fall inside characters
});

/**
 * Begins a committed message and runs a store that fails past maxBytes (its appends commit one by one), then fails
 * the message as tool-invoke does; returns the error, the chunks left behind by the store alone, and what is left
 * after the failure was recorded.
 */
async function storeTooLarge(input: Uint8Array, maxBytes: number) {
  return await withDb(async (sql) => {
    const [{ transaction_id: id }] = await asService(
      (tx) =>
        tx<{ transaction_id: string }[]>`
        select transaction_id from bus.begin_message(${crypto.randomUUID()}::uuid, 'chat', 'kimi', 'm', null, null, 60)`,
      sql,
    );
    try {
      const error = await storePayload(sql, id, pieces(input), maxBytes).then(
        () => assert.fail("storePayload should refuse a payload over maxBytes"),
        (err: unknown) => err,
      );
      const chunks = async () => {
        const [{ n }] = await sql<{ n: number }[]>`
          select count(*)::int as n from public.message_bus_chunks where transaction_id = ${id}::uuid`;
        return n;
      };
      const [{ status }] = await sql<{ status: string }[]>`
        select status from public.message_bus where transaction_id = ${id}::uuid`;
      const appendedBeforeTheFailure = await chunks();
      await asService((tx) => tx`select bus.fail_message(${id}::uuid, '{"code":"payload_too_large"}', null)`, sql);
      return { error, appendedBeforeTheFailure, leftoverChunks: await chunks(), status };
    } finally {
      await sql`delete from public.message_bus where transaction_id = ${id}::uuid`;
    }
  });
}

function assertTooLarge(error: unknown, maxBytes: number) {
  assert.ok(error instanceof BusError, `a BusError, got ${error}`);
  assert.equal(error.status, 413);
  assert.equal(error.code, "payload_too_large");
  assert.equal(error.details.limit_bytes, maxBytes);
}

Deno.test("storePayload: 413 past maxBytes in the first chunk writes nothing", async () => {
  const r = await storeTooLarge(compressibleText(100_000), 64 * 1024);
  assertTooLarge(r.error, 64 * 1024);
  assert.equal(r.appendedBeforeTheFailure, 0, "nothing is written before the first chunk is complete");
  assert.equal(r.status, "pending", "the message itself is untouched (the caller records the failure)");
});

Deno.test("storePayload: 413 after chunks were appended (raw and gzip paths): failing the message leaves nothing", async () => {
  // Gzip stores about a third of the text: 16 MiB of it fills more than two chunks before the 12 MiB limit.
  for (
    const [input, limit] of [[randomBytes(4 * MiB), 3 * MiB + 5], [compressibleText(16 * MiB), 12 * MiB + 5]] as const
  ) {
    const r = await storeTooLarge(input, limit);
    assertTooLarge(r.error, limit);
    assert.ok(r.appendedBeforeTheFailure > 0, "chunks were appended as they came (no transaction held open)");
    assert.equal(r.status, "pending", "the store does not change the message");
    assert.equal(r.leftoverChunks, 0, "bus.fail_message removes the partial payload");
  }
});

Deno.test("storePayload: exactly maxBytes is accepted", async () => {
  const input = randomBytes(5000);
  const stored = await inRolledBackMessage((tx, id) => store(tx, id, pieces(input, [999]), 5000));
  assert.equal(stored.payloadSize, 5000);
});

Deno.test("storePayload: an error of the source stream is passed on (gzip path, mid-stream)", async () => {
  const broken = async function* () {
    yield* pieces(compressibleText(3 * MiB));
    throw new Error("connection reset by provider");
  };
  await assert.rejects(
    inRolledBackMessage((tx, id) => store(tx, id, broken())),
    /connection reset by provider/,
  );
});
