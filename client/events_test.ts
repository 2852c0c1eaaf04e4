import assert from "node:assert/strict";
import { EventDeduper, eventFromBroadcast, eventsFromMeta } from "./events.ts";
import type { MessageEvent, MessageMeta } from "./types.ts";

const ID = "01a1fe64-70be-7fb8-b8b1-1411b3f307c5";

const pushed = {
  transaction_id: ID,
  status: "completed",
  tool: "chat",
  provider: "kimi",
  payload_size_bytes: 25,
  checksum: `sha256:${"a".repeat(64)}`,
  finish_reason: "stop",
  updated_at: "2026-11-21T13:55:57.737474+00:00",
  id: "7f1c2b7e-0000-4000-8000-000000000000",
};

function event(status: MessageEvent["status"], source: MessageEvent["source"] = "realtime"): MessageEvent {
  return eventFromBroadcast("message", { ...pushed, status, source }) as MessageEvent;
}

Deno.test("eventFromBroadcast() maps the trigger's payload to a message event", () => {
  assert.deepEqual(eventFromBroadcast("message", pushed), {
    type: "message",
    transaction_id: ID,
    status: "completed",
    tool: "chat",
    provider: "kimi",
    payload_size_bytes: 25,
    checksum: pushed.checksum,
    finish_reason: "stop",
    updated_at: pushed.updated_at,
    source: "realtime",
  });
});

Deno.test("eventFromBroadcast() maps observations and ignores malformed payloads", () => {
  const findings = [{ code: "truncated", message: "finish_reason is length" }];
  assert.deepEqual(eventFromBroadcast("observation", { transaction_id: ID, verdict: "warning", findings }), {
    type: "observation",
    transaction_id: ID,
    verdict: "warning",
    findings,
    source: "realtime",
  });
  assert.equal(eventFromBroadcast("message", { ...pushed, status: "done" }), null);
  assert.equal(eventFromBroadcast("message", { ...pushed, updated_at: "yesterday" }), null);
  assert.equal(eventFromBroadcast("message", { status: "completed" }), null);
  assert.equal(eventFromBroadcast("observation", { transaction_id: ID, verdict: "fine", findings: [] }), null);
  assert.equal(eventFromBroadcast("other", pushed), null);
  assert.equal(eventFromBroadcast("message", "text"), null);
});

Deno.test("eventsFromMeta() yields the current status and the watcher's observation", () => {
  const meta = {
    ...pushed,
    model: "m",
    stored_size_bytes: 25,
    compression: "none",
    created_at: pushed.updated_at,
    expires_at: pushed.updated_at,
    retrieved_count: 0,
    watcher: { verdict: "ok", findings: [] },
  } as unknown as MessageMeta;
  const events = eventsFromMeta(meta);
  assert.deepEqual(events.map((e) => [e.type, e.source]), [["message", "catch_up"], ["observation", "catch_up"]]);
  assert.equal(eventsFromMeta({ ...meta, watcher: null }).length, 1);
});

Deno.test("EventDeduper lets each (transaction_id, status) through once", () => {
  const d = new EventDeduper();
  assert.ok(d.accept(event("pending")));
  assert.ok(!d.accept(event("pending", "catch_up")));
  assert.ok(d.accept(event("completed", "catch_up")));
  assert.ok(!d.accept(event("completed")));
  const obs = eventFromBroadcast("observation", { transaction_id: ID, verdict: "ok", findings: [] })!;
  assert.ok(d.accept(obs));
  assert.ok(!d.accept(obs));
  assert.ok(d.accept(event("expired")));
});

Deno.test("EventDeduper drops a status older than one already seen", () => {
  const d = new EventDeduper();
  assert.ok(d.accept(event("completed", "catch_up")));
  assert.ok(!d.accept(event("pending")), "a late pending after completed is stale");
  assert.ok(d.accept(event("expired")));
  assert.ok(!d.accept(event("failed")), "nothing comes after expired");
});

Deno.test("EventDeduper forgets the oldest messages beyond its capacity", () => {
  const d = new EventDeduper(2);
  const e = (id: string) => ({ ...event("pending"), transaction_id: id });
  assert.ok(d.accept(e("a")));
  assert.ok(d.accept(e("b")));
  assert.ok(d.accept(e("c")));
  assert.ok(!d.accept(e("c")));
  assert.ok(d.accept(e("a")), "a was evicted");
});
