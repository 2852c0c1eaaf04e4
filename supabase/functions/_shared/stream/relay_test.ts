import assert from "node:assert/strict";
import { StreamRelay } from "./relay.ts";

const enc = new TextEncoder();
const dec = new TextDecoder();

async function readAll(s: ReadableStream<Uint8Array>): Promise<string> {
  let out = "";
  for await (const b of s) out += dec.decode(b, { stream: true });
  return out;
}

Deno.test("StreamRelay: held bytes (the stream's [DONE]) go out only on finish, after everything sent before", async () => {
  const relay = new StreamRelay();
  const reading = readAll(relay.readable);
  await relay.send(enc.encode('data: {"choices":[]}\n\n'));
  relay.hold(enc.encode("data: [DONE]\n\n"));
  await relay.send(enc.encode(": after\n\n")); // queued behind what is held
  assert.equal(relay.closed, false);
  relay.finish();
  assert.equal(await reading, 'data: {"choices":[]}\n\ndata: [DONE]\n\n: after\n\n');
});

Deno.test("StreamRelay: fail drops what was held and ends with the bus's error event, on an event boundary", async () => {
  const relay = new StreamRelay();
  const reading = readAll(relay.readable);
  await relay.send(enc.encode('data: {"choi')); // stopped inside an event
  relay.hold(enc.encode('ces":[]}\n\ndata: [DONE]\n\n'));
  relay.fail("storage_failed", "gone");
  const text = await reading;
  assert.ok(!text.includes("[DONE]"));
  assert.equal(
    text,
    'data: {"choi\n\ndata: {"error":{"message":"gone","type":"storage_failed","code":"storage_failed"}}\n\n',
  );
  relay.finish(); // after the end: nothing happens
});

Deno.test("StreamRelay: a slow client holds the run back; a client that leaves lets it go at once", async () => {
  const relay = new StreamRelay(8);
  const reader = relay.readable.getReader();
  let sent = false;
  const sending = relay.send(enc.encode("0123456789")).then(() => (sent = true));
  await new Promise((r) => setTimeout(r, 20));
  assert.equal(sent, false, "waits while 10 bytes sit over an 8-byte high-water mark");
  await reader.read();
  await sending;
  assert.equal(sent, true, "goes on once the client read");

  const blocked = relay.send(enc.encode("x".repeat(20)));
  await reader.cancel();
  await blocked; // resolved by the cancel
  assert.equal(relay.clientGone, true);
  await relay.send(enc.encode("more")); // dropped, never waits
  relay.finish();
  assert.equal(relay.closed, true);
});
