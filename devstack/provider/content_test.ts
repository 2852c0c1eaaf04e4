import assert from "node:assert/strict";
import { chatBody, postChat, withStandin } from "./_testing.ts";

/** The assistant content of a chat answer fetched with plain fetch. */
async function contentOf(res: Response): Promise<string | null> {
  assert.equal(res.status, 200);
  return (await res.json()).choices[0].message.content;
}

Deno.test("json true gives content that parses; json invalid gives content that does not", async () => {
  await withStandin(async (served, client) => {
    const valid = await client.chat.completions.create(chatBody("as json", { json: true }));
    assert.equal(JSON.parse(valid.choices[0].message.content ?? "").ok, true);
    const big = await contentOf(await postChat(served, chatBody("as json", { json: true, bytes: 50_000 })));
    assert.match(JSON.parse(big ?? "").answer, /漢字/);
    const broken = await contentOf(await postChat(served, chatBody("as json", { json: "invalid" })));
    assert.throws(() => JSON.parse(broken ?? ""), SyntaxError);
  });
});

Deno.test("content and error_as_content return the text asked for", async () => {
  await withStandin(async (served) => {
    assert.equal(
      await contentOf(await postChat(served, chatBody("x", { content: "exactly «this» 🙂" }))),
      "exactly «this» 🙂",
    );
    const error = await contentOf(await postChat(served, chatBody("x", { error_as_content: true })));
    assert.match(error ?? "", /rate_limit_reached_error/);
  });
});

Deno.test("malformed answers 200 with a truncated or non-JSON body", async () => {
  await withStandin(async (served) => {
    const whole = await (await postChat(served, chatBody("m", { bytes: 4000 }))).arrayBuffer();
    const cut = await postChat(served, chatBody("m", { bytes: 4000, malformed: "truncated" }));
    assert.equal(cut.status, 200);
    const cutText = await cut.text();
    assert.equal(new TextEncoder().encode(cutText).length, Math.floor(whole.byteLength / 2));
    assert.throws(() => JSON.parse(cutText), SyntaxError);
    const notJson = await postChat(served, chatBody("m", { malformed: "not_json" }));
    assert.equal(notJson.status, 200);
    const notJsonText = await notJson.text();
    assert.throws(() => JSON.parse(notJsonText), SyntaxError);
  });
});

Deno.test("a steered 500 has no Retry-After and a 400 surfaces as BadRequestError", async () => {
  await withStandin(async (served) => {
    const res = await postChat(served, chatBody("x", { status: 500 }));
    assert.equal(res.status, 500);
    assert.equal(res.headers.get("retry-after"), null);
    assert.equal((await res.json()).error.type, "server_error");
    const bad = await postChat(served, chatBody("x", { status: 400 }));
    assert.equal(bad.status, 400);
    assert.match((await bad.json()).error.message, /steered by #standin/);
  });
});

Deno.test("GET /v1/models lists Kimi and GLM models to a keyed caller", async () => {
  await withStandin(async (_served, client) => {
    const ids = (await client.models.list()).data.map((m) => m.id);
    assert.ok(ids.includes("kimi-k2-0905-preview") && ids.includes("glm-4.6"), ids.join(","));
  });
});

Deno.test("a GLM-style base path (/api/paas/v4) answers too", async () => {
  await withStandin(async (served) => {
    const res = await fetch(`${served.url}/api/paas/v4/chat/completions`, {
      method: "POST",
      headers: { authorization: "Bearer k", "content-type": "application/json" },
      body: JSON.stringify(chatBody("hi", undefined, "glm-4.5-flash")),
    });
    assert.equal((await res.json()).model, "glm-4.5-flash");
  });
});
