/**
 * Error groups on the running stack (CONTRACT.md §12; migration 20261126000410): failures and watcher error findings
 * grouped by fingerprint, resolve, and reopening by a new occurrence. Failures written through bus.fail_message
 * (what the invoke path calls) carry an error code of the test's own, so the groups are the test's alone.
 */
import assert from "node:assert/strict";
import { adminSql, testStack } from "../devstack/testing/env.ts";
import { beginMessage, failMessage, ops } from "./ops_helpers.ts";

const sql = adminSql();

interface Group {
  fingerprint: string;
  code: string;
  provider: string;
  message: string;
  count: number;
  status: "open" | "resolved";
  sample_transaction_ids: string[];
  first_seen: string;
  last_seen: string;
  reopened_count: number;
  example: string;
  source: string;
}

async function groups(status = "all"): Promise<Group[]> {
  const res = await ops(`/errors?status=${status}&limit=1000`);
  assert.equal(res.status, 200, res.text);
  return res.json.groups;
}

async function failWith(code: string, message: string, provider = "kimi"): Promise<string> {
  const id = await beginMessage(sql, { provider, model: "ops-errors" });
  await failMessage(sql, id, { code, message, provider });
  return id;
}

Deno.test("bus.normalise_error_message removes ids, timestamps, hex and numbers", async () => {
  const [{ a, b }] = await sql`select
    bus.normalise_error_message('Request 0b1e2d3c-aaaa-4bbb-8ccc-0123456789ab failed at 2026-11-26T12:00:01.5Z after 3 tries (trace 9f8e7d6c5b)') as a,
    bus.normalise_error_message(e'Request  11111111-2222-4333-8444-555555555555 failed at 2026-01-02 03:04:05+01:00\nafter 12 tries (trace deadbeef42)') as b`;
  assert.equal(a, "Request <id> failed at <time> after <n> tries (trace <hex>)");
  assert.equal(b, a);
});

Deno.test("failures with the same code, provider and normalised message make one group; others their own", async () => {
  const code = `ops_test_${crypto.randomUUID().slice(0, 8)}`;
  const first = await failWith(code, "Upstream answered 503 for request 7c1d0f00aa at 2026-11-26T10:00:00Z");
  const second = await failWith(code, "Upstream answered 502 for request 99aa11bb22 at 2026-11-26T11:30:00Z");
  const other = await failWith(code, "Connection refused");
  const otherProvider = await failWith(code, "Connection refused", "glm");

  const mine = (await groups()).filter((g) => g.code === code);
  assert.equal(mine.length, 3, JSON.stringify(mine));
  const upstream = mine.find((g) => g.message.startsWith("Upstream"))!;
  assert.equal(upstream.message, "Upstream answered <n> for request <hex> at <time>");
  assert.equal(upstream.count, 2);
  assert.equal(upstream.status, "open");
  assert.equal(upstream.provider, "kimi");
  assert.equal(upstream.source, "failure");
  assert.deepEqual(upstream.sample_transaction_ids, [second, first], "newest first");
  assert.match(upstream.fingerprint, /^[0-9a-f]{64}$/);
  assert.equal(upstream.example, "Upstream answered 503 for request 7c1d0f00aa at 2026-11-26T10:00:00Z");
  assert.ok(Date.parse(upstream.first_seen) <= Date.parse(upstream.last_seen));
  const [{ expected }] = await sql`
    select bus.error_fingerprint(${code}, 'kimi', 'Upstream answered <n> for request <hex> at <time>') as expected`;
  assert.equal(upstream.fingerprint, expected);
  const refused = mine.filter((g) => g.message === "Connection refused");
  assert.deepEqual(refused.map((g) => g.provider).sort(), ["glm", "kimi"]);
  assert.deepEqual(refused.map((g) => g.sample_transaction_ids[0]).sort(), [other, otherProvider].sort());
});

