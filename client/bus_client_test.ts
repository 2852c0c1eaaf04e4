import assert from "node:assert/strict";
import { createBusClient, userIdOf } from "./bus_client.ts";
import { BusApiError, BusClientError, BusNetworkError, ChecksumMismatchError } from "./errors.ts";
import { fakeFetch, rejection } from "./_testing.ts";

const URL_ = "http://bus.test";
const ID = "01a1fe64-70be-7fb8-b8b1-1411b3f307c5";
// Unsigned test token: { "role": "authenticated", "sub": "a11ce000-0000-4000-8000-0000000000a1" }.
const TOKEN = `e30.${btoa(JSON.stringify({ role: "authenticated", sub: "a11ce000-0000-4000-8000-0000000000a1" }))}.sig`;
const body = new TextEncoder().encode('{"id":"chatcmpl-1","choices":[]}');

async function checksumOf(bytes: Uint8Array): Promise<string> {
  const buf = await crypto.subtle.digest("SHA-256", bytes as Uint8Array<ArrayBuffer>);
  return `sha256:${Array.from(new Uint8Array(buf), (b) => b.toString(16).padStart(2, "0")).join("")}`;
}

function client(handler: (req: Request) => Response | Promise<Response>) {
  const fetch = fakeFetch(handler);
  return { bus: createBusClient({ url: `${URL_}/`, key: "anon-key", accessToken: TOKEN, fetch }), fetch };
}

Deno.test("invoke() posts the request with the token, apikey and Idempotency-Key", async () => {
  const { bus, fetch } = client(() => Response.json({ transaction_id: ID, status: "pending" }, { status: 202 }));
  const { data, error } = await bus.invoke({ tool: "chat", input: { messages: [] }, mode: "async" }, {
    idempotencyKey: "k-1",
  });
  assert.equal(error, null);
  assert.deepEqual(data, { transaction_id: ID, status: "pending" });
  const [req] = fetch.requests;
  assert.equal(req.method, "POST");
  assert.equal(req.url, `${URL_}/functions/v1/tool-invoke`);
  assert.equal(req.headers.get("authorization"), `Bearer ${TOKEN}`);
  assert.equal(req.headers.get("apikey"), "anon-key");
  assert.equal(req.headers.get("idempotency-key"), "k-1");
  assert.deepEqual(await req.json(), { tool: "chat", input: { messages: [] }, mode: "async" });
});

Deno.test("a function's error answer becomes a BusApiError with the server's code", async () => {
  const { bus } = client(() =>
    Response.json({ error: { code: "provider_failed", message: "kimi: 500" }, transaction_id: ID, status: "failed" }, {
      status: 502,
    })
  );
  const { data, error } = await bus.invoke({ tool: "chat", input: {} });
  assert.equal(data, null);
  assert.ok(error instanceof BusApiError);
  assert.equal(error.code, "provider_failed");
  assert.equal(error.status, 502);
  assert.equal(error.transactionId, ID);
  assert.equal(error.details?.status, "failed");
});

Deno.test("the gateway's 401 body and non-JSON answers are typed too", async () => {
  const { bus } = client(() => Response.json({ code: 401, message: "Invalid JWT" }, { status: 401 }));
  const { error } = await bus.meta(ID);
  assert.ok(error instanceof BusApiError);
  assert.equal(error.status, 401);
  assert.equal(error.message, "Invalid JWT");
  const { bus: bus2 } = client(() => new Response("<html>bad gateway</html>", { status: 502 }));
  const { error: error2 } = await bus2.meta(ID);
  assert.equal(error2?.code, "http_502");
});

Deno.test("a failed request is a BusNetworkError", async () => {
  const { bus } = client(() => {
    throw new TypeError("connection refused");
  });
  const { error } = await bus.list();
  assert.ok(error instanceof BusNetworkError);
  assert.equal(error.code, "network_error");
});

Deno.test("fetch() returns verified bytes, text and JSON", async () => {
  const checksum = await checksumOf(body);
  const { bus, fetch } = client(() =>
    new Response(body, { headers: { etag: `"${checksum.slice(7)}"`, "content-type": "application/json" } })
  );
  const { data, error } = await bus.fetch(ID);
  assert.equal(error, null);
  assert.deepEqual(data!.bytes, body);
  assert.equal(data!.checksum, checksum);
  assert.equal(data!.text(), '{"id":"chatcmpl-1","choices":[]}');
  assert.deepEqual(data!.json(), { id: "chatcmpl-1", choices: [] });
  assert.equal(data!.content_type, "application/json");
  assert.equal(fetch.requests[0].url, `${URL_}/functions/v1/message-fetch/${ID}`);
});

