import assert from "node:assert/strict";
import { ConnectionCut } from "./errors.ts";
import { pacedBody, pieces } from "./paced.ts";

const bytes = (...sizes: number[]) => sizes.map((n, i) => new Uint8Array(n).fill(65 + i));

/** Reads a stream until it ends, errors, or stays silent for `idleMs`. */
async function drain(body: ReadableStream<Uint8Array>, idleMs = 100) {
  const reader = body.getReader();
  let received = 0;
  while (true) {
    const idle = new Promise<"idle">((r) => setTimeout(() => r("idle"), idleMs));
    const next = await Promise.race([reader.read().then((r) => r, (e) => e as Error), idle]);
    if (next === "idle") return { received, end: "idle" as const, reader };
    if (next instanceof Error) return { received, end: next, reader };
    if (next.done) return { received, end: "done" as const, reader };
    received += next.value.length;
  }
}

Deno.test("pacedBody() passes every byte through and ends cleanly without faults", async () => {
  const { received, end } = await drain(
    pacedBody(bytes(10, 20, 30).values(), { signal: new AbortController().signal }),
  );
  assert.equal(received, 60);
  assert.equal(end, "done");
});

Deno.test("pacedBody() cuts after exactly N bytes, mid-piece or at a piece's end, even at 0", async () => {
  for (const cutAfter of [0, 10, 15, 59]) {
    const signal = new AbortController().signal;
    const { received, end } = await drain(pacedBody(bytes(10, 20, 30).values(), { cutAfter, signal }));
    assert.equal(received, cutAfter);
    assert.ok(end instanceof ConnectionCut, `cut at ${cutAfter}: ${end}`);
  }
});

Deno.test("pacedBody() stalls after N bytes until the signal aborts", async () => {
  const left = new AbortController();
  const { received, end, reader } = await drain(
    pacedBody(bytes(10, 20).values(), { stallAfter: 12, signal: left.signal }),
  );
  assert.equal(received, 12);
  assert.equal(end, "idle");
  const pending = reader.read().then(() => "data", (e) => e.name);
  left.abort();
  assert.equal(await pending, "AbortError");
});

Deno.test("pacedBody() waits before the first piece and between pieces, not after the last", async () => {
  const started = performance.now();
  const signal = new AbortController().signal;
  await drain(pacedBody(bytes(1, 1, 1).values(), { firstDelayMs: 60, gapMs: 30, signal }), 1_000);
  const elapsed = performance.now() - started;
  assert.ok(elapsed >= 120 && elapsed < 1_000, `took ${elapsed} ms`);
});

Deno.test("pieces() re-chunks a stream into pieces of at most N bytes", async () => {
  const source = new ReadableStream<Uint8Array>({
    start(controller) {
      for (const chunk of bytes(5, 40, 3)) controller.enqueue(chunk);
      controller.close();
    },
  });
  const sizes = [];
  for await (const piece of pieces(source, 16)) sizes.push(piece.length);
  assert.deepEqual(sizes, [5, 16, 16, 8, 3]);
});
