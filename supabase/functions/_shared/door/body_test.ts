/** readBody: one buffer per body, 413 past the limit, 503 with Retry-After when the instance's budget is full. */
import assert from "node:assert/strict";
import { BodyBudget, readBody } from "./body.ts";
import { BusError } from "../errors.ts";

const bytes = (n: number) => new Uint8Array(n).fill(0x61);

Deno.test("readBody() holds a declared body once and releases its reservation", async () => {
  const budget = new BodyBudget(100);
  const held = await readBody(new Request("http://x/", { method: "POST", body: bytes(60) }), { maxBytes: 80, budget });
  assert.equal(held.bytes.length, 60);
  assert.equal(budget.used, 60);
  held.release();
  held.release(); // idempotent
  assert.equal(budget.used, 0);
});

Deno.test("readBody() answers 503 server_busy with Retry-After when the budget cannot take another body", async () => {
  const budget = new BodyBudget(100);
  const first = await readBody(new Request("http://x/", { method: "POST", body: bytes(60) }), { maxBytes: 80, budget });
  const second = await readBody(new Request("http://x/", { method: "POST", body: bytes(60) }), { maxBytes: 80, budget })
    .then(() => assert.fail("the budget holds one 60-byte body"), (err: unknown) => err);
  assert.ok(second instanceof BusError);
  assert.equal(second.status, 503);
  assert.equal(second.code, "server_busy");
  assert.equal(second.headers["retry-after"], "2");
  assert.equal(budget.used, 60, "a refused body reserves nothing");
  first.release();
  const third = await readBody(new Request("http://x/", { method: "POST", body: bytes(60) }), { maxBytes: 80, budget });
  assert.equal(third.bytes.length, 60, "once released, the next body fits");
  third.release();
});

Deno.test("readBody() refuses a declared and a streamed body past maxBytes with 413, keeping nothing reserved", async () => {
  const budget = new BodyBudget(1000);
  const declared = await readBody(new Request("http://x/", { method: "POST", body: bytes(81) }), {
    maxBytes: 80,
    budget,
  })
    .catch((err) => err);
  assert.equal((declared as BusError).status, 413);
  const stream = ReadableStream.from([bytes(50), bytes(50)]);
  const streamed = await readBody(new Request("http://x/", { method: "POST", body: stream }), { maxBytes: 80, budget })
    .catch((err) => err);
  assert.equal((streamed as BusError).status, 413);
  assert.equal(budget.used, 0);
});
