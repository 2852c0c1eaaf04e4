/**
 * DB tap delivery with the real supabase-js (supabase-platform.md §3.1, §3.7, §8.3): committed realtime.send rows
 * reach private subscribers in commit order, rolled-back ones never do, public and private stay apart.
 */
import assert from "node:assert/strict";
import { NOTIFY_CHANNEL } from "./tap.ts";
import {
  collect,
  connect,
  createTestPolicies,
  disconnect,
  startStack,
  subscribe,
  type TestStack,
  userToken,
  VSNS,
  waitFor,
} from "./_testing.ts";

let stack: TestStack;
const cases: [string, () => Promise<void>][] = [];

/** A subscribed private channel `rt-test:<uid>` of a fresh user. */
async function privateSubscriber(vsn: "1.0.0" | "2.0.0", event = "tx") {
  const uid = crypto.randomUUID();
  const client = connect(stack, { vsn, token: await userToken(uid) });
  const channel = client.channel(`rt-test:${uid}`, { config: { private: true } });
  const got = collect(channel, event);
  const { status, err } = await subscribe(channel);
  assert.deepEqual(status, "SUBSCRIBED", `subscribe failed: ${err}`);
  return { uid, topic: `rt-test:${uid}`, client, got };
}

function send(topic: string, payload: Record<string, string>, event = "tx", isPrivate = true) {
  return stack.sql`select realtime.send(${stack.sql.json(payload)}, ${event}, ${topic}, ${isPrivate})`;
}

for (const vsn of VSNS) {
  cases.push([`vsn ${vsn}: a committed private realtime.send arrives with its payload and meta.id`, async () => {
    const s = await privateSubscriber(vsn);
    try {
      await send(s.topic, { transaction_id: "tx-1", status: "completed" });
      await waitFor(() => s.got.length === 1, "the broadcast");
      const [row] = await stack.sql<{ id: string }[]>`select id from realtime.messages where topic = ${s.topic}`;
      assert.deepEqual(s.got[0], {
        type: "broadcast",
        event: "tx",
        payload: { transaction_id: "tx-1", status: "completed", id: row.id },
        meta: { id: row.id },
      });
    } finally {
      await disconnect(s.client);
    }
  }]);

  cases.push([`vsn ${vsn}: a rolled-back send is never delivered`, async () => {
    const s = await privateSubscriber(vsn);
    try {
      await stack.sql.begin(async (tx) => {
        await tx`select realtime.send(${tx.json({ n: "rolled-back" })}, 'tx', ${s.topic}, true)`;
        await tx`select 1/0`;
      }).catch((err) => assert.match(String(err), /division by zero/));
      await send(s.topic, { n: "marker" });
      // Delivery is in commit order, so once the later marker is here the rolled-back one can no longer come.
      await waitFor(() => s.got.length >= 1, "the marker");
      assert.deepEqual(s.got.map((m) => (m.payload as { n: string }).n), ["marker"]);
    } finally {
      await disconnect(s.client);
    }
  }]);

  cases.push([`vsn ${vsn}: many sends across transactions arrive in commit order`, async () => {
    const s = await privateSubscriber(vsn);
    const a = await stack.sql.reserve();
    const b = await stack.sql.reserve();
    try {
      // "first" is inserted before "second" but committed after it.
      await a`begin`;
      await a`select realtime.send(${a.json({ n: "first" })}, 'tx', ${s.topic}, true)`;
      await b`begin`;
      await b`select realtime.send(${b.json({ n: "second" })}, 'tx', ${s.topic}, true)`;
      await b`commit`;
      await a`commit`;
      const expected = ["second", "first"];
      for (let t = 0; t < 10; t++) {
        await stack.sql.begin(async (tx) => {
          for (let i = 0; i < 3; i++) await tx`select realtime.send(${tx.json({ n: `${t}.${i}` })}, 'tx', ${s.topic})`;
        });
        for (let i = 0; i < 3; i++) expected.push(`${t}.${i}`);
      }
      await waitFor(() => s.got.length >= expected.length, `${expected.length} broadcasts`);
      assert.deepEqual(s.got.map((m) => (m.payload as { n: string }).n), expected);
    } finally {
      a.release();
      b.release();
      await disconnect(s.client);
    }
  }]);

  cases.push([`vsn ${vsn}: public and private channels of one name only get their own broadcasts`, async () => {
    const s = await privateSubscriber(vsn);
    const pub = connect(stack, { vsn });
    try {
      const channel = pub.channel(s.topic);
      const pubGot = collect(channel, "tx");
      assert.deepEqual((await subscribe(channel)).status, "SUBSCRIBED");
      await send(s.topic, { n: "private" }, "tx", true);
      await send(s.topic, { n: "public" }, "tx", false);
      await waitFor(() => s.got.length >= 1 && pubGot.length >= 1, "both broadcasts");
      await send(s.topic, { n: "private-marker" }, "tx", true);
      await send(s.topic, { n: "public-marker" }, "tx", false);
      await waitFor(() => s.got.length >= 2 && pubGot.length >= 2, "both markers");
      assert.deepEqual(s.got.map((m) => (m.payload as { n: string }).n), ["private", "private-marker"]);
      assert.deepEqual(pubGot.map((m) => (m.payload as { n: string }).n), ["public", "public-marker"]);
    } finally {
      await disconnect(pub);
      await disconnect(s.client);
    }
  }]);
}

