import assert from "node:assert/strict";
import fc from "fast-check";
import { chatInputSchema, completionRequest } from "./chat.ts";
import type { BodyPart } from "./tool.ts";

const encode = (s: string) => new TextEncoder().encode(s);

async function bodyText(req: ReturnType<typeof completionRequest>): Promise<string> {
  const body = req.body();
  if (body instanceof Uint8Array) return new TextDecoder().decode(body);
  return await new Response(body).text();
}

Deno.test("completionRequest() without files splices model and stream in and keeps the input's bytes", async () => {
  const input = '{ "messages": [{"role":"user","content":"a \\u0041"}] }';
  const text = await bodyText(completionRequest(encode(input), { model: "m", stream: false }));
  assert.equal(text, '{ "messages": [{"role":"user","content":"a \\u0041"}] ,"model":"m","stream":false}');
});

Deno.test("completionRequest() puts file messages first in messages and cuts files out, wherever it stands", async () => {
  const sys = (t: string): BodyPart => encode(JSON.stringify({ role: "system", content: t }));
  const streamed = (t: string): BodyPart => ({
    size: t.length,
    stream: async function* () {
      yield encode(JSON.stringify({ role: "system", content: t }).slice(0, 5));
      yield encode(JSON.stringify({ role: "system", content: t }).slice(5));
    },
  });
  const member = fc.constantFrom<[string, unknown]>(
    ["messages", [{ role: "user", content: 'hi "there"' }, { role: "assistant", content: "x" }]],
    ["files", ["0190a4e0-0000-7000-8000-000000000001"]],
    ["max_tokens", 5],
    ["temperature", 0.5],
    ['"weird\\key', { files: ["not this one"] }],
  );
  await fc.assert(
    fc.asyncProperty(
      fc.uniqueArray(member, { minLength: 1, selector: (m) => m[0] }),
      fc.constantFrom("", " ", "\n  "),
      async (members, ws) => {
        if (!members.some(([k]) => k === "messages")) members.push(["messages", [{ role: "user", content: "q" }]]);
        const input = `{${ws}${
          members.map(([k, v]) => `${JSON.stringify(k)}${ws}:${ws}${JSON.stringify(v)}`).join(`${ws},${ws}`)
        }${ws}}`;
        const req = completionRequest(encode(input), { model: "m", stream: false }, {
          messages: [sys("first"), streamed("second\n")],
          drop: ["files"],
        });
        const sent = JSON.parse(await bodyText(req));
        const expected = Object.fromEntries(members.filter(([k]) => k !== "files"));
        expected.messages = [
          { role: "system", content: "first" },
          { role: "system", content: "second\n" },
          ...(expected.messages as unknown[]),
        ];
        assert.deepEqual(sent, { ...expected, model: "m", stream: false });
      },
    ),
    { numRuns: 300 },
  );
});

Deno.test("chat input files: UUIDs, at least one, at most 20, no repeats", () => {
  const id = () => crypto.randomUUID();
  const ok = (files: unknown) =>
    chatInputSchema.safeParse({ messages: [{ role: "user", content: "x" }], files }).success;
  assert.equal(ok([id()]), true);
  assert.equal(ok([]), false);
  assert.equal(ok(["nope"]), false);
  const same = id();
  assert.equal(ok([same, same]), false);
  assert.equal(ok(Array.from({ length: 21 }, id)), false);
});
