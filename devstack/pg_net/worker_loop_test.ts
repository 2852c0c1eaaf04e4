/**
 * Tests of the worker loop itself (supabase-platform.md §2.3, §8.2): batches, sweep, expiry, redirects, stop().
 */
import assert from "node:assert/strict";
import { waitForResponse, waitUntil, workerTest } from "./_test_fixture.ts";

workerTest("a batch is performed concurrently and its responses committed together", async (ctx) => {
  const url = `${ctx.server.url}/slow`;
  const rows = await ctx.sql`
    select net.http_get(${url}, jsonb_build_object('ms', 300, 'n', n)) as id from generate_series(1, 3) as n`;
  const ids = rows.map((row) => row.id as string);
  ctx.ids.push(...ids);

  const responses = await Promise.all(ids.map((id) => waitForResponse(ctx.sql, id)));
  assert.equal(ctx.server.maxSlowInFlight(), 3);
  assert.deepEqual(responses.map((r) => [r.status_code, r.content]), [[200, "late"], [200, "late"], [200, "late"]]);
  assert.equal(new Set(responses.map((r) => r.created.getTime())).size, 1);
});

workerTest("http_delete() sends its body and follows redirects; an empty body is recorded as NULL", async (ctx) => {
  const [del] = await ctx.sql`
    select net.http_delete(${ctx.server.url + "/redirect"}, body := '{"k": 1}'::jsonb) as id`;
  const [empty] = await ctx.sql`select net.http_get(${ctx.server.url + "/empty"}) as id`;
  ctx.ids.push(del.id, empty.id);

  const deleted = await waitForResponse(ctx.sql, del.id);
  assert.equal(deleted.status_code, 200);
  assert.deepEqual(JSON.parse(deleted.content!), { method: "DELETE", path: "/echo", search: "" });
  const echo = ctx.server.seen.find((s) => s.path === "/echo");
  assert.deepEqual([echo?.method, echo?.body], ["DELETE", '{"k": 1}']);

  const noContent = await waitForResponse(ctx.sql, empty.id);
  assert.deepEqual([noContent.status_code, noContent.content, noContent.error_msg], [204, null, null]);
});

workerTest("a row queued without a wake is picked up by the periodic sweep", async (ctx) => {
  await ctx.sql`select net.check_worker_is_up()`;
  const [{ id }] = await ctx.sql`
    insert into net.http_request_queue (method, url, headers, timeout_milliseconds)
    values ('GET', ${ctx.server.url + "/echo"}, '{}', 5000) returning id`;
  ctx.ids.push(id);

  const response = await waitForResponse(ctx.sql, id, 3000);
  assert.equal(response.status_code, 200);
});

workerTest("responses older than the ttl (6 hours) are deleted", async (ctx) => {
  const base = -Math.floor(Math.random() * 1e12) - 10;
  const [expired, kept] = [String(base), String(base - 1)];
  ctx.ids.push(expired, kept);
  await ctx.sql`
    insert into net._http_response (id, status_code, created) values
      (${expired}::bigint, 200, now() - interval '7 hours'), (${kept}::bigint, 200, now() - interval '5 hours')`;
  await ctx.sql`select net.wake()`;

  await waitUntil("the expired response to be deleted", async () => {
    const rows = await ctx.sql`select 1 from net._http_response where id = ${expired}::bigint`;
    return rows.length === 0;
  });
  const rows = await ctx.sql`select id from net._http_response where id = ${kept}::bigint`;
  assert.equal(rows.length, 1);
});

workerTest("stop() waits for the batch in flight and records its responses", async (ctx) => {
  const [{ id }] = await ctx.sql`select net.http_get(${ctx.server.url + "/slow"}, '{"ms": 400}'::jsonb) as id`;
  ctx.ids.push(id);
  await waitUntil("the request to reach the server", () => ctx.server.seen.length === 1);

  await ctx.worker.stop();
  ctx.stopped = true;
  const rows = await ctx.sql`select status_code, content from net._http_response where id = ${id}::bigint`;
  assert.deepEqual(rows.map((r) => [r.status_code, r.content]), [[200, "late"]]);
});
