/**
 * Byte-for-byte integrity of the claim check at 1 KB ... 100 MB (CONTRACT.md §4-5): the payload fetched back is
 * the provider's response exactly (the deterministic stand-in is asked again directly for the bytes it sent),
 * sha256 of it equals the checksum from tool-invoke, the ETag and the Repr-Digest; served with
 * `Content-Encoding: gzip` the compressed bytes are what was stored and decode to the same checksum.
 * Everything is hashed as it streams, so the 100 MB case does not hold the payload in memory.
 */
import assert from "node:assert/strict";
import { newUser, testStack } from "../devstack/testing/env.ts";
import {
  chatBody,
  fetchJson,
  gunzip,
  hexToBase64,
  invoke,
  rawGet,
  sha256Hex,
  sha256Stream,
  standinDirect,
} from "./claim_check_helpers.ts";
import { MIN_GZIP_BYTES } from "../supabase/functions/_shared/payload_store.ts";

const KB = 1000;
const MB = 1000 * 1000;
/** Payloads up to this size are also compared byte for byte in memory (above it, by streamed SHA-256). */
const BUFFER_LIMIT = 10 * MB;

async function roundTrip(bytes: number) {
  const user = await newUser();
  const body = chatBody({ bytes });
  const invoked = await invoke(user.token, body);
  assert.equal(invoked.status, 200, JSON.stringify(invoked.json));
  const { transaction_id: id, checksum } = invoked.json;
  assert.equal(invoked.json.status, "completed");
  assert.match(checksum, /^sha256:[0-9a-f]{64}$/);
  assert.equal(invoked.json.payload_size_bytes, bytes, "the stand-in answers exactly `bytes` bytes");
  const hex = checksum.slice("sha256:".length);
  const url = `${testStack().functionsUrl}/message-fetch/${id}`;

  // 1. Identity: plain fetch, nothing decoded on the way.
  const res = await fetch(url, { headers: { authorization: `Bearer ${user.token}`, "accept-encoding": "identity" } });
  assert.equal(res.status, 200);
  assert.equal(res.headers.get("content-encoding"), null);
  assert.equal(res.headers.get("content-length"), String(bytes));
  assert.equal(res.headers.get("etag"), `"${hex}"`, "ETag is the payload's sha256");
  assert.equal(res.headers.get("repr-digest"), `sha-256=:${hexToBase64(hex)}:`, "Repr-Digest is the sha256");
  assert.equal(res.headers.get("x-checksum"), checksum);
  assert.match(res.headers.get("content-type") ?? "", /^application\/json/, "the provider's content type is kept");

  const direct = await standinDirect(body);
  if (bytes <= BUFFER_LIMIT) {
    const fetched = new Uint8Array(await res.arrayBuffer());
    const expected = new Uint8Array(await direct.arrayBuffer());
    assert.equal(sha256Hex(fetched), hex, "sha256 of the fetched body equals the checksum");
    assert.equal(fetched.length, expected.length);
    const firstDiff = fetched.findIndex((b, i) => b !== expected[i]);
    assert.equal(firstDiff, -1, "the fetched body is the provider's response byte for byte");
    const text = new TextDecoder("utf-8", { fatal: true }).decode(fetched);
    assert.ok(/[\u0080-\uffff]/.test(text), "the content has multi-byte UTF-8 (stored as bytes, not re-encoded)");
    assert.equal(JSON.parse(text).object, "chat.completion");
  } else {
    const [fetched, expected] = await Promise.all([sha256Stream(res.body!), sha256Stream(direct.body!)]);
    assert.deepEqual(fetched, { hex, size: bytes }, "sha256 of the streamed body equals the checksum");
    assert.deepEqual(expected, fetched, "the provider's own bytes have the same sha256 and size");
  }

  // 2. gzip: the raw bytes on the wire are the stored gzip, and decode to the same checksum; a payload under
  // MIN_GZIP_BYTES is stored as it is, and a gzip client gets those bytes.
  const meta = await fetchJson(user.token, `/${id}/meta`);
  assert.equal(meta.status, 200);
  if (bytes < MIN_GZIP_BYTES) {
    assert.equal(meta.json.compression, "none", "a payload under MIN_GZIP_BYTES is stored as it is");
    const plain = await rawGet(url, { authorization: `Bearer ${user.token}`, "accept-encoding": "gzip" });
    assert.equal(plain.status, 200);
    assert.equal(plain.headers["content-encoding"], undefined, "served as stored, not encoded");
    assert.deepEqual(await sha256Stream(plain.body), { hex, size: bytes });
    return;
  }
  assert.equal(meta.json.compression, "gzip", "the stand-in's filler compresses, so it is stored gzip");
  assert.ok(meta.json.stored_size_bytes < bytes, `stored ${meta.json.stored_size_bytes} < raw ${bytes}`);
  const gz = await rawGet(url, { authorization: `Bearer ${user.token}`, "accept-encoding": "gzip" });
  assert.equal(gz.status, 200);
  assert.equal(gz.headers["content-encoding"], "gzip");
  assert.equal(gz.headers["content-length"], String(meta.json.stored_size_bytes));
  assert.equal(gz.headers["x-checksum"], checksum);
  const [wire, decoded] = gz.body.tee();
  const [wireDigest, decodedDigest] = await Promise.all([sha256Stream(wire), sha256Stream(gunzip(decoded))]);
  assert.equal(wireDigest.size, meta.json.stored_size_bytes, "the compressed bytes on the wire are the stored size");
  assert.deepEqual(decodedDigest, { hex, size: bytes }, "the decoded gzip matches the checksum");
}

for (
  const [label, bytes] of [["1 KB", KB], ["10 KB", 10 * KB], ["100 KB", 100 * KB], ["1 MB", MB], ["10 MB", 10 * MB]]
) {
  Deno.test(`claim check round trip, ${label}: identity and gzip, byte for byte`, () => roundTrip(bytes as number));
}

Deno.test("claim check round trip, 100 MB: identity and gzip, hashed as it streams", () => roundTrip(100 * MB));

Deno.test("claim check: sizes just around the 1 MiB chunk boundary survive", async () => {
  for (const bytes of [1024 * 1024 - 1, 1024 * 1024, 1024 * 1024 + 1, 2 * 1024 * 1024 + 7]) await roundTrip(bytes);
});
