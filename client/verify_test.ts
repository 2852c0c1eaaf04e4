import assert from "node:assert/strict";
import { rejection } from "./_testing.ts";
import { BusClientError, ChecksumMismatchError } from "./errors.ts";
import { createSha256, readVerified, statedChecksums } from "./verify.ts";

const utf8 = new TextEncoder();
const payload = utf8.encode('{"choices":[{"message":{"content":"héllo wörld"}}]}');

async function sha256Hex(bytes: Uint8Array): Promise<string> {
  const buf = await crypto.subtle.digest("SHA-256", bytes as Uint8Array<ArrayBuffer>);
  return Array.from(new Uint8Array(buf), (b) => b.toString(16).padStart(2, "0")).join("");
}

function b64(hex: string): string {
  return btoa(String.fromCharCode(...hex.match(/../g)!.map((h) => parseInt(h, 16))));
}

/** A Response streaming `body` in small chunks, with the headers message-fetch sends for `of`. */
async function fakeResponse(body: Uint8Array, of: Uint8Array, headers: string[] = ["etag", "repr-digest"]) {
  const hex = await sha256Hex(of);
  const all: Record<string, string> = {
    etag: `"${hex}"`,
    "repr-digest": `sha-256=:${b64(hex)}:`,
    "x-checksum": `sha256:${hex}`,
  };
  const stream = new ReadableStream<Uint8Array>({
    start(c) {
      for (let i = 0; i < body.length; i += 7) c.enqueue(body.slice(i, i + 7));
      c.close();
    },
  });
  return new Response(stream, { headers: Object.fromEntries(headers.map((h) => [h, all[h]])) });
}

Deno.test("createSha256() gives the same digest incrementally (node:crypto) and over collected bytes (WebCrypto)", async () => {
  const expected = `sha256:${await sha256Hex(payload)}`;
  for (const webCryptoOnly of [false, true]) {
    const h = await createSha256({ webCryptoOnly });
    h.update(payload.subarray(0, 5));
    h.update(payload.subarray(5));
    assert.deepEqual(await h.digest(), expected, `webCryptoOnly=${webCryptoOnly}`);
  }
});

Deno.test("statedChecksums() reads ETag, Repr-Digest and X-Checksum and skips malformed ones", async () => {
  const hex = await sha256Hex(payload);
  const stated = statedChecksums(
    new Headers({
      etag: `W/"${hex.toUpperCase()}"`,
      "repr-digest": `sha-512=:abc=:, sha-256=:${b64(hex)}:`,
      "x-checksum": `sha256:${hex}`,
    }),
  );
  assert.deepEqual(stated, [
    { from: "etag", checksum: `sha256:${hex}` },
    { from: "repr-digest", checksum: `sha256:${hex}` },
    { from: "x-checksum", checksum: `sha256:${hex}` },
  ]);
  assert.deepEqual(statedChecksums(new Headers({ etag: `"${hex}-gzip"` })), [{
    from: "etag",
    checksum: `sha256:${hex}`,
  }]);
  assert.deepEqual(statedChecksums(new Headers({ etag: '"not-a-digest"', "repr-digest": "sha-256=:short:" })), []);
  assert.deepEqual(statedChecksums(new Headers({ etag: `"${hex}-br"` })), []);
  assert.deepEqual(
    statedChecksums(new Headers({ "content-encoding": "gzip", "repr-digest": `sha-256=:${b64(hex)}:` })),
    [],
    "a coded answer's Repr-Digest is of the coded bytes",
  );
});

Deno.test("readVerified() returns the bytes when they match every stated checksum", async () => {
  for (const webCryptoOnly of [false, true]) {
    const res = await fakeResponse(payload, payload, ["etag", "repr-digest", "x-checksum"]);
    const out = await readVerified(res, { transactionId: "t1", webCryptoOnly });
    assert.deepEqual(out.bytes, payload);
    assert.deepEqual(out.size, payload.length);
    assert.deepEqual(out.checksum, `sha256:${await sha256Hex(payload)}`);
  }
});

Deno.test("readVerified() fails with ChecksumMismatchError on a tampered body", async () => {
  const tampered = payload.slice();
  tampered[10] ^= 0x01;
  for (const headers of [["etag"], ["repr-digest"], ["x-checksum"]]) {
    for (const webCryptoOnly of [false, true]) {
      const res = await fakeResponse(tampered, payload, headers);
      const err = await rejection(
        () => readVerified(res, { transactionId: "t2", webCryptoOnly }),
        ChecksumMismatchError,
      );
      assert.deepEqual(err.code, "checksum_mismatch");
      assert.deepEqual(err.source, "client");
      assert.deepEqual(err.transactionId, "t2");
      assert.deepEqual(err.expected, `sha256:${await sha256Hex(payload)}`);
      assert.deepEqual(err.actual, `sha256:${await sha256Hex(tampered)}`);
      assert.deepEqual(err.details?.compared_with, headers[0]);
    }
  }
});

Deno.test("readVerified() also compares the checksum from the metadata", async () => {
  const other = `sha256:${"0".repeat(64)}`;
  const res = await fakeResponse(payload, payload, ["etag"]);
  const err = await rejection(
    () => readVerified(res, { transactionId: "t3", expected: [other] }),
    ChecksumMismatchError,
  );
  assert.deepEqual(err.expected, other);
  assert.deepEqual(err.details?.compared_with, "metadata");
  // Without any header, the metadata's checksum alone is enough.
  const bare = new Response(payload);
  const ok = await readVerified(bare, { transactionId: "t3", expected: [`sha256:${await sha256Hex(payload)}`] });
  assert.deepEqual(ok.bytes, payload);
});

Deno.test("readVerified() refuses to return bytes it cannot verify", async () => {
  const err = await rejection(
    () => readVerified(new Response(payload), { transactionId: "t4", expected: [null] }),
    BusClientError,
  );
  assert.deepEqual(err.code, "invalid_response");
});

Deno.test("readVerified() with onChunk streams the chunks and still verifies at the end", async () => {
  const seen: Uint8Array[] = [];
  const out = await readVerified(await fakeResponse(payload, payload), {
    transactionId: "t5",
    onChunk: (c) => void seen.push(c),
  });
  assert.ok(seen.length > 1, "the body arrived in several chunks");
  assert.deepEqual(out.bytes.length, 0, "bytes are not collected with onChunk");
  assert.deepEqual(out.size, payload.length);
  const tampered = payload.slice();
  tampered[0] ^= 0xff;
  const err = await rejection(
    () =>
      readVerified(new Response(tampered, { headers: { etag: `"${"a".repeat(64)}"` } }), {
        transactionId: "t5",
        onChunk: () => {},
      }),
    ChecksumMismatchError,
  );
  assert.ok(err instanceof BusClientError);
});

Deno.test("readVerified() stops the download when onChunk fails", async () => {
  let cancelled: unknown;
  const body = new ReadableStream<Uint8Array>({
    pull: (c) => c.enqueue(payload),
    cancel: (reason) => void (cancelled = reason),
  });
  const res = new Response(body, { headers: { etag: `"${"a".repeat(64)}"` } });
  const failure = new Error("disk full");
  const err = await rejection(() =>
    readVerified(res, {
      transactionId: "t6",
      onChunk: () => {
        throw failure;
      },
    }), Error);
  assert.equal(err, failure);
  assert.equal(cancelled, failure);
});
