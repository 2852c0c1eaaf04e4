/**
 * Tests of the SQL side of the pg_net stand-in (devstack/sql/20_pg_net.sql) against a real Postgres
 * (a database of their own in the cluster of SUPABASE_DB_URL), copying supabase-platform.md §2.1 and §2.4. Every test runs in a transaction that is rolled
 * back, so nothing is queued or woken.
 */
import assert from "node:assert/strict";
import type postgres from "postgres";
import { testSql } from "./_test_fixture.ts";

/** Runs `fn` inside a transaction that is always rolled back. */
async function inRollback(fn: (tx: postgres.ReservedSql) => Promise<void>): Promise<void> {
  const sql = await testSql();
  const tx = await sql.reserve();
  try {
    await tx`begin`;
    await fn(tx);
  } finally {
    await tx`rollback`;
    tx.release();
    await sql.end();
  }
}

Deno.test("http_post() merges the JSON content type, stores the body as UTF-8 and appends params", async () => {
  await inRollback(async (tx) => {
    const [{ id }] = await tx`
      select net.http_post('http://example.test/hook', '{"a": "é"}', '{"k": "v w"}', '{"X-Key": "1"}') as id`;
    const [row] = await tx`
      select method, url, headers, convert_from(body, 'UTF8') as body, timeout_milliseconds
      from net.http_request_queue where id = ${id}::bigint`;
    assert.deepEqual(row, {
      method: "POST",
      url: "http://example.test/hook?k=v%20w",
      headers: { "X-Key": "1", "Content-Type": "application/json" },
      body: '{"a": "é"}',
      timeout_milliseconds: 5000,
    });
  });
});

Deno.test("http_post() rejects any content type but exactly application/json", async () => {
  for (const contentType of ["text/plain", "application/json; charset=utf-8"]) {
    await inRollback(async (tx) => {
      await assert.rejects(
        tx`select net.http_post('http://example.test/', headers := jsonb_build_object($$content-type$$, ${contentType}::text))`,
        { message: 'Content-Type header must be "application/json"' },
      );
    });
  }
});

Deno.test("http_get() and http_delete() queue their defaults", async () => {
  await inRollback(async (tx) => {
    const [get] = await tx`select net.http_get('http://example.test') as id`;
    const [del] = await tx`select net.http_delete('http://example.test/x', body := '{"b": true}') as id`;
    const rows = await tx`
      select method, url, headers, convert_from(body, 'UTF8') as body, timeout_milliseconds
      from net.http_request_queue where id in (${get.id}::bigint, ${del.id}::bigint) order by id`;
    assert.deepEqual(rows.map((r) => ({ ...r })), [
      { method: "GET", url: "http://example.test/", headers: {}, body: null, timeout_milliseconds: 5000 },
      { method: "DELETE", url: "http://example.test/x", headers: {}, body: '{"b": true}', timeout_milliseconds: 5000 },
    ]);
  });
});

Deno.test("URLs are normalised and params appended like curl_url (results taken from libcurl 7.88)", async () => {
  const cases: [string, string[], string][] = [
    ["http://Example.COM", [], "http://Example.COM/"],
    ["HTTP://h:80", ["a=1"], "http://h:80/?a=1"],
    ["http://h/p?x=1#frag", ["a=1", "b=2"], "http://h/p?x=1&a=1&b=2#frag"],
    ["http://h?", ["a=1"], "http://h/?a=1"],
    ["http://h/p?", [], "http://h/p"],
    ["http://h/?a=1&", ["b=2"], "http://h/?a=1&b=2"],
    ["http://user:pw@h:8080/p", ["k=v"], "http://user:pw@h:8080/p?k=v"],
    ["file:///tmp/x", [], "file:///tmp/x"],
  ];
  await inRollback(async (tx) => {
    for (const [url, params, expected] of cases) {
      const [{ encoded }] = await tx`select net._encode_url_with_params_array(${url}, ${params}::text[]) as encoded`;
      assert.equal(encoded, expected, url);
    }
    const [escaped] = await tx`select net._urlencode_string('é&=/?~-._* +') as s, net._urlencode_string('') as e`;
    assert.deepEqual({ ...escaped }, { s: "%C3%A9%26%3D%2F%3F~-._%2A%20%2B", e: "" });
  });
});

Deno.test("bad URLs raise pg_net's errors", async () => {
  const cases: [string, string][] = [
    ["localhost:6666", 'invalid URL "localhost:6666": Unsupported URL scheme'],
    ["/malformed_url", 'invalid URL "/malformed_url": Bad scheme'],
    ["http://", 'invalid URL "http://": No host part in the URL'],
    ["http:h", 'invalid URL "http:h": Unsupported number of slashes following scheme'],
  ];
  for (const [url, message] of cases) {
    await inRollback(async (tx) => {
      await assert.rejects(tx`select net.http_get(${url})`, { message });
    });
  }
  await inRollback(async (tx) => {
    await assert.rejects(tx`select net.http_get(null)`, /null value in column "url"/);
  });
});

Deno.test("anon may call http_post(), which runs as its owner (security definer, search_path=net)", async () => {
  await inRollback(async (tx) => {
    await tx`set local role anon`;
    const [{ id }] = await tx`select net.http_post('http://example.test/', '{}') as id`;
    assert.match(String(id), /^\d+$/);
    await tx`reset role`;
    const procs = await tx`
      select proname, prosecdef, proconfig from pg_proc
      where pronamespace = 'net'::regnamespace and proname in ('http_get', 'http_post') order by proname`;
    assert.deepEqual(procs.map((p) => [p.proname, p.prosecdef, p.proconfig]), [
      ["http_get", true, ["search_path=net"]],
      ["http_post", true, ["search_path=net"]],
    ]);
  });
});

Deno.test("supabase_functions.http_request() rejects a missing url and an unknown method", async () => {
  const cases: [string, string][] = [
    ["'null', 'POST'", "url argument is missing"],
    ["'http://example.test/', 'PUT'", "method argument PUT is invalid"],
  ];
  for (const [args, message] of cases) {
    await inRollback(async (tx) => {
      await tx`create temp table hooked (id int)`;
      await tx.unsafe(`create trigger hooked_hook after insert on hooked
        for each row execute function supabase_functions.http_request(${args})`);
      await assert.rejects(tx`insert into hooked values (1)`, { message });
    });
  }
});