Deno.test("resolve marks a group resolved; a new occurrence reopens it, an old one does not", async () => {
  const code = `ops_test_${crypto.randomUUID().slice(0, 8)}`;
  await failWith(code, "Quota exceeded for key 42");
  const [group] = (await groups()).filter((g) => g.code === code);
  const resolved = await ops(`/errors/${group.fingerprint.toUpperCase()}/resolve`, { body: {} });
  assert.equal(resolved.status, 200, resolved.text);
  assert.equal(resolved.json.group.status, "resolved");
  assert.equal((await groups("open")).some((g) => g.fingerprint === group.fingerprint), false);
  assert.equal((await groups("resolved")).find((g) => g.fingerprint === group.fingerprint)?.count, 1);

  const again = await failWith(code, "Quota exceeded for key 77");
  const reopened = (await groups("open")).find((g) => g.fingerprint === group.fingerprint)!;
  assert.equal(reopened.status, "open");
  assert.equal(reopened.count, 2);
  assert.equal(reopened.reopened_count, 1);
  assert.equal(reopened.sample_transaction_ids[0], again);

  // Resolved again, then folded with nothing new: it stays resolved.
  assert.equal((await ops(`/errors/${group.fingerprint}/resolve`, { body: {} })).status, 200);
  await sql`select bus.fold_error_groups()`;
  assert.equal((await groups("resolved")).find((g) => g.fingerprint === group.fingerprint)?.reopened_count, 1);
});

Deno.test("a real failed invoke and a watcher error finding each belong to a group", async () => {
  const res = await fetch(`${testStack().functionsUrl}/tool-invoke`, {
    method: "POST",
    headers: { authorization: `Bearer ${testStack().serviceRoleKey}`, "content-type": "application/json" },
    body: JSON.stringify({
      tool: "chat",
      provider: "glm",
      owner_id: crypto.randomUUID(),
      input: { messages: [{ role: "user", content: `ops ${crypto.randomUUID()} #standin {"status": 400}` }] },
    }),
  });
  const failed = await res.json();
  assert.equal(res.status, 502);
  const empty = await fetch(`${testStack().functionsUrl}/tool-invoke`, {
    method: "POST",
    headers: { authorization: `Bearer ${testStack().serviceRoleKey}`, "content-type": "application/json" },
    body: JSON.stringify({
      tool: "chat",
      provider: "kimi",
      owner_id: crypto.randomUUID(),
      input: { messages: [{ role: "user", content: `ops ${crypto.randomUUID()} #standin {"reasoning_only": true}` }] },
    }),
  }).then((r) => r.json());
  const deadline = Date.now() + 15_000;
  let watcherGroup: Group | undefined;
  while (!watcherGroup) {
    watcherGroup = (await groups()).find((g) => g.sample_transaction_ids.includes(empty.transaction_id));
    if (!watcherGroup && Date.now() > deadline) throw new Error("the empty answer was not grouped within 15 s");
    if (!watcherGroup) await new Promise((r) => setTimeout(r, 200));
  }
  assert.equal(watcherGroup.code, "empty_content");
  assert.equal(watcherGroup.source, "watcher");
  assert.equal(watcherGroup.provider, "kimi");
  const failureGroup = (await groups()).find((g) => g.sample_transaction_ids.includes(failed.transaction_id));
  assert.equal(failureGroup?.code, "provider_error");
  assert.equal(failureGroup?.provider, "glm");
  assert.equal(failureGroup?.source, "failure");
  // The watcher's message_failed finding for that failure is not a second group.
  assert.equal((await groups()).some((g) => g.code === "message_failed"), false);
});

Deno.test("resolve answers 404 for an unknown fingerprint and 400 for a malformed one; bad queries are 400", async () => {
  assert.equal((await ops(`/errors/${"0".repeat(64)}/resolve`, { body: {} })).status, 404);
  assert.equal((await ops(`/errors/xyz/resolve`, { body: {} })).status, 400);
  assert.equal((await ops(`/errors/${"0".repeat(64)}/resolve`, { body: { force: true } })).status, 400);
  assert.equal((await ops("/errors?status=closed")).status, 400);
  assert.equal((await ops("/errors?limit=0")).status, 400);
  assert.equal((await ops("/errors?limit=-1")).status, 400);
});

Deno.test("ops errors tests: close the database client", async () => {
  await sql.end({ timeout: 5 });
});
