/**
 * Push delivery end to end (CONTRACT.md §6; migration 20261121000200_realtime_delivery.sql): the real supabase-js
 * through the SDK against the local stack's Realtime, once per protocol version (supabase-platform.md §3.5, §8.3).
 * Realtime is a hint and the table is the truth: a dropped socket must not lose a transaction.
 */
import assert from "node:assert/strict";
import { createClient } from "@supabase/supabase-js";
import { adminSql, newUser, testStack, waitFor } from "../devstack/testing/env.ts";
import { expectLogged } from "../supabase/functions/_shared/_expect_logged.ts";
import {
  type BusEvent,
  BusNetworkError,
  ChecksumMismatchError,
  isBusClientError,
  type MessageEvent,
} from "../client/mod.ts";
import {
  allCompleted,
  chat,
  collectUntil,
  statusesOf,
  tamperStoredPayload,
  userBus,
  VSNS,
} from "../client/_stack_testing.ts";

/** The first subscribe status of a raw supabase-js channel, within `ms`. */
function firstStatus(channel: ReturnType<ReturnType<typeof createClient>["channel"]>, ms = 5000) {
  return new Promise<{ status: string; err?: Error }>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no status for ${channel.topic} within ${ms} ms`)), ms);
    channel.subscribe((status, err) => {
      clearTimeout(timer);
      resolve({ status, err });
    });
  });
}

for (const vsn of VSNS) {
  Deno.test(`[vsn ${vsn}] an invoke's events arrive on bus:<uid> in order: pending, then completed`, async () => {
    const { bus, sockets } = await userBus(vsn);
    const sub = bus.subscribe();
    try {
      await sub.ready;
      assert.match(sockets[0].url, new RegExp(`/realtime/v1/websocket\\?.*vsn=${vsn.replaceAll(".", "\\.")}`));
      const { data: started, error } = await bus.invoke(chat({ bytes: 3000, latency_ms: 200 }, { mode: "async" }));
      assert.equal(error, null);
      const id = started!.transaction_id;
      const events = await collectUntil(sub, allCompleted([id]));
      assert.deepEqual(statusesOf(events, id), ["pending", "completed"]);
      const completed = events.find((e): e is MessageEvent => e.type === "message" && e.status === "completed")!;
      assert.equal(completed.source, "realtime");
      const { data: meta } = await bus.meta(id);
      assert.equal(completed.checksum, meta!.checksum);
      assert.equal(completed.payload_size_bytes, meta!.payload_size_bytes);
      assert.equal(completed.tool, "chat");
      assert.equal(completed.provider, "kimi");
      assert.equal(completed.finish_reason, "stop");
      assert.equal(Date.parse(completed.updated_at), Date.parse(meta!.updated_at));
      assert.ok(!("payload" in completed), "the payload never travels over Realtime");
    } finally {
      await sub.close();
      await bus.close();
    }
  });

  Deno.test(`[vsn ${vsn}] another user, and anon, cannot join bus:<uid>`, async () => {
    const stack = testStack();
    const [alice, bob] = [await newUser(), await newUser()];
    const reason = `Unauthorized: You do not have permissions to read from this Channel topic: bus:${alice.id}`;
    for (const token of [bob.token, undefined]) {
      const supabase = createClient(stack.url, stack.anonKey, {
        accessToken: token ? () => Promise.resolve(token) : undefined,
        auth: { persistSession: false, autoRefreshToken: false },
        realtime: { vsn, reconnectAfterMs: () => 60_000 },
      });
      try {
        const channel = supabase.channel(`bus:${alice.id}`, { config: { private: true } });
        const { status, err } = await firstStatus(channel);
        assert.equal(status, "CHANNEL_ERROR", token ? "bob" : "anon");
        assert.equal(err?.message, reason);
      } finally {
        await supabase.removeAllChannels();
        await supabase.realtime.disconnect();
      }
    }
  });

  Deno.test(`[vsn ${vsn}] nobody can send on bus:<uid>, not even its owner`, async () => {
    const stack = testStack();
    const { bus, user } = await userBus(vsn);
    const owner = createClient(stack.url, stack.anonKey, {
      accessToken: () => Promise.resolve(user.token),
      auth: { persistSession: false, autoRefreshToken: false },
      realtime: { vsn, reconnectAfterMs: () => 60_000 },
    });
    const sub = bus.subscribe();
    try {
      await sub.ready;
      const channel = owner.channel(`bus:${user.id}`, { config: { private: true, broadcast: { self: true } } });
      const forged: unknown[] = [];
      channel.on("broadcast", { event: "message" }, (m) => forged.push(m.payload));
      assert.equal((await firstStatus(channel)).status, "SUBSCRIBED", "the owner may receive");
      const fake = { transaction_id: crypto.randomUUID(), status: "completed", updated_at: new Date().toISOString() };
      await channel.send({ type: "broadcast", event: "message", payload: fake });
      // Broadcasts are delivered in order: once a real event has arrived, an accepted forgery would have too.
      const { data } = await bus.invoke(chat());
      const events = await collectUntil(sub, allCompleted([data!.transaction_id]));
      assert.ok(!events.some((e) => e.transaction_id === fake.transaction_id), "the forged event reached the SDK");
      // The raw channel is another socket: its copies of the real events may land a moment after the SDK's.
      await waitFor(
        "the real events on the owner's raw channel",
        () => Promise.resolve(forged.length >= 2 ? true : undefined),
        5_000,
      );
      assert.ok(forged.every((p) => (p as { transaction_id: string }).transaction_id !== fake.transaction_id));
      assert.ok(forged.length >= 2, "the owner's raw channel received the real events");
    } finally {
      await sub.close();
      await bus.close();
      await owner.removeAllChannels();
      await owner.realtime.disconnect();
    }
  });

  for (const drop of ["realtime.disconnect()", "the socket closing under the client"] as const) {
    Deno.test(`[vsn ${vsn}] no transaction is lost across ${drop}`, async () => {
      const { bus, sockets, offline, warnings } = await userBus(vsn);
      const sub = bus.subscribe();
      try {
        await sub.ready;
        const before = [await invokeSync(bus), await invokeSync(bus)];
        const seen = await collectUntil(sub, allCompleted(before));
        offline.on = true; // no reconnect can succeed until the "during" messages are complete
        const socket = sockets.at(-1)!;
        const closed = new Promise((resolve) => socket.addEventListener("close", resolve, { once: true }));
        if (drop === "realtime.disconnect()") await bus.supabase.realtime.disconnect();
        else socket.close();
        await closed;
        // These complete while the client is offline; their broadcasts are gone for this client.
        const during = [await invokeSync(bus), await invokeSync(bus), await invokeSync(bus)];
        offline.on = false;
        const { data: slow } = await bus.invoke(chat({ latency_ms: 1500 }, { mode: "async" }));
        const after = [slow!.transaction_id, await invokeSync(bus)];
        const ids = [...before, ...during, ...after];
        const events = [...seen, ...await collectUntil(sub, allCompleted([...during, ...after]), 30_000)];
        for (const id of ids) assert.equal(statusesOf(events, id).filter((s) => s === "completed").length, 1, id);
        assert.equal(new Set(events.map(key)).size, events.length, "no event was yielded twice");
        const caughtUp = events.filter((e) => during.includes(e.transaction_id));
        assert.ok(caughtUp.every((e) => e.source === "catch_up"), JSON.stringify(caughtUp));
        assert.ok(sockets.length >= 2, "the client opened a new socket");
        assert.ok(warnings.length > 0, "the drop was reported as a warning");
      } finally {
        await sub.close();
        await bus.close();
      }
    });
  }
}