cases.push(["a private channel joined with presence read only gets no broadcasts (§3.7)", async () => {
  const s = await privateSubscriber("2.0.0");
  try {
    const channel = s.client.channel(`rt-test:presence:${s.uid}`, {
      config: { private: true, presence: { enabled: true } },
    });
    const got = collect(channel, "tx");
    const { status, err } = await subscribe(channel);
    assert.equal(status, "SUBSCRIBED", `subscribe failed: ${err}`);
    await send(`rt-test:presence:${s.uid}`, { n: "hidden" });
    await send(s.topic, { n: "marker" });
    // One tap delivers in commit order to all channels, so the marker on the other channel comes last.
    await waitFor(() => s.got.length === 1, "the marker");
    assert.deepEqual(got, []);
  } finally {
    await disconnect(s.client);
  }
}]);

cases.push(["realtime.send_binary reaches a vsn 2 client as an ArrayBuffer and is skipped for vsn 1", async () => {
  const v2 = await privateSubscriber("2.0.0", "bin");
  const v1 = connect(stack, { vsn: "1.0.0", token: await userToken(v2.uid) });
  try {
    const channel = v1.channel(v2.topic, { config: { private: true } });
    const v1Got = collect(channel, "bin");
    assert.deepEqual((await subscribe(channel)).status, "SUBSCRIBED");
    await stack.sql`select realtime.send_binary(${new Uint8Array([1, 2, 255])}, 'bin', ${v2.topic})`;
    await waitFor(() => v2.got.length === 1, "the binary broadcast");
    const payload = v2.got[0].payload;
    assert(payload instanceof ArrayBuffer, `expected an ArrayBuffer, got ${payload}`);
    assert.deepEqual([...new Uint8Array(payload)], [1, 2, 255]);
    assert.deepEqual(typeof (v2.got[0].meta as { id: string }).id, "string");
    await send(v2.topic, { n: "marker" }, "bin");
    await waitFor(() => v1Got.length === 1, "the JSON marker on vsn 1");
    assert.deepEqual((v1Got[0].payload as { n: string }).n, "marker");
  } finally {
    await disconnect(v1);
    await disconnect(v2.client);
  }
}]);

cases.push(["a row too large for its notification is read back: whole, and in commit order", async () => {
  const s = await privateSubscriber("2.0.0");
  const bin = await privateSubscriber("2.0.0", "bin");
  const notices: Record<string, unknown>[] = [];
  const listening = await stack.sql.listen(NOTIFY_CHANNEL, (raw) => notices.push(JSON.parse(raw)));
  try {
    const big = "é漢🙂/".repeat(1000); // 10 000 bytes of UTF-8: over the 8000-byte notification limit
    const bytes = new Uint8Array(6000).map((_, i) => (i * 7) % 256); // 12 000 hex digits
    await send(s.topic, { n: "small-1" });
    await send(s.topic, { n: "big", text: big });
    await send(s.topic, { n: "small-2" });
    await stack.sql`select realtime.send_binary(${bytes}, 'bin', ${bin.topic})`;
    await waitFor(() => s.got.length === 3 && bin.got.length === 1, "three broadcasts and a binary one");
    assert.deepEqual(s.got.map((m) => (m.payload as { n: string }).n), ["small-1", "big", "small-2"]);
    assert.equal((s.got[1].payload as { text: string }).text, big);
    assert.deepEqual(new Uint8Array(bin.got[0].payload as ArrayBuffer), bytes);
    // The small rows came in their notifications; the large ones as keys only, read back by the tap.
    const mine = notices.filter((n) => [s.topic, bin.topic].includes(n.topic as string) || !("topic" in n));
    assert.deepEqual(mine.map((n) => "topic" in n), [true, false, true, false], JSON.stringify(mine).slice(0, 300));
  } finally {
    await listening.unlisten();
    await disconnect(s.client);
    await disconnect(bin.client);
  }
}]);

cases.push(["realtime.broadcast_changes from a row trigger delivers the row change", async () => {
  const s = await privateSubscriber("2.0.0", "INSERT");
  await stack.sql.unsafe(`
    create table if not exists public.rt_delivery_items (id int primary key, owner uuid not null);
    create or replace function public.rt_delivery_items_broadcast() returns trigger language plpgsql as $$
    begin
      perform realtime.broadcast_changes('rt-test:' || new.owner, tg_op, tg_op, tg_table_name, tg_table_schema, new, old);
      return null;
    end $$;
    create or replace trigger rt_delivery_items_broadcast after insert on public.rt_delivery_items
      for each row execute function public.rt_delivery_items_broadcast();`);
  try {
    await stack.sql`insert into public.rt_delivery_items (id, owner) values (7, ${s.uid})`;
    await waitFor(() => s.got.length === 1, "the row change");
    const { id, ...change } = s.got[0].payload as Record<string, unknown>;
    assert.deepEqual(id, (s.got[0].meta as { id: string }).id);
    assert.deepEqual(change, {
      operation: "INSERT",
      table: "rt_delivery_items",
      schema: "public",
      record: { id: 7, owner: s.uid },
      old_record: null,
    });
  } finally {
    await stack.sql.unsafe(`drop table if exists public.rt_delivery_items;
      drop function if exists public.rt_delivery_items_broadcast()`);
    await disconnect(s.client);
  }
}]);

Deno.test("the DB tap delivers committed broadcasts to the real supabase-js client", async (t) => {
  stack = await startStack();
  const dropPolicies = await createTestPolicies(stack.sql, "rt_delivery_test", "rt-test:");
  try {
    for (const [name, fn] of cases) await t.step(name, fn);
  } finally {
    await dropPolicies();
    await stack.stop();
  }
});
