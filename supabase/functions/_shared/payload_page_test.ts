/**
 * readPayloadPage + readPayloadRange against the real database (SUPABASE_DB_URL): payloads stored raw and gzip,
 * read back in pages as their owner. Pages joined are the payload byte for byte; no page of UTF-8 text splits a
 * character; a page is empty only at the end; offsets inside a character are refused; paused decoders give the
 * same bytes as decoding from the start; another user reads nothing.
 */
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import postgres from "postgres";
import { asService, type Sql } from "./db.ts";
import type { Caller } from "./auth.ts";
import { CHUNK_SIZE, storePayload } from "./payload_store.ts";
import { ChecksumMismatchError, MissingChunkError } from "./payload_read.ts";
import { characterStart, PageOffsetError, readPayloadPage } from "./payload_page.ts";
import { readPayloadRange, type SizedMeta } from "./payload_range.ts";
import { DecodeCursors } from "./decode_cursor.ts";
import { concatBytes } from "./bytes.ts";
import { Chunker } from "./chunker.ts";
import { expectLogged } from "./_expect_logged.ts";

const DB_URL = Deno.env.get("SUPABASE_DB_URL");
if (!DB_URL) throw new Error("SUPABASE_DB_URL is not set: run the tests through 'npm test'");
const MiB = 1024 * 1024;

const sha256 = (b: Uint8Array) => `sha256:${createHash("sha256").update(b).digest("hex")}`;
const userCaller = (sub: string): Caller => ({ role: "authenticated", sub, claims: { role: "authenticated", sub } });
const strictUtf8 = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });

/**
 * Random text of 1-, 2-, 3- and 4-byte characters (so that every page boundary can fall inside one), `n` bytes or
 * a few more: gzip keeps about half of it, so 4 MiB span several stored chunks.
 */
function mixedText(n: number): Uint8Array {
  const ranges: Array<[number, number]> = [[0x61, 0x7a], [0xe0, 0xff], [0x4e00, 0x4eff], [0x1f600, 0x1f64f]];
  const random = new Uint32Array(16_384);
  const parts: string[] = [];
  let size = 0;
  while (size < n) {
    crypto.getRandomValues(random);
    const points = Array.from(random, (r) => {
      const [lo, hi] = ranges[r & 3];
      return lo + ((r >>> 2) % (hi - lo + 1));
    });
    for (const cp of points) size += cp < 0x80 ? 1 : cp < 0x800 ? 2 : cp < 0x10000 ? 3 : 4;
    for (let i = 0; i < points.length; i += 8192) parts.push(String.fromCodePoint(...points.slice(i, i + 8192)));
  }
  return new TextEncoder().encode(parts.join(""));
}

async function* once(bytes: Uint8Array) {
  yield bytes;
}

interface Stored {
  owner: string;
  meta: SizedMeta;
}

/** Commits `input` as a completed message of a new owner: through storePayload, or cut raw by hand (`raw`). */
async function store(sql: Sql, input: Uint8Array, raw = false): Promise<Stored> {
  const owner = crypto.randomUUID();
  return await asService(async (tx) => {
    const [{ transaction_id: id }] = await tx<{ transaction_id: string }[]>`
      select transaction_id from bus.begin_message(${owner}::uuid, 'chat', 'kimi', 'm', null, null, 3600)`;
    let s;
    if (raw) {
      // Compressible text stored as is (storePayload would gzip it): the raw path with multi-byte characters.
      const chunker = new Chunker(CHUNK_SIZE);
      const all = chunker.push(input);
      const last = chunker.flush();
      if (last) all.push(last);
      for (let seq = 0; seq < all.length - 1; seq++) {
        await tx`select bus.append_chunk(${id}::uuid, ${seq}, ${all[seq]})`;
      }
      s = {
        payloadSize: input.length,
        storedSize: input.length,
        compression: "none" as const,
        checksum: sha256(input),
        storedChecksum: sha256(input),
        chunkCount: all.length,
        lastChunk: all.at(-1) ?? null,
      };
    } else {
      s = await storePayload(tx, id, once(input), 200 * MiB);
    }
    await tx`select bus.complete_message(${id}::uuid, ${s.payloadSize}, ${s.storedSize}, ${s.compression},
               ${s.checksum}, ${s.chunkCount}, 'stop', null, null, 1, 1, '{}', ${s.storedChecksum}, ${s.lastChunk})`;
    return {
      owner,
      meta: {
        transaction_id: id,
        checksum: s.checksum,
        chunk_count: s.chunkCount,
        compression: s.compression,
        payload_size_bytes: s.payloadSize,
        stored_checksum: s.storedChecksum,
      },
    };
  }, sql);
}

