import assert from "node:assert/strict";
import { createBusClient } from "./bus_client.ts";
import { BusApiError, BusClientError, ChecksumMismatchError } from "./errors.ts";
import { fakeFetch } from "./_testing.ts";

const URL_ = "http://bus.test";
const ID = "01a1fe64-70be-7fb8-b8b1-1411b3f307c5";
const TOKEN = `e30.${btoa(JSON.stringify({ role: "authenticated", sub: "a11ce000-0000-4000-8000-0000000000a1" }))}.sig`;

function client(handler: (req: Request) => Response | Promise<Response>) {
  const fetch = fakeFetch(handler);
  return { bus: createBusClient({ url: URL_, key: "anon-key", accessToken: TOKEN, fetch }), fetch };
}

const uploaded = {
  file_id: ID,
  sha256: "a".repeat(64),
  size_bytes: 3,
  filename: "r é.txt",
  content_type: "text/plain",
  created_at: "2026-11-26T00:00:00.000Z",
  expires_at: "2026-11-28T00:00:00.000Z",
  deduplicated: false,
};

Deno.test("uploadFile() posts the raw bytes with the name percent-encoded in x-filename and the Blob's type", async () => {
  const { bus, fetch } = client(() => Response.json(uploaded, { status: 201 }));
  const { data, error } = await bus.uploadFile(new Blob(["abc"], { type: "text/plain" }), { filename: "r é.txt" });
  assert.equal(error, null);
  assert.deepEqual(data, uploaded);
  const [req] = fetch.requests;
  assert.equal(req.method, "POST");
  assert.equal(req.url, `${URL_}/functions/v1/files`);
  assert.equal(req.headers.get("x-filename"), "r%20%C3%A9.txt");
  assert.equal(req.headers.get("content-type"), "text/plain");
  assert.equal(req.headers.get("authorization"), `Bearer ${TOKEN}`);
  assert.equal(await req.text(), "abc");
});

Deno.test("uploadFile() streams a ReadableStream and reports a 413 as a typed error", async () => {
  const { bus, fetch } = client(async (req) => {
    assert.equal(await req.text(), "streamed");
    return Response.json({ error: { code: "payload_too_large", message: "The file exceeds the 100 MB limit" } }, {
      status: 413,
    });
  });
  const { error } = await bus.uploadFile(ReadableStream.from([new TextEncoder().encode("streamed")]), {
    filename: "s.bin",
  });
  assert.ok(error instanceof BusApiError);
  assert.equal(error.code, "payload_too_large");
  assert.equal(error.status, 413);
  assert.equal(fetch.requests[0].headers.get("content-type"), "application/octet-stream");
  const { error: noName } = await bus.uploadFile(new Uint8Array(1), { filename: "" });
  assert.ok(noName instanceof BusClientError);
  assert.equal(noName.code, "invalid_argument");
});

Deno.test("invoke(req, { files }) adds the ids to input.files, after those the input names", async () => {
  const { bus, fetch } = client(() => Response.json({ transaction_id: ID, status: "pending" }, { status: 202 }));
  const other = "01a1fe64-70be-7fb8-b8b1-1411b3f307c6";
  await bus.invoke({ tool: "chat", input: { messages: [], files: [other] } }, { files: [ID, other] });
  assert.deepEqual((await fetch.requests[0].json()).input.files, [other, ID]);
  await bus.invoke({ tool: "chat", input: { messages: [] } });
  assert.equal((await fetch.requests[1].json()).input.files, undefined, "no files, no member");
});

Deno.test("listFiles(), downloadFile() (verified) and deleteFile() call their routes", async () => {
  const bytes = new TextEncoder().encode("hello");
  const hex = Array.from(
    new Uint8Array(await crypto.subtle.digest("SHA-256", bytes)),
    (b) => b.toString(16).padStart(2, "0"),
  )
    .join("");
  let served = bytes;
  const { bus, fetch } = client((req) => {
    const path = new URL(req.url).pathname;
    if (req.method === "DELETE") return new Response(null, { status: 204 });
    if (path.endsWith("/files")) return Response.json({ files: [uploaded] });
    return new Response(served, { headers: { etag: `"${hex}"`, "content-type": "text/plain" } });
  });
  assert.deepEqual((await bus.listFiles({ limit: 5 })).data, [uploaded]);
  assert.equal(new URL(fetch.requests[0].url).search, "?limit=5");
  const got = await bus.downloadFile(ID);
  assert.deepEqual(got.data?.bytes, bytes);
  assert.equal(got.data?.checksum, `sha256:${hex}`);
  served = new TextEncoder().encode("HELLO");
  const bad = await bus.downloadFile(ID);
  assert.ok(bad.error instanceof ChecksumMismatchError, "bytes that do not match the file's SHA-256 are refused");
  assert.equal((await bus.deleteFile(ID)).error, null);
  assert.equal(fetch.requests.at(-1)!.method, "DELETE");
  assert.equal((await bus.deleteFile("nope")).error?.code, "invalid_argument");
});
