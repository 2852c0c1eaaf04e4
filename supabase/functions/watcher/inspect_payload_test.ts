/** inspectPayload, in-process: the sample it keeps, and every way stored bytes can turn out to be bad. */
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { gzipSync } from "node:zlib";
import { MissingChunkError, type StoredMeta } from "../_shared/payload_read.ts";
import { inspectPayload } from "./inspect_payload.ts";
import { expectLogged } from "../_shared/_expect_logged.ts";

const sha = (b: Uint8Array) => `sha256:${createHash("sha256").update(b).digest("hex")}`;

function bytes(n: number): Uint8Array {
  const out = new Uint8Array(n);
  for (let i = 0; i < n; i++) out[i] = (i * 7 + (i >> 8)) & 0xff;
  return out;
}

async function* pieces(data: Uint8Array, size: number): AsyncGenerator<Uint8Array> {
  for (let at = 0; at < data.length; at += size) yield data.slice(at, at + size);
}

/** payload_read logs every mismatch it finds (asserted here, not printed). */
const mismatchLogged = <T>(read: RegExp, fn: () => Promise<T>) =>
  expectLogged({
    must: [new RegExp(`^Checksum mismatch for 01890000-0000-7000-8000-000000000001: .*read ${read.source}`)],
  }, fn)
    .then((r) => r.result);

function meta(raw: Uint8Array, compression: "none" | "gzip" = "none"): StoredMeta {
  return { transaction_id: "01890000-0000-7000-8000-000000000001", checksum: sha(raw), chunk_count: 1, compression };
}

Deno.test("inspectPayload() keeps the whole body up to the cap", async () => {
  const raw = bytes(10_000);
  const s = await inspectPayload(meta(raw), pieces(raw, 999), 10_000, 100);
  assert.equal(s.integrity, undefined);
  assert.equal(s.bytesRead, 10_000);
  assert.deepEqual(s.whole, raw);
  assert.equal(s.head, undefined);
});

Deno.test("inspectPayload() keeps only head and tail above the cap, and still verifies every byte", async () => {
  const raw = bytes(50_001);
  for (const piece of [7, 1000, 60_000]) {
    const s = await inspectPayload(meta(raw), pieces(raw, piece), 10_000, 3_000);
    assert.equal(s.integrity, undefined, `piece ${piece}`);
    assert.equal(s.whole, undefined);
    assert.equal(s.bytesRead, 50_001);
    assert.deepEqual(s.head, raw.slice(0, 3_000), `head with piece ${piece}`);
    assert.deepEqual(s.tail, raw.slice(50_001 - 3_000), `tail with piece ${piece}`);
  }
  const flipped = raw.slice();
  flipped[40_000] ^= 1;
  const bad = await mismatchLogged(/sha256:/, () => inspectPayload(meta(raw), pieces(flipped, 1000), 10_000, 3_000));
  assert.equal(bad.integrity?.code, "checksum_mismatch");
});

Deno.test("inspectPayload() reports a checksum mismatch as a finding, with both digests", async () => {
  const raw = bytes(5_000);
  const other = bytes(5_000);
  other[0] ^= 0xff;
  const s = await mismatchLogged(/sha256:/, () => inspectPayload(meta(raw), pieces(other, 1000), 1_000_000));
  assert.equal(s.integrity?.code, "checksum_mismatch");
  assert.ok(s.integrity?.message.includes(sha(raw)) && s.integrity.message.includes(sha(other)));
  assert.equal(s.whole, undefined);
});

Deno.test("inspectPayload() decompresses stored gzip, and reports gzip that no longer decompresses", async () => {
  const raw = new TextEncoder().encode('{"choices":[]} '.repeat(2000));
  const gz = new Uint8Array(gzipSync(raw));
  const ok = await inspectPayload(meta(raw, "gzip"), pieces(gz, 500), 1_000_000);
  assert.deepEqual(ok.whole, raw);
  const broken = gz.slice();
  for (let i = 20; i < 60; i++) broken[i] ^= 0x5a;
  const s = await mismatchLogged(
    /undecodable gzip/,
    () => inspectPayload(meta(raw, "gzip"), pieces(broken, 500), 1_000_000),
  );
  assert.equal(s.integrity?.code, "checksum_mismatch", JSON.stringify(s.integrity));
});

Deno.test("inspectPayload() reports a missing chunk, and rethrows errors that are not about the data", async () => {
  const raw = bytes(100);
  async function* missing(): AsyncGenerator<Uint8Array> {
    yield raw.slice(0, 50);
    throw new MissingChunkError("01890000-0000-7000-8000-000000000001", 1);
  }
  const s = await inspectPayload(meta(raw), missing(), 1_000);
  assert.equal(s.integrity?.code, "checksum_mismatch");
  assert.match(s.integrity!.message, /chunk 1 is missing/);

  async function* down(): AsyncGenerator<Uint8Array> {
    yield raw;
    throw Object.assign(new Error("connect ECONNREFUSED"), { code: "ECONNREFUSED" });
  }
  await assert.rejects(inspectPayload(meta(raw), down(), 1_000), /ECONNREFUSED/);
});
