/**
 * The feed and subscriptions against a scripted stand-in for supabase-js's channel API (the real client against the
 * real stack is tested in tests/realtime_delivery_test.ts).
 */
import assert from "node:assert/strict";
import type { SupabaseClient } from "@supabase/supabase-js";
import { Feed, type FeedDeps } from "./feed.ts";
import { Subscription } from "./subscribe.ts";
import { RealtimeError } from "./errors.ts";
import type { BusEvent, MessageMeta } from "./types.ts";
import { rejection } from "./_testing.ts";

type StatusCb = (status: string, err?: Error) => void;

class FakeChannel {
  state = "closed";
  handlers = new Map<string, (msg: { payload: unknown }) => void>();
  status: StatusCb = () => {};
  constructor(readonly topic: string, readonly opts: unknown) {}
  on(_type: string, filter: { event: string }, cb: (msg: { payload: unknown }) => void) {
    this.handlers.set(filter.event, cb);
    return this;
  }
  subscribe(cb: StatusCb) {
    this.state = "joining";
    this.status = cb;
    return this;
  }
  push(event: string, payload: unknown) {
    this.handlers.get(event)?.({ payload });
  }
  report(status: string, err?: Error) {
    this.state = status === "SUBSCRIBED" ? "joined" : status === "CLOSED" ? "closed" : "errored";
    this.status(status, err);
  }
}

function fakeSupabase() {
  const channels: FakeChannel[] = [];
  const removed: FakeChannel[] = [];
  const supabase = {
    realtime: { setAuth: () => Promise.resolve(), isConnected: () => true },
    channel: (topic: string, opts: unknown) => {
      const c = new FakeChannel(topic, opts);
      channels.push(c);
      return c;
    },
    removeChannel: (c: FakeChannel) => {
      c.state = "closed";
      removed.push(c);
      return Promise.resolve("ok");
    },
  };
  return { supabase: supabase as unknown as SupabaseClient, channels, removed };
}

const ID = "01a1fe64-70be-7fb8-b8b1-1411b3f307c5";

function row(id: string, status: string, updatedAt: string): MessageMeta {
  return {
    transaction_id: id,
    status,
    tool: "chat",
    provider: "kimi",
    updated_at: updatedAt,
    watcher: null,
  } as MessageMeta;
}

function setup(list: FeedDeps["list"] = () => Promise.resolve([])) {
  const fake = fakeSupabase();
  const calls: Date[] = [];
  const warnings: string[] = [];
  const feed = new Feed({
    supabase: fake.supabase,
    topic: () => Promise.resolve("bus:alice"),
    list: (since, limit) => {
      calls.push(since);
      return list(since, limit);
    },
    marginMs: 5000,
    catchUpIntervalMs: 0,
    warn: (m) => warnings.push(m),
  });
  return { ...fake, feed, calls, warnings };
}

async function until(what: string, ok: () => boolean, ms = 5000) {
  const deadline = Date.now() + ms;
  while (!ok()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

/** The next `n` events, or fails after `ms`. */
async function take(sub: Subscription, n: number, ms = 5000): Promise<BusEvent[]> {
  const out: BusEvent[] = [];
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`got ${out.length} of ${n} events within ${ms} ms`)), ms);
  });
  try {
    while (out.length < n) {
      const r = await Promise.race([sub.next(), timeout]);
      if (r.done) break;
      out.push(r.value);
    }
  } finally {
    clearTimeout(timer);
  }
  return out;
}

Deno.test("subscribe() joins bus:<uid> privately, catches up once joined, and yields each status once", async () => {
  const started = Date.now();
  const at = (ms: number) => new Date(started + ms).toISOString();
  const t = setup(() => Promise.resolve([row(ID, "pending", at(0))]));
  const sub = new Subscription(t.feed);
  await until("the channel", () => t.channels.length === 1);
  const channel = t.channels[0];
  assert.equal(channel.topic, "bus:alice");
  assert.deepEqual(channel.opts, { config: { private: true } });
  channel.report("SUBSCRIBED");
  await sub.ready;
  channel.push("message", { transaction_id: ID, status: "pending", updated_at: at(0) });
  channel.push("message", { transaction_id: ID, status: "completed", updated_at: at(1) });
  const events = await take(sub, 2);
  // The catch-up found "pending" too (after the push, or before it): it is yielded once either way.
  assert.deepEqual(events.map((e) => e.type === "message" && e.status), ["pending", "completed"]);
  await until("the catch-up", () => t.calls.length === 1);
  let timer: ReturnType<typeof setTimeout> | undefined;
  const quiet = new Promise((r) => (timer = setTimeout(() => r("nothing more"), 50)));
  assert.equal(await Promise.race([sub.next(), quiet]), "nothing more");
  clearTimeout(timer);
  assert.equal(t.calls.length, 1, "one catch-up after the join");
  assert.ok(
    Math.abs(t.calls[0].getTime() - (started - 5000)) < 1000,
    "the first catch-up starts a margin before the start",
  );
  await sub.close();
  assert.deepEqual(t.removed, [channel]);
});

