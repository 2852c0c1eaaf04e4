/**
 * Channel behaviour with the real supabase-js (supabase-platform.md §3.2, §3.6, §3.7): join authorization,
 * heartbeats, client broadcasts with self/ack, leave, token expiry and access-token re-checks.
 */
import assert from "node:assert/strict";
import type { RealtimeChannel } from "@supabase/supabase-js";
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

/** Records the `system` events of a channel (register before subscribing). */
function systemEvents(channel: RealtimeChannel): Record<string, unknown>[] {
  const got: Record<string, unknown>[] = [];
  channel.on("system", {}, (payload) => got.push(payload));
  return got;
}

for (const vsn of VSNS) {
  cases.push([`vsn ${vsn}: joining another user's private topic fails with the Unauthorized reason`, async () => {
    const owner = crypto.randomUUID();
    const client = connect(stack, { vsn, token: await userToken(crypto.randomUUID()) });
    try {
      const { status, err } = await subscribe(client.channel(`rt-test:${owner}`, { config: { private: true } }));
      assert.equal(status, "CHANNEL_ERROR");
      assert.equal(
        err?.message,
        `Unauthorized: You do not have permissions to read from this Channel topic: rt-test:${owner}`,
      );
    } finally {
      await disconnect(client);
    }
  }]);

  cases.push([`vsn ${vsn}: heartbeats are answered`, async () => {
    const statuses: string[] = [];
    const client = connect(stack, { vsn, heartbeatIntervalMs: 200, heartbeatCallback: (s) => statuses.push(s) });
    try {
      assert.equal((await subscribe(client.channel(`rt-pub-${crypto.randomUUID()}`))).status, "SUBSCRIBED");
      await waitFor(() => statuses.filter((s) => s === "ok").length >= 3, "three heartbeat replies");
      assert.ok(!statuses.includes("timeout"), `statuses: ${statuses}`);
    } finally {
      await disconnect(client);
    }
  }]);

  cases.push([`vsn ${vsn}: leave is acknowledged and closes the channel`, async () => {
    const uid = crypto.randomUUID();
    const client = connect(stack, { vsn, token: await userToken(uid) });
    try {
      const channel = client.channel(`rt-test:${uid}`, { config: { private: true } });
      const statuses: string[] = [];
      channel.subscribe((s) => statuses.push(s));
      await waitFor(() => statuses.includes("SUBSCRIBED"), "the join");
      assert.equal(await channel.unsubscribe(), "ok");
      assert.deepEqual(statuses, ["SUBSCRIBED", "CLOSED"]);
    } finally {
      await disconnect(client);
    }
  }]);
}

cases.push(["client broadcasts honour self and ack across vsn 1 and vsn 2 sockets", async () => {
  const topic = `rt-pub-${crypto.randomUUID()}`;
  const a = connect(stack, { vsn: "2.0.0" });
  const b = connect(stack, { vsn: "1.0.0" });
  try {
    const chA = a.channel(topic, { config: { broadcast: { self: true, ack: true } } });
    const chB = b.channel(topic);
    const gotA = collect(chA, "hi");
    const gotB = collect(chB, "hi");
    assert.equal((await subscribe(chA)).status, "SUBSCRIBED");
    assert.equal((await subscribe(chB)).status, "SUBSCRIBED");
    assert.equal(await chA.send({ type: "broadcast", event: "hi", payload: { from: "a" } }), "ok");
    await chB.send({ type: "broadcast", event: "hi", payload: { from: "b" } });
    await waitFor(() => gotA.length === 2 && gotB.length === 1, "the relayed broadcasts");
    assert.deepEqual(gotA.map((m) => m.payload), [{ from: "a" }, { from: "b" }]);
    assert.deepEqual(gotB, [{ type: "broadcast", event: "hi", payload: { from: "a" } }]);
    assert.equal(gotA[1].event, "hi");
  } finally {
    await disconnect(a);
    await disconnect(b);
  }
}]);

cases.push(["a private client broadcast needs the insert policy; without it it is dropped and not acked", async () => {
  const uid = crypto.randomUUID();
  const client = connect(stack, { vsn: "2.0.0", token: await userToken(uid) });
  try {
    const rw = client.channel(`rt-test:${uid}`, { config: { private: true, broadcast: { self: true, ack: true } } });
    const ro = client.channel(`rt-test:ro:${uid}`, { config: { private: true, broadcast: { self: true, ack: true } } });
    const gotRw = collect(rw, "hi");
    const gotRo = collect(ro, "hi");
    assert.equal((await subscribe(rw)).status, "SUBSCRIBED");
    assert.equal((await subscribe(ro)).status, "SUBSCRIBED");
    assert.equal(await ro.send({ type: "broadcast", event: "hi", payload: { n: 1 } }, { timeout: 300 }), "timed out");
    assert.equal(await rw.send({ type: "broadcast", event: "hi", payload: { n: 2 } }), "ok");
    await waitFor(() => gotRw.length === 1, "the allowed broadcast");
    assert.deepEqual(gotRo, []);
    assert.deepEqual(gotRw[0].payload, { n: 2 });
  } finally {
    await disconnect(client);
  }
}]);

