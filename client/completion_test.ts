import assert from "node:assert/strict";
import { createBusClient } from "./bus_client.ts";
import { ChecksumMismatchError } from "./errors.ts";
import { fakeFetch } from "./_testing.ts";

const ID = "01a1fe64-70be-7fb8-b8b1-1411b3f307c5";
const TOKEN = `e30.${btoa(JSON.stringify({ role: "authenticated", sub: "a11ce000-0000-4000-8000-0000000000a1" }))}.sig`;
const body = new TextEncoder().encode('{"id":"chatcmpl-1","object":"chat.completion","choices":[]}');

async function hexOf(bytes: Uint8Array): Promise<string> {
  const buf = await crypto.subtle.digest("SHA-256", bytes as Uint8Array<ArrayBuffer>);
  return Array.from(new Uint8Array(buf), (b) => b.toString(16).padStart(2, "0")).join("");
}

function client(handler: (req: Request) => Response | Promise<Response>) {
  const fetch = fakeFetch(handler);
  return { bus: createBusClient({ url: "http://bus.test", key: "anon-key", accessToken: TOKEN, fetch }), fetch };
}

Deno.test("completion() of a non-streamed message verifies the stored body like fetch()", async () => {
  const hex = await hexOf(body);
  const { bus, fetch } = client(() => new Response(body, { headers: { etag: `"${hex}"` } }));
  const { data, error } = await bus.completion(ID);
  assert.equal(error, null);
  assert.equal(fetch.requests[0].url, `http://bus.test/functions/v1/message-fetch/${ID}/completion`);
  assert.deepEqual(data, {
    transaction_id: ID,
    assembled: false,
    checksum: `sha256:${hex}`,
    source_checksum: `sha256:${hex}`,
    completion: JSON.parse(new TextDecoder().decode(body)),
  });
  const { bus: bad } = client(() => new Response(body, { headers: { etag: `"${"0".repeat(64)}"` } }));
  assert.ok((await bad.completion(ID)).error instanceof ChecksumMismatchError);
});

Deno.test("completion() of a streamed message returns the server's assembly and the stream's checksum", async () => {
  const source = `sha256:${"a".repeat(64)}`;
  const { bus } = client(() =>
    new Response(body, {
      headers: {
        etag: `W/"${"a".repeat(64)}-completion"`,
        "x-bus-assembled": "stream",
        "x-bus-source-checksum": source,
      },
    })
  );
  const { data } = await bus.throwOnError().completion(ID);
  assert.equal(data.assembled, true);
  assert.equal(data.checksum, null);
  assert.equal(data.source_checksum, source);
  assert.equal(data.completion.object, "chat.completion");
});

Deno.test("fetch(id, { partial: true }) asks for ?partial=1 and says whether the bytes are partial", async () => {
  const hex = await hexOf(body);
  const { bus, fetch } = client(() => new Response(body, { headers: { etag: `"${hex}"`, "x-bus-partial": "true" } }));
  const { data } = await bus.throwOnError().fetch(ID, { partial: true });
  assert.equal(fetch.requests[0].url, `http://bus.test/functions/v1/message-fetch/${ID}?partial=1`);
  assert.equal(data.partial, true);
  const { bus: plain, fetch: plainFetch } = client(() => new Response(body, { headers: { etag: `"${hex}"` } }));
  assert.equal((await plain.throwOnError().fetch(ID)).data.partial, false);
  assert.equal(plainFetch.requests[0].url, `http://bus.test/functions/v1/message-fetch/${ID}`);
});

Deno.test("completion() of a pending message is a message_pending error", async () => {
  const { bus } = client(() => Response.json({ transaction_id: ID, status: "pending" }, { status: 202 }));
  const { error } = await bus.completion(ID);
  assert.equal(error?.code, "message_pending");
});