Deno.test("call() invokes, waits for the push, fetches and verifies the payload", async () => {
  const { bus } = await userBus("2.0.0");
  try {
    const { data, error } = await bus.call(chat({ json: true, latency_ms: 300 }), { pollIntervalMs: 60_000 });
    assert.equal(error, null);
    assert.equal(data!.status, "completed");
    const { data: meta } = await bus.meta(data!.transaction_id);
    assert.equal(data!.payload.checksum, meta!.checksum);
    assert.equal(data!.payload.size, meta!.payload_size_bytes);
    const completion = data!.payload.json<{ choices: Array<{ message: { content: string } }> }>();
    assert.doesNotThrow(() => JSON.parse(completion.choices[0].message.content));
  } finally {
    await bus.close();
  }
});

Deno.test("call() returns message_failed when the provider fails", async () => {
  const { bus } = await userBus("1.0.0");
  try {
    const { data, error } = await bus.call(chat({ status: 400 }), { timeoutMs: 20_000 });
    assert.equal(data, null);
    assert.ok(isBusClientError(error));
    assert.equal(error.code, "message_failed");
    assert.match(error.transactionId!, /^[0-9a-f-]{36}$/);
  } finally {
    await bus.close();
  }
});

Deno.test("call() still finishes by polling when Realtime refuses the socket", async () => {
  const { bus, warnings } = await userBus("2.0.0", {
    realtime: { params: { apikey: "not-a-jwt" }, reconnectAfterMs: () => 60_000 },
  });
  try {
    const started = Date.now();
    const { data, error } = await bus.call(chat({ bytes: 1000 }), { joinTimeoutMs: 300, pollIntervalMs: 200 });
    assert.equal(error, null);
    assert.equal(data!.payload.size, 1000);
    assert.ok(Date.now() - started < 10_000);
    assert.ok(warnings.length > 0, "the refused socket was reported");
  } finally {
    await bus.close();
  }
});