cases.push(["the channel is closed with a system error when the access token expires", async () => {
  const uid = crypto.randomUUID();
  const token = await userToken(uid, 2);
  const client = connect(stack, { vsn: "2.0.0", accessToken: () => Promise.resolve(token) });
  try {
    const channel = client.channel(`rt-test:${uid}`, { config: { private: true } });
    const system = systemEvents(channel);
    const statuses: string[] = [];
    channel.subscribe((s) => statuses.push(s));
    await waitFor(() => statuses.includes("SUBSCRIBED"), "the join");
    await waitFor(() => statuses.includes("CLOSED"), "the channel to close at expiry", 6000);
    assert.equal(system.length, 1);
    assert.equal(system[0].extension, "system");
    assert.equal(system[0].status, "error");
    assert.equal(system[0].channel, `rt-test:${uid}`);
    assert.match(String(system[0].message), /^Token has expired \d+ seconds ago$/);
  } finally {
    await disconnect(client);
  }
}]);

cases.push(["an access_token that loses read access closes the channel (legacy anon key + setAuth)", async () => {
  // supabase-js treats its accessToken callback (session token, else the API key) as the source of truth: after
  // the join it sends the anon JWT as access_token, which the server re-checks (§3.6). sb_ keys are ignored instead.
  const uid = crypto.randomUUID();
  const client = connect(stack, { vsn: "2.0.0", apikey: stack.keys.anon, token: await userToken(uid) });
  try {
    const channel = client.channel(`rt-test:${uid}`, { config: { private: true } });
    const system = systemEvents(channel);
    const statuses: string[] = [];
    channel.subscribe((s) => statuses.push(s));
    await waitFor(() => statuses.includes("CLOSED"), "the channel to close");
    assert.ok(statuses.includes("SUBSCRIBED"), `statuses: ${statuses}`);
    assert.equal(system[0]?.message, `You do not have permissions to read from this Channel topic: rt-test:${uid}`);
  } finally {
    await disconnect(client);
  }
}]);

cases.push([
  "POST /api/broadcast answers 202, delivers public messages and private ones only with write access",
  async () => {
    const uid = crypto.randomUUID();
    const client = connect(stack, { vsn: "1.0.0", token: await userToken(uid) });
    try {
      const priv = client.channel(`rt-test:${uid}`, { config: { private: true } });
      const pub = client.channel(`rt-pub-${uid}`);
      const gotPriv = collect(priv, "rest");
      const gotPub = collect(pub, "rest");
      assert.equal((await subscribe(priv)).status, "SUBSCRIBED");
      assert.equal((await subscribe(pub)).status, "SUBSCRIBED");
      const post = async (authorization: string, message: Record<string, unknown>) => {
        const res = await fetch(`${stack.url}/realtime/v1/api/broadcast`, {
          method: "POST",
          headers: { apikey: stack.keys.publishable, authorization, "content-type": "application/json" },
          body: JSON.stringify({ messages: [{ event: "rest", ...message }] }),
        });
        assert.equal(res.status, 202);
        await res.body?.cancel();
      };
      await post(`Bearer ${stack.keys.anon}`, { topic: `rt-test:${uid}`, payload: { n: 1 }, private: true });
      await post(`Bearer ${await userToken(uid)}`, { topic: `rt-test:${uid}`, payload: { n: 2 }, private: true });
      await post(`Bearer ${stack.keys.anon}`, { topic: `rt-pub-${uid}`, payload: { n: 3 } });
      await waitFor(() => gotPriv.length === 1 && gotPub.length === 1, "the REST broadcasts");
      assert.deepEqual(gotPriv, [{ type: "broadcast", event: "rest", payload: { n: 2 } }]);
      assert.deepEqual(gotPub, [{ type: "broadcast", event: "rest", payload: { n: 3 } }]);
    } finally {
      await disconnect(client);
    }
  },
]);

Deno.test("channels of the Realtime stand-in behave like hosted Realtime for the real supabase-js", async (t) => {
  stack = await startStack();
  const dropPolicies = await createTestPolicies(stack.sql, "rt_channel_test", "rt-test:");
  try {
    for (const [name, fn] of cases) await t.step(name, fn);
  } finally {
    await dropPolicies();
    await stack.stop();
  }
});
