/**
 * Tests of the pg_net stand-in against a real Postgres (SUPABASE_DB_URL) and a local HTTP server: what callers of
 * net.http_* and supabase_functions.http_request observe (supabase-platform.md §2.1, §2.3, §2.4).
 */
import assert from "node:assert/strict";
import { closedPort, waitForResponse, workerTest } from "./_test_fixture.ts";

workerTest("net.http_post() in a committed transaction is performed and its response recorded", async (ctx) => {
  const url = `${ctx.server.url}/echo`;
  const id = await ctx.sql.begin(async (tx) => {
    const [row] = await tx`
      select net.http_post(${url}, '{"hello": "wörld"}'::jsonb, headers := '{"X-Test": "abc"}'::jsonb) as id`;
    return row.id as string;
  });
  ctx.ids.push(id);

  const response = await waitForResponse(ctx.sql, id);
  assert.equal(ctx.server.seen.length, 1);
  const seen = ctx.server.seen[0];
  assert.equal(seen.method, "POST");
  assert.deepEqual(JSON.parse(seen.body), { hello: "wörld" });
  assert.equal(seen.headers.get("content-type"), "application/json");
  assert.equal(seen.headers.get("x-test"), "abc");
  assert.equal(seen.headers.get("user-agent"), "pg_net/0.20.4");
  assert.equal(response.status_code, 200);
  assert.deepEqual(JSON.parse(response.content!), { method: "POST", path: "/echo", search: "" });
  assert.equal(response.content_type, "application/json");
  assert.equal(response.headers?.["x-test-server"], "echo");
  assert.equal(response.timed_out, false);
  assert.equal(response.error_msg, null);
});

workerTest("net.http_post() in a rolled-back transaction is never performed nor recorded", async (ctx) => {
  const url = `${ctx.server.url}/echo`;
  const conn = await ctx.sql.reserve();
  await conn`begin`;
  const [rolledBack] = await conn`select net.http_post(${url}, '{"n": "rolled back"}'::jsonb) as id`;
  await conn`rollback`;
  conn.release();
  const [marker] = await ctx.sql`select net.http_post(${url}, '{"n": "marker"}'::jsonb) as id`;
  ctx.ids.push(rolledBack.id, marker.id);

  // The queue is consumed in id order, so once the later marker is answered the earlier request would be too.
  await waitForResponse(ctx.sql, marker.id);
  assert.deepEqual(ctx.server.seen.map((s) => JSON.parse(s.body)), [{ n: "marker" }]);
  const leftovers = await ctx.sql`
    select id from net._http_response where id = ${rolledBack.id}::bigint
    union all select id from net.http_request_queue where id = ${rolledBack.id}::bigint`;
  assert.equal(leftovers.length, 0);
});

workerTest("a request slower than timeout_milliseconds is recorded as timed out", async (ctx) => {
  const [{ id }] = await ctx.sql`
    select net.http_get(${ctx.server.url + "/slow"}, timeout_milliseconds := 200) as id`;
  ctx.ids.push(id);

  const response = await waitForResponse(ctx.sql, id);
  assert.equal(response.timed_out, true);
  assert.equal(response.status_code, null);
  assert.equal(response.content, null);
  const match = response.error_msg?.match(
    /^Timeout of 200 ms reached\. Total time: (\d+\.\d{6}) ms \(DNS time: \d+\.\d{6} ms, TCP\/SSL handshake time: \d+\.\d{6} ms, HTTP Request\/Response time: \d+\.\d{6} ms\)$/,
  );
  assert.ok(match, `unexpected error_msg: ${response.error_msg}`);
  const total = Number(match[1]);
  assert.ok(total >= 195 && total < 3000, `total time ${total} ms`);
  assert.equal(ctx.server.seen.length, 1);
});

workerTest("a refused connection is recorded with curl's error text", async (ctx) => {
  const [{ id }] = await ctx.sql`select net.http_get(${`http://127.0.0.1:${closedPort()}/`}) as id`;
  ctx.ids.push(id);

  const response = await waitForResponse(ctx.sql, id);
  assert.equal(response.error_msg, "Couldn't connect to server");
  assert.equal(response.timed_out, false);
  assert.equal(response.status_code, null);
  assert.ok(ctx.logs.some((line) => line.includes(`request ${id} GET`) && line.includes("Connection refused")));
});

workerTest("net.http_get() appends url-encoded params to the query string", async (ctx) => {
  const [{ id }] = await ctx.sql`
    select net.http_get(${ctx.server.url + "/echo?x=1"}, '{"q": "a b&c", "é": "x/y"}'::jsonb) as id`;
  ctx.ids.push(id);

  const response = await waitForResponse(ctx.sql, id);
  assert.equal(ctx.server.seen[0]?.search, "?x=1&q=a%20b%26c&%C3%A9=x%2Fy");
  assert.equal(JSON.parse(response.content!).search, "?x=1&q=a%20b%26c&%C3%A9=x%2Fy");
  assert.equal(ctx.server.seen[0].headers.get("user-agent"), "pg_net/0.20.4");
});

workerTest("supabase_functions.http_request() posts the record of each row change", async (ctx) => {
  const table = `pgnet_webhook_test_${crypto.randomUUID().slice(0, 8)}`;
  const args = [`${ctx.server.url}/echo`, "POST", '{"Content-Type": "application/json", "X-Hook": "yes"}', "{}", "5000"]
    .map((arg) => `'${arg}'`).join(", ");
  await ctx.sql.unsafe(`create table public.${table} (id int primary key, note text)`);
  try {
    await ctx.sql.unsafe(`create trigger ${table}_hook after insert or update on public.${table}
      for each row execute function supabase_functions.http_request(${args})`);
    await ctx.sql.unsafe(`insert into public.${table} values (1, 'hi')`);
    await ctx.sql.unsafe(`update public.${table} set note = 'bye' where id = 1`);
    const hooks = await ctx.sql`
      select request_id, hook_name, hook_table_id = ${`public.${table}`}::regclass::oid as same_table
      from supabase_functions.hooks where hook_name = ${`${table}_hook`} order by id`;
    ctx.ids.push(...hooks.map((hook) => hook.request_id));
    assert.equal(hooks.length, 2);
    assert.ok(hooks.every((hook) => hook.same_table));

    await waitForResponse(ctx.sql, hooks[1].request_id);
    await waitForResponse(ctx.sql, hooks[0].request_id);
    // Both may run in one batch, concurrently: compare them in a fixed order.
    const bodies = ctx.server.seen.map((s) => JSON.parse(s.body)).sort((a, b) => a.type.localeCompare(b.type));
    const meta = { table, schema: "public" };
    assert.deepEqual(bodies, [
      { ...meta, type: "INSERT", old_record: null, record: { id: 1, note: "hi" } },
      { ...meta, type: "UPDATE", old_record: { id: 1, note: "hi" }, record: { id: 1, note: "bye" } },
    ]);
    assert.ok(ctx.server.seen.every((s) => s.method === "POST" && s.headers.get("x-hook") === "yes"));
  } finally {
    await ctx.sql`delete from supabase_functions.hooks where hook_name = ${`${table}_hook`}`;
    await ctx.sql.unsafe(`drop table public.${table}`);
  }
});