async function withDb(fn: (sql: Sql, put: (input: Uint8Array, raw?: boolean) => Promise<Stored>) => Promise<void>) {
  const sql = postgres(DB_URL!, { prepare: false, max: 3, onnotice: () => {} });
  const ids: string[] = [];
  try {
    await fn(sql, async (input, raw) => {
      const s = await store(sql, input, raw);
      ids.push(s.meta.transaction_id);
      return s;
    });
  } finally {
    if (ids.length) await sql`delete from public.message_bus where transaction_id = any(${ids}::uuid[])`;
    await sql.end();
  }
}

/** Pages through `s` with `maxBytes`, checking every page; returns the joined bytes and the page count. */
async function pageThrough(sql: Sql, s: Stored, maxBytes: number, cursors?: DecodeCursors, utf8 = true) {
  const parts: Uint8Array[] = [];
  let offset: number | null = 0;
  let pages = 0;
  let lastVerified = false;
  while (offset !== null) {
    const page = await readPayloadPage(userCaller(s.owner), s.meta, offset, maxBytes, { sql, cursors });
    assert.equal(page.offset, offset);
    assert.ok(page.bytes.length <= maxBytes, `page at ${offset} holds ${page.bytes.length} > ${maxBytes} bytes`);
    if (page.nextOffset !== null) {
      assert.ok(page.bytes.length > 0, `empty page at ${offset} before the end`);
      assert.equal(page.nextOffset, offset + page.bytes.length);
    }
    if (utf8) strictUtf8.decode(page.bytes); // throws if the page split a character
    parts.push(page.bytes.slice());
    lastVerified = page.verified;
    offset = page.nextOffset;
    pages++;
  }
  return { bytes: concatBytes(parts), pages, lastVerified };
}

Deno.test("payload_page: gzip text over several chunks pages back whole, never splitting a character", async () => {
  await withDb(async (sql, put) => {
    const input = mixedText(4 * MiB + 5);
    const s = await put(input);
    assert.equal(s.meta.compression, "gzip");
    assert.ok(s.meta.chunk_count >= 2, `gzip spans chunks (${s.meta.chunk_count})`);
    for (const maxBytes of [65_536, 65_537, 1_048_576 + 3]) {
      const cursors = new DecodeCursors();
      const { bytes, lastVerified } = await pageThrough(sql, s, maxBytes, cursors);
      assert.equal(sha256(bytes), s.meta.checksum, `max_bytes ${maxBytes}`);
      assert.ok(lastVerified, "the last page, read on from the first byte, verified the checksum");
      assert.equal(cursors.size, 0, "no decoder stays parked once the payload was read to its end");
    }
  });
});

Deno.test("payload_page: raw text over several chunks pages back whole across chunk boundaries", async () => {
  await withDb(async (sql, put) => {
    const input = mixedText(2 * MiB + 100);
    const s = await put(input, true);
    assert.equal(s.meta.compression, "none");
    assert.equal(s.meta.chunk_count, 3);
    for (const maxBytes of [4, 5, 7]) {
      // Small pages straddling the chunk boundaries only (a whole pass at 4 bytes would take a million pages).
      for (const around of [CHUNK_SIZE, 2 * CHUNK_SIZE]) {
        let offset = around - 20;
        while ((characterStart((p) => input[p], 0, offset)) !== null) offset--;
        for (let i = 0; i < 12; i++) {
          const page = await readPayloadPage(userCaller(s.owner), s.meta, offset, maxBytes, { sql });
          assert.ok(page.bytes.length > 0);
          assert.deepEqual(page.bytes, input.subarray(offset, offset + page.bytes.length));
          strictUtf8.decode(page.bytes);
          offset = page.nextOffset!;
        }
      }
    }
    const { bytes, pages, lastVerified } = await pageThrough(sql, s, 65_536);
    assert.equal(sha256(bytes), s.meta.checksum);
    assert.ok(pages >= 33);
    assert.equal(lastVerified, false, "a raw page is read by seeking, so the last one is not verified by the server");
  });
});

