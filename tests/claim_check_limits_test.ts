/**
 * Limits and integrity over HTTP and in-process (CONTRACT.md §4-5): 413 for a request body over the limit
 * (declared Content-Length against the stack; streamed bodies through the door's jsonBody with a small limit), 413
 * for a provider response over the limit (runMessage with a small limit: recorded failed, nothing stored), and
 * stored bytes that do not match their checksum, which are never served as a complete answer.
 */
import assert from "node:assert/strict";
import { adminSql, newUser, testStack } from "../devstack/testing/env.ts";
import { z } from "zod";
import { createApp } from "../supabase/functions/_shared/http.ts";
import { BusError } from "../supabase/functions/_shared/errors.ts";
import { BodyBudget } from "../supabase/functions/_shared/door/body.ts";
import { jsonBody } from "../supabase/functions/_shared/door/validate.ts";
import { runMessage } from "../supabase/functions/_shared/invoke/run.ts";
import { toolNamed } from "../supabase/functions/_shared/tools/registry.ts";
import { parseSettings } from "../supabase/functions/_shared/env.ts";
import { chatBody, invoke, MODEL } from "./claim_check_helpers.ts";
import { concatBytes } from "../supabase/functions/_shared/bytes.ts";
import { codes, waitForObservation } from "./watch_helpers.ts";

Deno.test("413: a declared Content-Length over the limit is refused before the body is read", async () => {
  const { token } = await newUser();
  const url = new URL(testStack().url);
  const conn = await Deno.connect({ hostname: url.hostname, port: Number(url.port) });
  try {
    const head = `POST /functions/v1/tool-invoke HTTP/1.1\r\nHost: ${url.host}\r\nAuthorization: Bearer ${token}\r\n` +
      `Content-Type: application/json\r\nContent-Length: ${
        200 * 1024 * 1024
      }\r\nConnection: close\r\n\r\n{"tool":"chat",`;
    await conn.write(new TextEncoder().encode(head));
    const parts: Uint8Array[] = [];
    const deadline = setTimeout(() => conn.close(), 10_000);
    const buf = new Uint8Array(8192);
    for (;;) {
      const n = await conn.read(buf).catch(() => null);
      if (!n) break;
      parts.push(buf.slice(0, n));
      const text = new TextDecoder().decode(concatBytes(parts));
      if (/\r\n\r\n\{.*\}\s*$/s.test(text)) break;
    }
    clearTimeout(deadline);
    const text = new TextDecoder().decode(concatBytes(parts));
    assert.match(text, /^HTTP\/1\.1 413 /, text.slice(0, 200));
    assert.match(text, /"code":"payload_too_large"/);
  } finally {
    closeQuietly(conn);
  }
});

/** Closes `conn` unless the read deadline already did. */
function closeQuietly(conn: Deno.Conn) {
  try {
    conn.close();
  } catch (err) {
    if (!(err instanceof Deno.errors.BadResource)) console.error(`closing the test connection: ${err}`);
  }
}

Deno.test("413 in-process (the door's jsonBody): declared and streamed bodies over a small limit; bad UTF-8 is a 400", async () => {
  const app = createApp("read-body-test");
  const door = jsonBody(z.record(z.string(), z.unknown()), {
    maxBytes: 100,
    budget: new BodyBudget(1024),
    maxDepth: 8,
  });
  app.post("/", door, (c) => c.json({ parsed: c.req.valid("json") }));
  const post = (body: BodyInit, headers: Record<string, string> = {}) =>
    app.request("/read-body-test", { method: "POST", body, headers });

  const ok = await post(JSON.stringify({ a: "é" }));
  assert.equal(ok.status, 200);
  assert.deepEqual(await ok.json(), { parsed: { a: "é" } });

  const declared = await post("{}", { "content-length": "101" });
  assert.equal(declared.status, 413);
  assert.equal((await declared.json()).error.code, "payload_too_large");

  // No Content-Length (a stream): counted as it arrives.
  const streamed = await post(
    ReadableStream.from([new TextEncoder().encode('{"a":"'), new Uint8Array(200).fill(0x61)]),
  );
  assert.equal(streamed.status, 413);

  const exactly = await post(JSON.stringify({ a: "x".repeat(92) })); // 100 bytes
  assert.equal(exactly.status, 200, "exactly the limit is accepted");

  const badUtf8 = await post(new Uint8Array([0x7b, 0x22, 0xff, 0x22, 0x7d]));
  assert.equal(badUtf8.status, 400);
  assert.match((await badUtf8.json()).error.message, /UTF-8/);
});

