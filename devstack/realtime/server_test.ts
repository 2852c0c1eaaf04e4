/**
 * The Realtime stand-in at the protocol level with a raw WebSocket (supabase-platform.md §3.4–§3.7): handshake
 * errors, routing, malformed frames, leave, shutdown.
 */
import assert from "node:assert/strict";
import { sign, startStack, type TestStack, waitFor } from "./_testing.ts";

let stack: TestStack;
const cases: [string, () => Promise<void>][] = [];

/** A raw vsn 2.0.0 socket that records decoded text frames and raw binary frames. */
async function rawSocket(apikey = stack.keys.publishable) {
  const ws = new WebSocket(`${stack.url.replace("http", "ws")}/realtime/v1/websocket?apikey=${apikey}&vsn=2.0.0`);
  ws.binaryType = "arraybuffer";
  const frames: unknown[] = [];
  ws.onmessage = (e) => frames.push(typeof e.data === "string" ? JSON.parse(e.data) : new Uint8Array(e.data));
  const closed = new Promise<CloseEvent>((resolve) => ws.addEventListener("close", resolve));
  await new Promise((resolve, reject) => {
    ws.onopen = resolve;
    ws.onerror = () => reject(new Error("socket failed to open"));
  });
  return { ws, frames, closed, send: (frame: unknown) => ws.send(JSON.stringify(frame)) };
}

/** The upgrade request as the client sends it, answered in-process. */
function upgradeRequest(apikey: string): Promise<Response> {
  const url = `${stack.url}/realtime/v1/websocket?apikey=${encodeURIComponent(apikey)}&vsn=2.0.0`;
  return Promise.resolve(stack.rt.fetch(new Request(url, { headers: { upgrade: "websocket" } })));
}

cases.push(["the upgrade answers 401 JSON for a bad, expired or incomplete apikey", async () => {
  const now = Math.floor(Date.now() / 1000);
  const expect401 = async (apikey: string, error: RegExp) => {
    const res = await upgradeRequest(apikey);
    assert.equal(res.status, 401);
    assert.match((await res.json()).error, error);
  };
  await expect401("not-a-jwt", /^The token provided is not a valid JWT/);
  await expect401(await sign({ role: "anon", exp: now + 60 }, "another-secret-another-secret-another"), /signature/);
  await expect401(await sign({ role: "anon", exp: now - 30 }), /^Token has expired 3\d seconds ago$/);
  await expect401(await sign({ role: "anon" }), /^Fields `role` and `exp` are required in JWT$/);
  await expect401("sb_publishable_not_the_configured_key", /^The token provided is not a valid JWT/);
  const ws = new WebSocket(`${stack.url.replace("http", "ws")}/realtime/v1/websocket?apikey=bad&vsn=2.0.0`);
  const event = await new Promise<Event>((resolve) => {
    ws.onopen = resolve;
    ws.onerror = resolve;
  });
  assert.equal(event.type, "error");
}]);

cases.push(["other paths and methods answer 404", async () => {
  for (const [method, path] of [["GET", "/realtime/v1/api/broadcast"], ["GET", "/realtime/v1/nope"]]) {
    const res = await stack.rt.fetch(new Request(`${stack.url}${path}`, { method }));
    assert.equal(res.status, 404);
    await res.body?.cancel();
  }
}]);

cases.push(["malformed frames are logged and the socket keeps working", async () => {
  const s = await rawSocket(stack.keys.secret);
  try {
    s.ws.send("not json");
    s.ws.send(JSON.stringify({ topic: "phoenix", event: "heartbeat" }));
    s.ws.send(new Uint8Array([3, 9, 9, 9, 9, 9, 1, 65]));
    s.ws.send(new Uint8Array([7]));
    s.send([null, "9", 42, "heartbeat", {}]);
    s.send([null, "1", "phoenix", "heartbeat", {}]);
    await waitFor(() => s.frames.length === 1, "the heartbeat reply");
    assert.deepEqual(s.frames[0], [null, "1", "phoenix", "phx_reply", { status: "ok", response: {} }]);
    assert.equal(stack.logs.filter((l) => l.startsWith("Ignoring a malformed client frame")).length, 5);
  } finally {
    s.ws.close();
    await s.closed;
  }
}]);

cases.push(["pushes to an unjoined topic get 'unmatched topic'; leave replies ok then phx_close", async () => {
  const topic = `rt-raw-${crypto.randomUUID()}`;
  const s = await rawSocket();
  try {
    s.send(["1", "2", `realtime:${topic}`, "broadcast", { type: "broadcast", event: "x", payload: {} }]);
    s.send(["3", "3", `realtime:${topic}`, "phx_join", { config: { private: false } }]);
    s.send(["3", "4", `realtime:${topic}`, "phx_leave", {}]);
    await waitFor(() => s.frames.length === 4, "four frames");
    assert.deepEqual(s.frames, [
      ["1", "2", `realtime:${topic}`, "phx_reply", { status: "error", response: { reason: "unmatched topic" } }],
      ["3", "3", `realtime:${topic}`, "phx_reply", { status: "ok", response: { postgres_changes: [] } }],
      ["3", "4", `realtime:${topic}`, "phx_reply", { status: "ok", response: {} }],
      ["3", "3", `realtime:${topic}`, "phx_close", {}],
    ]);
    // After the leave, a broadcast to that topic is not pushed; one to a joined topic is (commit order).
    s.send(["5", "5", `realtime:${topic}-2`, "phx_join", { config: {} }]);
    await waitFor(() => s.frames.length === 5, "the second join");
    await stack.sql`select realtime.send('{"n":1}'::jsonb, 'ev', ${topic}, false)`;
    await stack.sql`select realtime.send('{"n":2}'::jsonb, 'ev', ${`${topic}-2`}, false)`;
    await waitFor(() => s.frames.length === 6, "the broadcast to the joined topic");
    const frame: unknown = s.frames[5];
    assert.ok(frame instanceof Uint8Array, `expected a binary frame, got ${JSON.stringify(frame)}`);
    // §3.5 kind 4: kind | topicLen | eventLen | metaLen | encoding | topic | event | meta | payload
    assert.deepEqual([...frame.subarray(0, 5)], [4, `realtime:${topic}-2`.length, 2, 45, 1]);
    const text = new TextDecoder().decode(frame.subarray(5));
    assert.match(
      text,
      new RegExp(`^realtime:${topic}-2ev\\{"id":"[0-9a-f-]{36}"\\}\\{"n": 2, "id": "[0-9a-f-]{36}"\\}$`),
    );
  } finally {
    s.ws.close();
    await s.closed;
  }
}]);

cases.push(["close() ends open sockets", async () => {
  const s = await rawSocket();
  await stack.rt.close();
  const event = await s.closed;
  assert.equal(event.code, 1001);
  const res = await upgradeRequest(stack.keys.anon);
  assert.equal(res.status, 503);
  await res.body?.cancel();
}]);

Deno.test("the Realtime stand-in speaks the Phoenix protocol and survives bad clients", async (t) => {
  stack = await startStack();
  try {
    for (const [name, fn] of cases) await t.step(name, fn);
  } finally {
    await stack.stop();
  }
});