Deno.test("fetch() refuses a payload whose stored bytes were tampered with", async () => {
  const { bus } = await userBus("2.0.0");
  try {
    const { data: small } = await bus.invoke(chat({ bytes: 2000 }));
    await tamperStoredPayload(small!.transaction_id);
    const { data, error } = await bus.fetch(small!.transaction_id);
    assert.equal(data, null);
    assert.ok(error instanceof ChecksumMismatchError, String(error));
    assert.equal(error.source, "server", "message-fetch verifies a one-chunk payload before answering");

    // Larger payloads stream: message-fetch finds the mismatch at the end and breaks the stream off.
    // Random text barely compresses, so the stored bytes span two chunks of 1 MiB and message-fetch streams them.
    const { data: large } = await bus.invoke(chat({ content: randomText(1_500_000) }));
    const sql = adminSql();
    const [row] = await sql`select chunk_count from public.message_bus where transaction_id = ${large!.transaction_id}`;
    await sql.end();
    assert.ok(row.chunk_count >= 2, `expected a payload of several chunks, got ${row.chunk_count}`);
    await tamperStoredPayload(large!.transaction_id);
    // Cancelling the broken-off body can fail too; the client warns about it (expected here, not printed).
    const { result: big } = await expectLogged(
      { may: [/^\[bus client\] cancelling the body: /] },
      () => bus.fetch(large!.transaction_id),
    );
    assert.equal(big.data, null);
    assert.ok(big.error instanceof BusNetworkError || big.error instanceof ChecksumMismatchError, String(big.error));
  } finally {
    await bus.close();
  }
});

Deno.test("fetch() detects bytes changed in transit, against the real checksum headers", async () => {
  // A man in the middle that flips one byte of every payload body.
  const mitm: typeof fetch = async (input, init) => {
    const res = await fetch(input, init);
    if (!/message-fetch\/[0-9a-f-]{36}$/.test(String(input)) || res.status !== 200) return res;
    const bytes = new Uint8Array(await res.arrayBuffer());
    bytes[bytes.length >> 1] ^= 0x20;
    return new Response(bytes, { status: 200, headers: res.headers });
  };
  const { bus } = await userBus("2.0.0", { fetch: mitm });
  try {
    const { data: started } = await bus.invoke(chat({ bytes: 5000 }));
    const { data, error } = await bus.fetch(started!.transaction_id);
    assert.equal(data, null);
    assert.ok(error instanceof ChecksumMismatchError);
    assert.equal(error.source, "client");
    assert.equal(error.expected, started!.status === "completed" ? started!.checksum : "not completed");
  } finally {
    await bus.close();
  }
});

Deno.test("list() returns the caller's messages changed since a time, oldest first", async () => {
  const { bus } = await userBus("2.0.0");
  try {
    const since = new Date(Date.now() - 1000);
    const ids = [await invokeSync(bus), await invokeSync(bus)];
    const { data } = await bus.list({ since });
    assert.deepEqual(data!.map((m) => m.transaction_id), ids);
    assert.ok(data!.every((m) => m.status === "completed"));
  } finally {
    await bus.close();
  }
});

async function invokeSync(bus: Awaited<ReturnType<typeof userBus>>["bus"]): Promise<string> {
  const { data, error } = await bus.invoke(chat({ bytes: 400 }));
  assert.equal(error, null);
  assert.equal(data!.status, "completed");
  return data!.transaction_id;
}

function key(e: BusEvent): string {
  return `${e.transaction_id}/${e.type === "message" ? e.status : "observation"}`;
}

/** `length` characters of random base64 (incompressible enough to keep gzip from shrinking it below 1 MiB). */
function randomText(length: number): string {
  const bytes = new Uint8Array(Math.ceil((length * 3) / 4));
  for (let at = 0; at < bytes.length; at += 65_536) crypto.getRandomValues(bytes.subarray(at, at + 65_536));
  let out = "";
  for (let at = 0; at < bytes.length; at += 30_000) {
    out += btoa(String.fromCharCode(...bytes.subarray(at, at + 30_000)));
  }
  return out.slice(0, length);
}