Deno.test("integrity: bytes that do not match the stored checksums are never served as a complete answer", async () => {
  const { token } = await newUser();
  const small = await invoke(token, chatBody({ bytes: 5_000 }));
  const large = await invoke(token, chatBody({ bytes: 12_000_000 })); // stored gzip over two chunks
  const wrong = `sha256:${"0".repeat(64)}`;
  const wrongStored = `sha256:${"1".repeat(64)}`;
  const sql = adminSql();
  let smallStored: string;
  try {
    const ids = [small.json.transaction_id, large.json.transaction_id];
    const rows = await sql<{ n: number; compression: string; stored_checksum: string }[]>`
      select chunk_count as n, compression, stored_checksum from public.message_bus
      where transaction_id = any(${ids}::uuid[]) order by transaction_id`;
    assert.deepEqual(rows.map((r) => r.compression), ["gzip", "gzip"]);
    assert.ok(rows[1].n >= 2, `the large payload spans chunks (${rows[1].n})`);
    smallStored = rows[0].stored_checksum;
    // Observed first, so that fetch knows the decode proven (payload_read.ts decodeProven) whatever the timing:
    // identity answers are then verified by the stored bytes' digest too.
    for (const id of ids) assert.ok(!codes(await waitForObservation(sql, id)).includes("checksum_mismatch"));
    await sql`update public.message_bus set checksum = ${wrong}, stored_checksum = ${wrongStored}
              where transaction_id = any(${ids}::uuid[])`;
  } finally {
    await sql.end();
  }
  const url = (id: string) => `${testStack().functionsUrl}/message-fetch/${id}`;

  // One chunk: verified before the status line, so a clean error answer. Both are checked against the digest of
  // the stored bytes: passed through as they are, or decoded once the watcher has proven their decode.
  for (const encoding of ["identity", "gzip"]) {
    const [expected, actual] = [wrongStored, smallStored];
    const res = await fetch(url(small.json.transaction_id), {
      headers: { authorization: `Bearer ${token}`, "accept-encoding": encoding },
    });
    assert.equal(res.status, 500, encoding);
    const body = await res.json();
    assert.equal(body.error.code, "checksum_mismatch");
    assert.equal(body.error.expected, expected, encoding);
    assert.equal(body.error.actual, actual, encoding);
  }

  // Several chunks: streamed, and the stream is cut when the mismatch shows at the end.
  for (const encoding of ["identity", "gzip"]) {
    const res = await fetch(url(large.json.transaction_id), {
      headers: { authorization: `Bearer ${token}`, "accept-encoding": encoding },
    });
    assert.equal(res.status, 200, "the status line went out before the end was verified");
    await assert.rejects(res.arrayBuffer(), Error, `the ${encoding} body must not end normally`);
  }
});

Deno.test("integrity: a changed stored byte is refused whether the gzip is decoded or passed through", async () => {
  const { token } = await newUser();
  const small = await invoke(token, chatBody({ bytes: 5_000 }));
  const id = small.json.transaction_id;
  const sql = adminSql();
  let stored: string;
  try {
    [{ stored_checksum: stored }] = await sql<{ stored_checksum: string }[]>`
      select stored_checksum from public.message_bus where transaction_id = ${id}::uuid and compression = 'gzip'`;
    // The last byte of a gzip stream is part of its length trailer: the deflate data still decodes, zlib refuses.
    await sql`update public.message_bus_chunks set data = overlay(data placing '\\xff'::bytea from length(data))
              where transaction_id = ${id}::uuid and seq = 0`;
  } finally {
    await sql.end();
  }
  for (const encoding of ["identity", "gzip"]) {
    const res = await fetch(`${testStack().functionsUrl}/message-fetch/${id}`, {
      headers: { authorization: `Bearer ${token}`, "accept-encoding": encoding },
    });
    assert.equal(res.status, 500, encoding);
    const body = await res.json();
    assert.equal(body.error.code, "checksum_mismatch", encoding);
    // Identity: zlib refuses the stored gzip; gzip: its bytes no longer match their digest.
    assert.equal(body.error.expected, encoding === "identity" ? small.json.checksum : stored, encoding);
  }
});

Deno.test("413 for a provider response over the limit (in-process runMessage): recorded failed, nothing stored", async () => {
  const sql = adminSql();
  const owner = crypto.randomUUID();
  try {
    const [{ transaction_id: id }] = await sql<{ transaction_id: string }[]>`
      select transaction_id from bus.begin_message(${owner}::uuid, 'chat', 'kimi', ${MODEL}, null, null, 600)`;
    const body = chatBody({ bytes: 3 * 1024 * 1024 });
    const settings = parseSettings({ ...Deno.env.toObject(), MESSAGE_BUS_MAX_PAYLOAD_MB: "2" });
    const error = await runMessage({
      sql,
      transactionId: id,
      run: 1,
      tool: toolNamed("chat")!,
      input: body.input,
      inputJson: new TextEncoder().encode(JSON.stringify(body.input)),
      routes: [{
        provider: {
          name: "kimi",
          baseURL: testStack().standinUrl,
          apiKey: "any-key",
          defaultModel: MODEL,
          fallbacks: [],
          files: "extract",
        },
        model: MODEL,
      }],
      settings,
    }).then(() => assert.fail("a 3 MiB response must not fit a 2 MiB limit"), (err: unknown) => err);
    assert.ok(error instanceof BusError);
    assert.equal(error.status, 413);
    assert.deepEqual(error.toBody().transaction_id, id);
    assert.equal(error.toBody().status, "failed");

    const [row] = await sql<{ status: string; error: { code: string }; chunks: number }[]>`
      select status, error, (select count(*)::int from public.message_bus_chunks c where c.transaction_id = m.transaction_id) as chunks
      from public.message_bus m where transaction_id = ${id}::uuid`;
    assert.equal(row.status, "failed");
    assert.equal(row.error.code, "payload_too_large");
    assert.equal(row.chunks, 0, "no partial payload is left");
  } finally {
    await sql`delete from public.message_bus where owner_id = ${owner}::uuid`;
    await sql.end();
  }
});