Deno.test("a catch-up pages through the list and resumes from the last updated_at seen", async () => {
  const base = Date.now();
  const page = Array.from(
    { length: 1000 },
    (_, i) => row(crypto.randomUUID(), "completed", new Date(base + i).toISOString()),
  );
  let calls = 0;
  const t = setup(() =>
    Promise.resolve(calls++ === 0 ? page : [row(ID, "completed", new Date(base + 2000).toISOString())])
  );
  const sub = new Subscription(t.feed);
  await until("the channel", () => t.channels.length === 1);
  t.channels[0].report("SUBSCRIBED");
  const events = await take(sub, 1001);
  assert.equal(events.length, 1001);
  assert.equal(t.calls[1].getTime(), base + 999 - 1, "the next page starts 1 ms before the last row");
  await sub.close();
});

Deno.test("a refused join rejects ready and ends the iteration with a RealtimeError", async () => {
  const t = setup();
  const sub = new Subscription(t.feed);
  await until("the channel", () => t.channels.length === 1);
  const reason = "Unauthorized: You do not have permissions to read from this Channel topic: bus:alice";
  t.channels[0].report("CHANNEL_ERROR", new Error(reason));
  const err = await rejection(() => sub.ready, RealtimeError);
  assert.equal(err.code, "realtime_unauthorized");
  assert.equal(err.message, reason);
  await rejection(() => sub.next(), RealtimeError);
  assert.deepEqual(await sub.next(), { value: undefined, done: true });
  await until("the channel to be left", () => t.removed.length === 1);
});

Deno.test("a channel that stays down is replaced, and the new join catches up from the last event seen", async () => {
  const t = setup();
  const sub = new Subscription(t.feed);
  await until("the channel", () => t.channels.length === 1);
  t.channels[0].report("SUBSCRIBED");
  t.channels[0].push("message", { transaction_id: ID, status: "pending", updated_at: "2026-11-21T10:00:00.000Z" });
  await take(sub, 1);
  t.channels[0].report("CHANNEL_ERROR", new Error("socket closed"));
  await until("a new channel", () => t.channels.length === 2, 5000);
  assert.deepEqual(t.removed, [t.channels[0]]);
  t.channels[1].report("SUBSCRIBED");
  await until("the catch-up", () => t.calls.length === 2);
  assert.equal(t.calls[1].toISOString(), "2026-11-21T09:59:55.000Z");
  await sub.close();
});

Deno.test("subscriptions share one channel, which is left when the last one closes", async () => {
  const t = setup();
  const a = new Subscription(t.feed);
  await until("the channel", () => t.channels.length === 1);
  t.channels[0].report("SUBSCRIBED");
  await a.ready;
  const b = new Subscription(t.feed);
  await b.ready;
  assert.equal(t.channels.length, 1);
  t.channels[0].push("message", { transaction_id: ID, status: "failed", updated_at: "2026-11-21T10:00:00.000Z" });
  assert.equal(((await a.next()).value as BusEvent).transaction_id, ID);
  assert.equal(((await b.next()).value as BusEvent).transaction_id, ID);
  await a.close();
  assert.equal(t.removed.length, 0);
  await b.close();
  assert.equal(t.removed.length, 1);
});

Deno.test("the abort signal ends a waiting iteration", async () => {
  const t = setup();
  const stop = new AbortController();
  const sub = new Subscription(t.feed, { signal: stop.signal });
  await until("the channel", () => t.channels.length === 1);
  t.channels[0].report("SUBSCRIBED");
  const waiting = sub.next();
  stop.abort();
  assert.deepEqual(await waiting, { value: undefined, done: true });
  await until("the channel to be left", () => t.removed.length === 1);
  const late = new Subscription(t.feed, { signal: stop.signal });
  assert.deepEqual(await late.next(), { value: undefined, done: true });
  await rejection(() => late.ready, Error);
});

Deno.test("subscribe({ since }) replays from that time for that subscription only", async () => {
  const t = setup((since) =>
    Promise.resolve(
      since.getTime() === Date.parse("2026-01-01T00:00:00Z") ? [row(ID, "completed", "2026-01-01T00:00:01Z")] : [],
    )
  );
  const a = new Subscription(t.feed);
  await until("the channel", () => t.channels.length === 1);
  t.channels[0].report("SUBSCRIBED");
  await a.ready;
  const b = new Subscription(t.feed, { since: "2026-01-01T00:00:00Z" });
  const [event] = await take(b, 1);
  assert.equal(event.transaction_id, ID);
  assert.equal(event.source, "catch_up");
  t.channels[0].report("CHANNEL_ERROR", new Error("socket closed"));
  t.channels[0].report("SUBSCRIBED");
  await until("the rejoin catch-up", () => t.calls.length === 3);
  assert.ok(
    t.calls[2].getTime() > Date.parse("2026-11-01T00:00:00Z"),
    "the replay did not move the shared watermark back",
  );
  await a.close();
  await b.close();
});

Deno.test("closing the feed (BusClient.close()) ends every subscription and leaves the channel", async () => {
  const t = setup();
  const sub = new Subscription(t.feed);
  await until("the channel", () => t.channels.length === 1);
  t.channels[0].report("SUBSCRIBED");
  const waiting = sub.next();
  await t.feed.close();
  assert.deepEqual(await waiting, { value: undefined, done: true });
  assert.deepEqual(t.removed, [t.channels[0]]);
  await sub.close();
});
