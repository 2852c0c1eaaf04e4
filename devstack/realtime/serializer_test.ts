import assert from "node:assert/strict";
import { decode, encode, FrameError, parseVsn } from "./serializer.ts";

const utf8 = new TextEncoder();

/** A kind-3 frame laid out as realtime-js 2.119.1 `_encodeUserBroadcastPush` writes it (supabase-platform.md §3.5). */
function kind3(joinRef: string, ref: string, topic: string, event: string, meta: string, json: boolean, body: string) {
  const parts = [joinRef, ref, topic, event, meta].map((s) => utf8.encode(s));
  const payload = utf8.encode(body);
  const header = [3, ...parts.map((p) => p.length), json ? 1 : 0];
  const out = new Uint8Array(header.length + parts.reduce((n, p) => n + p.length, 0) + payload.length);
  let at = 0;
  for (const part of [Uint8Array.from(header), ...parts, payload]) {
    out.set(part, at);
    at += part.length;
  }
  return out.buffer;
}

Deno.test("parseVsn() defaults to 1.0.0 and rejects unknown majors", () => {
  assert.equal(parseVsn(null), "1.0.0");
  assert.equal(parseVsn("1.0.0"), "1.0.0");
  assert.equal(parseVsn("2.0.0"), "2.0.0");
  assert.equal(parseVsn("3.0.0"), null);
});

Deno.test("decode() reads vsn 2 arrays and vsn 1 objects", () => {
  assert.deepEqual(decode("2.0.0", '["6","7","realtime:a","phx_join",{"config":{}}]'), {
    type: "message",
    msg: { joinRef: "6", ref: "7", topic: "realtime:a", event: "phx_join", payload: { config: {} } },
  });
  assert.deepEqual(decode("1.0.0", '{"topic":"phoenix","event":"heartbeat","payload":{},"ref":"8"}'), {
    type: "message",
    msg: { joinRef: null, ref: "8", topic: "phoenix", event: "heartbeat", payload: {} },
  });
});

Deno.test("decode() reads a kind-3 user broadcast push as realtime-js writes it", () => {
  const got = decode("2.0.0", kind3("6", "7", "realtime:tx:user-1", "ping", "", true, '{"a":1}'));
  assert.equal(got.type, "user_broadcast");
  if (got.type !== "user_broadcast") return;
  assert.equal(got.joinRef, "6");
  assert.equal(got.ref, "7");
  assert.equal(got.broadcast.topic, "realtime:tx:user-1");
  assert.equal(got.broadcast.event, "ping");
  assert.equal(got.broadcast.json, true);
  assert.equal(new TextDecoder().decode(got.broadcast.bytes), '{"a":1}');
  assert.equal(got.broadcast.meta, null);
});

Deno.test("decode() throws FrameError for malformed frames", () => {
  const bad: [("1.0.0" | "2.0.0"), string | ArrayBuffer][] = [
    ["2.0.0", "{}"],
    ["2.0.0", "[1,2]"],
    ["2.0.0", "nope"],
    ["1.0.0", '[null,null,"t","e",{}]'],
    ["1.0.0", new ArrayBuffer(4)],
    ["2.0.0", new Uint8Array([4, 0, 0, 0, 0, 0, 0]).buffer],
    ["2.0.0", new Uint8Array([3, 200, 0, 0, 0, 0, 1]).buffer],
    ["2.0.0", kind3("1", "2", "realtime:t", "e", "", true, "{not json")],
    ["2.0.0", '[null,"1",{"topic":1},"heartbeat",{}]'],
  ];
  for (const [vsn, frame] of bad) assert.throws(() => decode(vsn, frame), FrameError, String(frame));
});

Deno.test("encode() writes vsn 2 arrays and vsn 1 objects without join_ref", () => {
  const msg = { joinRef: "6", ref: "6", topic: "realtime:a", event: "phx_reply", payload: { status: "ok" } };
  assert.equal(encode("2.0.0", { type: "message", msg }), '["6","6","realtime:a","phx_reply",{"status":"ok"}]');
  assert.equal(
    encode("1.0.0", { type: "message", msg }),
    '{"topic":"realtime:a","event":"phx_reply","payload":{"status":"ok"},"ref":"6"}',
  );
});

Deno.test("encode() writes a user broadcast as kind 4 (vsn 2) or a JSON broadcast with meta (vsn 1)", () => {
  const broadcast = { topic: "realtime:t", event: "ev", json: true, bytes: utf8.encode('{"n": 1}'), meta: { id: "x" } };
  const bin = encode("2.0.0", { type: "user_broadcast", broadcast });
  assert.ok(bin instanceof Uint8Array);
  assert.deepEqual([...bin.subarray(0, 5)], [4, 10, 2, 10, 1]);
  assert.equal(new TextDecoder().decode(bin.subarray(5)), 'realtime:tev{"id":"x"}{"n": 1}');
  assert.deepEqual(JSON.parse(encode("1.0.0", { type: "user_broadcast", broadcast }) as string), {
    topic: "realtime:t",
    event: "broadcast",
    payload: { type: "broadcast", event: "ev", payload: { n: 1 }, meta: { id: "x" } },
    ref: null,
  });
  const raw = { ...broadcast, json: false, bytes: new Uint8Array([0, 255]), meta: null };
  assert.equal(encode("1.0.0", { type: "user_broadcast", broadcast: raw }), null);
  assert.deepEqual([...(encode("2.0.0", { type: "user_broadcast", broadcast: raw }) as Uint8Array)].slice(0, 5), [
    4,
    10,
    2,
    0,
    0,
  ]);
  const long = { ...broadcast, topic: "x".repeat(256) };
  assert.throws(() => encode("2.0.0", { type: "user_broadcast", broadcast: long }), RangeError);
});
