/**
 * The watcher on streamed messages (CONTRACT.md §7, §10), through the database trigger as in production: a completed
 * stream is assembled and checked as a completion (it used to be found `not_chat_completion`: the event stream is
 * not one JSON body), and a stream that broke off gets one observation, verdict error, finding `stream_incomplete`
 * saying what arrived. Streams come from the provider stand-in and are stored as the relay stores them.
 */
import assert from "node:assert/strict";
import { adminSql, newUser, testStack } from "../devstack/testing/env.ts";
import { fetchJson } from "./claim_check_helpers.ts";
import { codes, observations, post, waitForObservation } from "./watch_helpers.ts";
import { freshPrompt, standinStream, storeStream } from "./stream_helpers.ts";

Deno.test("a completed stream is checked as the completion it assembles to: clean, truncated, empty, invalid JSON, error text", async () => {
  const sql = adminSql();
  try {
    const alice = await newUser();
    const cases: Array<{ directive: Record<string, unknown>; wantsJson?: boolean; finish?: string; want: string[] }> = [
      { directive: { reasoning: true, delta_bytes: 6 }, want: [] },
      { directive: { finish_reason: "tool_calls", omit_tool_index: true }, finish: "tool_calls", want: [] },
      { directive: { finish_reason: "length" }, finish: "length", want: ["truncated"] },
      { directive: { reasoning_only: true }, want: ["empty_content"] },
      { directive: { json: "invalid" }, wantsJson: true, want: ["invalid_json"] },
      { directive: { json: true }, wantsJson: true, want: [] },
      { directive: { error_as_content: true }, want: ["error_as_content"] },
    ];
    const stored = [];
    for (const c of cases) {
      const { bytes } = await standinStream(freshPrompt(), c.directive);
      const metadata = c.wantsJson ? { wants_json: true } : {};
      stored.push(await storeStream(sql, alice.id, bytes, { finishReason: c.finish ?? "stop", metadata }));
    }
    for (const [i, c] of cases.entries()) {
      const o = await waitForObservation(sql, stored[i].id);
      assert.deepEqual(codes(o), c.want, `${JSON.stringify(c.directive)}: ${JSON.stringify(o.findings)}`);
      assert.equal(o.verdict, c.want.length === 0 ? "ok" : c.want[0] === "truncated" ? "warning" : "error");
    }
    const meta = await fetchJson(alice.token, `/${stored[0].id}/meta`);
    assert.deepEqual(meta.json.watcher, { verdict: "ok", findings: [] });
  } finally {
    await sql.end();
  }
});

Deno.test("a stream that broke off gets one observation: verdict error, stream_incomplete with what arrived", async () => {
  const sql = adminSql();
  try {
    const alice = await newUser();
    const { bytes, cut } = await standinStream(freshPrompt(), { cut_after_bytes: 1200, delta_bytes: 4 });
    assert.ok(cut);
    const stored = await storeStream(sql, alice.id, bytes, { outcome: "stream_incomplete" });
    const o = await waitForObservation(sql, stored.id);
    assert.equal(o.verdict, "error");
    assert.deepEqual(codes(o), ["stream_incomplete"]);
    const message = o.findings[0].message;
    assert.match(message, /^The provider's stream broke off \(The provider's stream broke off\): /);
    assert.match(message, new RegExp(`${stored.bytes.length} bytes kept, \\d+ events from the provider`));
    assert.match(message, /no data: \[DONE\], no finish_reason, \d+ bytes of content and reasoning/);
    // The cut went through an event unless it fell on an event's end.
    const midEvent = !new TextDecoder().decode(bytes).endsWith("\n\n");
    assert.equal(message.endsWith(", 1 event was cut or not JSON"), midEvent, message);
    const meta = await fetchJson(alice.token, `/${stored.id}/meta`);
    assert.equal(meta.json.watcher.verdict, "error");
    assert.equal(meta.json.watcher.findings[0].code, "stream_incomplete");
    assert.equal((await observations(sql, stored.id)).length, 1, "one observation");
  } finally {
    await sql.end();
  }
});

Deno.test("the checksum of a streamed message's stored bytes is checked as for any payload, partial ones too", async () => {
  const sql = adminSql();
  try {
    const alice = await newUser();
    const complete = await storeStream(sql, alice.id, (await standinStream(freshPrompt(), {})).bytes);
    const { bytes } = await standinStream(freshPrompt(), { cut_after_bytes: 700 });
    const partial = await storeStream(sql, alice.id, bytes, { outcome: "stream_incomplete" });
    for (const s of [complete, partial]) {
      await waitForObservation(sql, s.id);
      await sql`update public.message_bus_chunks set data = overlay(data placing '\\x58'::bytea from 10)
                where transaction_id = ${s.id}::uuid and seq = 0`;
      await sql`delete from public.message_bus_observations where transaction_id = ${s.id}::uuid`;
      const again = await post("watcher", testStack().serviceRoleKey, { transaction_id: s.id });
      assert.equal(again.status, 200, JSON.stringify(again.json));
      assert.equal(again.json.verdict, "error");
      assert.ok(
        again.json.findings.some((f: { code: string }) => f.code === "checksum_mismatch"),
        JSON.stringify(again.json),
      );
    }
  } finally {
    await sql.end();
  }
});