Deno.test("fetch() of a tampered body returns ChecksumMismatchError and no data", async () => {
  const checksum = await checksumOf(body);
  const tampered = body.slice();
  tampered[3] = 0x58;
  const { bus } = client(() =>
    new Response(tampered, { headers: { "repr-digest": `sha-256=:${hexToB64(checksum.slice(7))}:` } })
  );
  const { data, error } = await bus.fetch(ID);
  assert.equal(data, null);
  assert.ok(error instanceof ChecksumMismatchError);
  assert.equal(error.source, "client");
  assert.equal(error.expected, checksum);
});

Deno.test("fetch() without checksum headers verifies against the metadata", async () => {
  const { bus, fetch } = client((req) =>
    req.url.endsWith("/meta")
      ? Response.json({ transaction_id: ID, status: "completed", checksum: `sha256:${"0".repeat(64)}` })
      : new Response(body)
  );
  const { error } = await bus.fetch(ID);
  assert.ok(error instanceof ChecksumMismatchError);
  assert.equal(error.details?.compared_with, "metadata");
  assert.equal(fetch.requests.length, 2);
});

Deno.test("fetch() maps the server's checksum_mismatch, pending, failed and expired answers", async () => {
  const answers: Record<string, Response> = {
    mismatch: Response.json({
      error: { code: "checksum_mismatch", message: "no", expected: "sha256:a", actual: "sha256:b" },
      transaction_id: ID,
    }, { status: 500 }),
    pending: Response.json({ transaction_id: ID, status: "pending" }, { status: 202 }),
    failed: Response.json({
      error: { code: "message_failed", message: "failed" },
      transaction_id: ID,
      status: "failed",
    }, { status: 409 }),
    expired: Response.json({ error: { code: "expired", message: "expired" }, transaction_id: ID, status: "expired" }, {
      status: 410,
    }),
  };
  for (const [name, res] of Object.entries(answers)) {
    const { bus } = client(() => res);
    const { data, error } = await bus.fetch(ID);
    assert.equal(data, null, name);
    if (name === "mismatch") {
      assert.ok(error instanceof ChecksumMismatchError);
      assert.equal(error.source, "server");
      assert.equal(error.status, 500);
    } else {
      assert.equal(error?.code, { pending: "message_pending", failed: "message_failed", expired: "expired" }[name]);
      assert.equal(error?.transactionId, ID);
    }
  }
});

Deno.test("list() sends since and limit and returns the messages", async () => {
  const { bus, fetch } = client(() => Response.json({ messages: [{ transaction_id: ID, status: "completed" }] }));
  const { data } = await bus.list({ since: "2026-11-21T00:00:00Z", limit: 5 });
  assert.deepEqual(data, [{ transaction_id: ID, status: "completed" }]);
  const url = new URL(fetch.requests[0].url);
  assert.equal(url.searchParams.get("since"), "2026-11-21T00:00:00.000Z");
  assert.equal(url.searchParams.get("limit"), "5");
});

Deno.test("a malformed id is rejected before any request", async () => {
  const { bus, fetch } = client(() => new Response("unexpected"));
  const { error } = await bus.fetch("../etc/passwd");
  assert.equal(error?.code, "invalid_argument");
  assert.equal(fetch.requests.length, 0);
});

Deno.test("throwOnError() throws the typed error and returns data otherwise", async () => {
  const { bus } = client(() => Response.json({ error: { code: "not_found", message: "No message" } }, { status: 404 }));
  const err = await rejection(() => bus.throwOnError().meta(ID), BusApiError);
  assert.equal(err.code, "not_found");
  const { bus: ok } = client(() => Response.json({ transaction_id: ID, status: "pending" }, { status: 202 }));
  const { data } = await ok.throwOnError().meta(ID);
  assert.equal(data.status, "pending");
});

Deno.test("userIdOf() reads the sub claim and rejects tokens without one", () => {
  assert.equal(userIdOf(TOKEN), "a11ce000-0000-4000-8000-0000000000a1");
  assert.throws(() => userIdOf(`e30.${btoa(JSON.stringify({ role: "service_role" }))}.x`), BusClientError);
  assert.throws(() => userIdOf("not a jwt"), BusClientError);
});

function hexToB64(hex: string): string {
  return btoa(String.fromCharCode(...hex.match(/../g)!.map((h) => parseInt(h, 16))));
}