Deno.test("payload_page: an offset inside a character or past the end is refused", async () => {
  await withDb(async (sql, put) => {
    const input = new TextEncoder().encode("a😀b");
    const s = await put(input, true);
    for (const inside of [2, 3, 4]) {
      await assert.rejects(
        readPayloadPage(userCaller(s.owner), s.meta, inside, 16, { sql }),
        (err: unknown) => err instanceof PageOffsetError && err.charStart === 1,
      );
    }
    const end = await readPayloadPage(userCaller(s.owner), s.meta, input.length, 16, { sql });
    assert.equal(end.bytes.length, 0);
    assert.equal(end.nextOffset, null);
    await assert.rejects(readPayloadPage(userCaller(s.owner), s.meta, input.length + 1, 16, { sql }), PageOffsetError);
    // max_bytes 4 at offset 0: "a" and the first 3 bytes of the emoji would split it, so the page is "a".
    const first = await readPayloadPage(userCaller(s.owner), s.meta, 0, 4, { sql });
    assert.deepEqual(first.bytes, new TextEncoder().encode("a"));
    assert.equal(first.nextOffset, 1);
  });
});

Deno.test("payload_page: bytes that are not UTF-8 page back whole without cuts", async () => {
  await withDb(async (sql, put) => {
    const input = new Uint8Array(1.5 * MiB);
    for (let at = 0; at < input.length; at += 65_536) crypto.getRandomValues(input.subarray(at, at + 65_536));
    const s = await put(input);
    assert.equal(s.meta.compression, "none");
    const { bytes } = await pageThrough(sql, s, 300_000, undefined, false);
    assert.deepEqual(bytes, input);
  });
});

Deno.test("payload_range: a parked decoder serves the next range; going back starts over; same bytes", async () => {
  // The other user's read fails on chunk 0, which storedChunks also logs as its read-ahead; a read-ahead still in
  // flight when a parked decoder is closed may log one too.
  const logged = { must: [/read-ahead of .* Chunk 0 of .* is missing/], may: [/read-ahead of .* is missing/] };
  await expectLogged(logged, () =>
    withDb(async (sql, put) => {
      const input = mixedText(4 * MiB);
      const s = await put(input);
      const caller = userCaller(s.owner);
      const cursors = new DecodeCursors();
      try {
        const a = await readPayloadRange(caller, s.meta, 0, 1000, { sql, cursors });
        assert.equal(cursors.size, 1, "the decoder is parked after a range that does not reach the end");
        const b = await readPayloadRange(caller, s.meta, 995, 2 * MiB, { sql, cursors }); // 5 bytes back: kept
        const c = await readPayloadRange(caller, s.meta, 10, 20, { sql, cursors }); // behind: from the start
        assert.deepEqual(a.bytes, input.subarray(0, 1000));
        assert.deepEqual(b.bytes, input.subarray(995, 2 * MiB));
        assert.deepEqual(c.bytes, input.subarray(10, 20));
        const other = userCaller(crypto.randomUUID());
        await assert.rejects(readPayloadRange(other, s.meta, 20, 30, { sql, cursors }), MissingChunkError);
      } finally {
        await cursors.closeAll();
      }
    }));
});

Deno.test("payload_range: a corrupted gzip payload fails the range that reaches its end", async () => {
  const logged = { must: [/Checksum mismatch for .* undecodable gzip/], may: [/read-ahead of .* after the consumer/] };
  await expectLogged(logged, () =>
    withDb(async (sql, put) => {
      const input = mixedText(4 * MiB);
      const s = await put(input);
      await sql`update public.message_bus_chunks set data = set_byte(data, 5000, (get_byte(data, 5000) + 1) % 256)
              where transaction_id = ${s.meta.transaction_id}::uuid and seq = 1`;
      await assert.rejects(
        readPayloadRange(userCaller(s.owner), s.meta, 0, s.meta.payload_size_bytes, { sql }),
        ChecksumMismatchError,
      );
    }));
});

Deno.test("characterStart: finds the lead byte of the character a position falls inside", () => {
  const bytes = new TextEncoder().encode("a😀é");
  const at = (p: number) => bytes[p];
  assert.equal(characterStart(at, 0, 0), null);
  assert.equal(characterStart(at, 0, 1), null);
  assert.equal(characterStart(at, 0, 2), 1);
  assert.equal(characterStart(at, 0, 4), 1);
  assert.equal(characterStart(at, 0, 5), null);
  assert.equal(characterStart(at, 0, 6), 5);
  const stray = new Uint8Array([0x41, 0x80, 0x80, 0x80, 0x80]); // continuation bytes with no lead: not UTF-8
  assert.equal(characterStart((p) => stray[p], 0, 4), null);
});
