/**
 * The MCP server against the local stack (CONTRACT.md §11), with the official SDK's clients: v2 on the current
 * revision (2026-07-28) and v1 on the previous one (2025-11-25). A 10 MB result is read whole through
 * fetch_message pages and verified against its checksum with both; resources/read returns the payload; another
 * user's ids are refused; auth and Origin are checked before anything else.
 */
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import fc from "fast-check";
import { SdkHttpError } from "@modelcontextprotocol/client";
import { StreamableHTTPError } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import { newUser, testStack } from "../devstack/testing/env.ts";
import { readMessageViaMcp } from "../client/mod.ts";
import { fetchJson, sha256Stream } from "./claim_check_helpers.ts";
import {
  connectV1,
  connectV2,
  CURRENT,
  firstText,
  mcpUrl,
  postMcp,
  PREVIOUS,
  standinPrompt,
  structured,
  toolErrorOf,
} from "./mcp_helpers.ts";

const TEN_MB = 10 * 1024 * 1024;
const sha256 = (b: Uint8Array) => `sha256:${createHash("sha256").update(b).digest("hex")}`;
const strictUtf8 = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });

/** sha256 of the message's bytes as message-fetch serves them (the tool-invoke side of the claim check). */
async function fetchedChecksum(token: string, id: string): Promise<string> {
  const res = await fetch(`${testStack().functionsUrl}/message-fetch/${id}`, {
    headers: { authorization: `Bearer ${token}` },
  });
  assert.equal(res.status, 200);
  return `sha256:${(await sha256Stream(res.body!)).hex}`;
}

Deno.test("mcp auth: no token, a bad token or the anon key → 401 with WWW-Authenticate; the clients see the 401", async () => {
  const { anonKey } = testStack();
  const cases: Array<[string, Record<string, string>, RegExp]> = [
    ["no token", {}, /^Bearer realm="message-bus"$/],
    ["bad token", { authorization: "Bearer not-a-jwt" }, /error="invalid_token"/],
    ["anon key", { authorization: `Bearer ${anonKey}` }, /error="invalid_token"/],
  ];
  for (const [what, headers, challenge] of cases) {
    const res = await postMcp({ jsonrpc: "2.0", id: 1, method: "tools/list" }, headers);
    assert.equal(res.status, 401, what);
    assert.match(res.headers.get("www-authenticate") ?? "", challenge, what);
    assert.equal(JSON.parse(res.text).error.code, "unauthorized", what);
  }
  await assert.rejects(connectV2("not-a-jwt"), (err: unknown) => err instanceof SdkHttpError && err.status === 401);
  const { client } = await connectV2(testStack().serviceRoleKey);
  assert.equal((await client.listTools()).tools.length, 5, "the service role is a caller too");
  await client.close();
  await assert.rejects(
    connectV1("not-a-jwt"),
    (err: unknown) => err instanceof StreamableHTTPError && (err as { code?: number }).code === 401,
  );
});

Deno.test("mcp Origin: a foreign browser origin → 403 before auth; localhost and no Origin pass", async () => {
  const user = await newUser();
  const list = { jsonrpc: "2.0", id: 1, method: "tools/list" };
  const foreign = await postMcp(list, { origin: "https://evil.example", authorization: `Bearer ${user.token}` });
  assert.equal(foreign.status, 403);
  assert.equal(JSON.parse(foreign.text).error.code, "origin_not_allowed");
  const unauthenticated = await postMcp(list, { origin: "https://evil.example" });
  assert.equal(unauthenticated.status, 403, "the Origin check comes first");
  const { client } = await connectV2(user.token);
  await client.close();
  const local = await fetch(mcpUrl(), {
    method: "POST",
    headers: {
      origin: "http://localhost:3000",
      authorization: `Bearer ${user.token}`,
      "content-type": "application/json",
      accept: "application/json, text/event-stream",
      "mcp-protocol-version": PREVIOUS,
    },
    body: JSON.stringify({
      jsonrpc: "2.0",
      id: 1,
      method: "initialize",
      params: { protocolVersion: PREVIOUS, capabilities: {}, clientInfo: { name: "t", version: "1" } },
    }),
  });
  assert.equal(local.status, 200, await local.text());
});

Deno.test("mcp v2 (2026-07-28): tools listed with schemas; chat stores like tool-invoke; a 10 MB result pages back whole", async () => {
  const user = await newUser();
  const { client, transport } = await connectV2(user.token);
  try {
    assert.equal(transport.protocolVersion, CURRENT);
    const { tools } = await client.listTools();
    assert.deepEqual(tools.map((t) => t.name).sort(), [
      "chat",
      "fetch_message",
      "list_messages",
      "message_meta",
      "wait_message",
    ]);
    for (const t of tools) {
      assert.ok(t.description && t.description.length > 40, `${t.name} has a description for the model`);
      assert.equal(t.outputSchema?.type, "object", `${t.name} has an output schema`);
    }

    const result = await client.callTool({ name: "chat", arguments: { prompt: standinPrompt({ bytes: TEN_MB }) } });
    assert.equal(result.isError, undefined, JSON.stringify(result));
    const chat = structured(result);
    assert.equal(chat.status, "completed");
    assert.equal(chat.payload_size_bytes, TEN_MB);
    assert.match(chat.checksum, /^sha256:[0-9a-f]{64}$/);
    const link = (result.content as Array<{ type: string; uri?: string }>).find((b) => b.type === "resource_link");
    assert.equal(link?.uri, `bus://messages/${chat.transaction_id}`);
    assert.ok(!firstText(result).includes("chat.completion"), "the payload is not in the result");
    // The same message as tool-invoke makes: message-fetch serves it, with the same checksum.
    assert.equal(await fetchedChecksum(user.token, chat.transaction_id), chat.checksum);

    // Page by hand at the default size: every page is UTF-8 text by itself, and the joined pages hash to checksum.
    const hash = createHash("sha256");
    let offset: number | null = 0, pages = 0, total = 0;
    while (offset !== null) {
      const page = await client.callTool({
        name: "fetch_message",
        arguments: { transaction_id: chat.transaction_id, offset },
      });
      const info = structured(page);
      assert.equal(info.encoding, "utf-8", `page at ${offset}`);
      assert.equal(info.checksum, chat.checksum);
      const bytes = new TextEncoder().encode(firstText(page));
      assert.equal(bytes.length, info.page_bytes);
      assert.ok(bytes.length <= 65_536 && (bytes.length > 0 || info.next_offset === null));
      strictUtf8.decode(bytes);
      hash.update(bytes);
      total += bytes.length;
      offset = info.next_offset;
      pages++;
    }
    assert.equal(total, TEN_MB);
    assert.equal(`sha256:${hash.digest("hex")}`, chat.checksum);
    assert.ok(pages >= 160, `${pages} pages`);

    // The SDK helper does the same, and verifies.
    const read = await readMessageViaMcp(client, chat.transaction_id, { pageBytes: 1024 * 1024 });
    assert.equal(read.error, null, JSON.stringify(read.error));
    assert.equal(read.data!.checksum, chat.checksum);
    assert.equal(read.data!.size, TEN_MB);
    assert.equal(read.data!.json<{ object: string }>().object, "chat.completion");
  } finally {
    await client.close();
  }
});

Deno.test("mcp v1 (2025-11-25): chat, a 10 MB result through readMessageViaMcp, meta and resources/read", async () => {
  const user = await newUser();
  const { client, transport } = await connectV1(user.token);
  try {
    assert.equal(transport.protocolVersion, PREVIOUS);
    assert.ok(transport.sessionId === undefined, "stateless: no session");
    const result = await client.callTool({ name: "chat", arguments: { prompt: standinPrompt({ bytes: TEN_MB }) } });
    const chat = structured(result);
    assert.equal(chat.status, "completed", JSON.stringify(result));
    const read = await readMessageViaMcp(client, chat.transaction_id);
    assert.equal(read.error, null, JSON.stringify(read.error));
    assert.equal(read.data!.checksum, chat.checksum);
    assert.equal(sha256(read.data!.bytes), chat.checksum);
    assert.ok(read.data!.pages >= 160);

    const meta = structured(
      await client.callTool({ name: "message_meta", arguments: { transaction_id: chat.transaction_id } }),
    );
    assert.equal(meta.status, "completed");
    assert.equal(meta.checksum, chat.checksum);
    assert.ok(meta.retrieved_count >= 1, "a read from offset 0 counts as a retrieval");

    const resource = await client.readResource({ uri: `bus://messages/${chat.transaction_id}` });
    const text = (resource.contents[0] as { text: string }).text;
    assert.equal(sha256(new TextEncoder().encode(text)), chat.checksum);
  } finally {
    await client.close();
  }
});

Deno.test("mcp resources: the template is listed, the owner's messages are listed and read, another user's refused", async () => {
  const [owner, other] = [await newUser(), await newUser()];
  const { client } = await connectV2(owner.token);
  const { client: theirs } = await connectV2(other.token);
  try {
    const chat = structured(
      await client.callTool({ name: "chat", arguments: { prompt: standinPrompt({ bytes: 5000 }) } }),
    );
    const uri = `bus://messages/${chat.transaction_id}`;
    const { resourceTemplates } = await client.listResourceTemplates();
    assert.deepEqual(resourceTemplates.map((t) => t.uriTemplate), ["bus://messages/{transaction_id}"]);
    assert.ok((await client.listResources()).resources.some((r) => r.uri === uri), "listed for its owner");
    assert.ok(!(await theirs.listResources()).resources.some((r) => r.uri === uri), "not listed for another user");
    const read = await client.readResource({ uri });
    const content = read.contents[0] as { text: string; mimeType: string };
    assert.equal(sha256(new TextEncoder().encode(content.text)), chat.checksum);
    assert.match(content.mimeType, /^application\/json/);
    for (const bad of [uri, `bus://messages/${crypto.randomUUID()}`, "bus://messages/not-a-uuid"]) {
      await assert.rejects(
        theirs.readResource({ uri: bad }),
        (err: unknown) => (err as { code?: number }).code === -32602,
      );
    }
  } finally {
    await client.close();
    await theirs.close();
  }
});

Deno.test("mcp errors: another user's or an unknown id is a tool error in every tool; bad arguments are refused", async () => {
  const [owner, other] = [await newUser(), await newUser()];
  const { client } = await connectV2(owner.token);
  const { client: theirs } = await connectV2(other.token);
  try {
    const chat = structured(await client.callTool({ name: "chat", arguments: { prompt: "hello" } }));
    for (const id of [chat.transaction_id, crypto.randomUUID()]) {
      for (const name of ["fetch_message", "message_meta", "wait_message"]) {
        const r = await theirs.callTool({ name, arguments: { transaction_id: id, timeout_seconds: 1 } });
        assert.equal(r.isError, true, `${name} ${id}`);
        assert.equal(toolErrorOf(r).code, "not_found", name);
        assert.ok(!JSON.stringify(r).includes(chat.checksum), "nothing of the message leaks");
      }
    }
    const badArgs: Array<[string, Record<string, unknown>]> = [
      ["fetch_message", { transaction_id: "nope" }],
      ["fetch_message", { transaction_id: chat.transaction_id, offset: -1 }],
      ["fetch_message", { transaction_id: chat.transaction_id, max_bytes: 2 }],
      ["fetch_message", { transaction_id: chat.transaction_id, offset: 10 ** 9 }],
      ["chat", {}],
      ["chat", { prompt: "x", messages: [{ role: "user", content: "y" }] }],
      ["chat", { prompt: "x", provider: "nope" }],
      ["chat", { prompt: "x", ttl_seconds: 1 }],
      ["list_messages", { since: "yesterday" }],
      ["wait_message", { transaction_id: chat.transaction_id, timeout_seconds: 10_000 }],
    ];
    for (const [name, args] of badArgs) {
      const r = await client.callTool({ name, arguments: args });
      assert.equal(r.isError, true, `${name} ${JSON.stringify(args)}: ${JSON.stringify(r)}`);
      assert.ok(firstText(r).length > 10, "the error says what is wrong");
    }
    await assert.rejects(client.callTool({ name: "no_such_tool", arguments: {} }));
  } finally {
    await client.close();
    await theirs.close();
  }
});

Deno.test("mcp: an offset inside a character is a tool error naming where the character starts", async () => {
  const user = await newUser();
  const { client } = await connectV2(user.token);
  try {
    const chat = structured(
      await client.callTool({ name: "chat", arguments: { prompt: standinPrompt({ bytes: 20_000 }) } }),
    );
    const page = firstText(
      await client.callTool({
        name: "fetch_message",
        arguments: { transaction_id: chat.transaction_id, max_bytes: 20_000 },
      }),
    );
    const bytes = new TextEncoder().encode(page);
    const lead = bytes.findIndex((b) => b >= 0xc0);
    assert.ok(lead > 0, "the stand-in's filler has multi-byte characters");
    const r = await client.callTool({
      name: "fetch_message",
      arguments: { transaction_id: chat.transaction_id, offset: lead + 1 },
    });
    assert.equal(r.isError, true);
    assert.equal(toolErrorOf(r).code, "invalid_offset");
    assert.equal(toolErrorOf(r).character_start, lead);
  } finally {
    await client.close();
  }
});

Deno.test("mcp async chat: pending, fetch refused while pending, wait_message until completed", async () => {
  const user = await newUser();
  const { client } = await connectV2(user.token);
  try {
    const r = await client.callTool({
      name: "chat",
      arguments: { prompt: standinPrompt({ latency_ms: 1500, bytes: 3000 }), mode: "async" },
    });
    const pending = structured(r);
    assert.equal(pending.status, "pending");
    const early = await client.callTool({
      name: "fetch_message",
      arguments: { transaction_id: pending.transaction_id },
    });
    assert.equal(early.isError, true);
    assert.equal(toolErrorOf(early).code, "pending");
    const waited = await client.callTool({
      name: "wait_message",
      arguments: { transaction_id: pending.transaction_id, timeout_seconds: 30 },
    });
    assert.equal(structured(waited).status, "completed", JSON.stringify(waited));
    assert.equal(structured(waited).payload_size_bytes, 3000);
  } finally {
    await client.close();
  }
});

Deno.test("mcp: a provider failure is a tool error with the recorded transaction; list_messages shows it", async () => {
  const user = await newUser();
  const { client } = await connectV2(user.token);
  try {
    const r = await client.callTool({ name: "chat", arguments: { prompt: standinPrompt({ status: 400 }) } });
    assert.equal(r.isError, true);
    const failure = structured(r);
    assert.equal(failure.status, "failed");
    assert.match(failure.transaction_id, /^[0-9a-f-]{36}$/);
    assert.equal(failure.provider, "kimi", "the provider that failed, as the error names it");
    assert.equal(toolErrorOf(r).transaction_id, failure.transaction_id);
    assert.equal(toolErrorOf(r).status, "failed");
    const meta = await fetchJson(user.token, `/${failure.transaction_id}/meta`);
    assert.equal(meta.json.status, "failed");
    const list = structured(await client.callTool({ name: "list_messages", arguments: {} }));
    assert.ok(list.messages.some((m: { transaction_id: string }) => m.transaction_id === failure.transaction_id));
  } finally {
    await client.close();
  }
});

Deno.test("mcp HTTP: bad JSON 400, a body over the limit 413, GET 405 — never a 500", async () => {
  const user = await newUser();
  const auth = { authorization: `Bearer ${user.token}` };
  for (const body of ["", "{", "[1,", '{"jsonrpc":"2.0","id":1,"method":"x","params":{"a":"\\u0000"}}', "\u00ff"]) {
    const res = await postMcp(body, auth);
    assert.equal(res.status, 400, `${JSON.stringify(body)}: ${res.text}`);
    assert.equal(JSON.parse(res.text).error.code, "invalid_request");
  }
  const big = await postMcp(`{"x":"${"a".repeat(5 * 1024 * 1024)}"}`, auth);
  assert.equal(big.status, 413);
  const get = await fetch(mcpUrl(), { headers: auth });
  assert.equal(get.status, 405);
  await get.body?.cancel();
  const wrong = await postMcp({ jsonrpc: "2.0", id: 1, method: "tools/call", params: { name: 5 } }, auth);
  assert.ok(wrong.status < 500, wrong.text);
});

Deno.test("mcp property: random tool arguments and resource URIs, on both eras, never get a 5xx or an internal error", async () => {
  const user = await newUser();
  const { client } = await connectV2(user.token);
  const chat = structured(
    await client.callTool({ name: "chat", arguments: { prompt: standinPrompt({ bytes: 300_000 }) } }),
  );
  await client.close();
  const id: string = chat.transaction_id;
  const envelope = {
    "io.modelcontextprotocol/protocolVersion": CURRENT,
    "io.modelcontextprotocol/clientInfo": { name: "property", version: "1" },
    "io.modelcontextprotocol/clientCapabilities": {},
  };
  const anyId = fc.oneof(fc.constant(id), fc.uuid(), fc.string(), fc.constant(` ${id.toUpperCase()} `));
  const params = fc.oneof(
    fc.record({
      name: fc.constant("fetch_message"),
      arguments: fc.record({
        transaction_id: anyId,
        offset: fc.oneof(fc.integer({ min: -5, max: 310_000 }), fc.double(), fc.string(), fc.constant(2 ** 60)),
        max_bytes: fc.oneof(fc.integer({ min: -5, max: 5_000_000 }), fc.constantFrom(4, 5)),
      }, { requiredKeys: [] }),
    }),
    fc.record({
      name: fc.constantFrom("message_meta", "wait_message"),
      arguments: fc.record({ transaction_id: anyId, timeout_seconds: fc.constantFrom(1, 0, -1, "x", 1e9) }, {
        requiredKeys: [],
      }),
    }),
    fc.record({
      name: fc.constant("list_messages"),
      arguments: fc.record({
        since: fc.oneof(fc.string(), fc.date({ noInvalidDate: true }).map((d) => d.toISOString())),
        limit: fc.oneof(fc.integer(), fc.string()),
      }, { requiredKeys: [] }),
    }),
    fc.record({
      name: fc.constant("chat"),
      arguments: fc.record({
        prompt: fc.oneof(fc.string(), fc.constantFrom("\u0000", "\ud800")),
        messages: fc.jsonValue(),
        provider: fc.string(),
        max_tokens: fc.oneof(fc.integer(), fc.double()),
        mode: fc.string(),
        ttl_seconds: fc.integer(),
      }, { requiredKeys: [] }),
    }),
    fc.record({ uri: fc.oneof(fc.constant(`bus://messages/${id}`), fc.string().map((s) => `bus://messages/${s}`)) }),
  );
  await fc.assert(
    fc.asyncProperty(params, fc.boolean(), async (p, modern) => {
      const method = "uri" in p ? "resources/read" : "tools/call";
      const headers: Record<string, string> = {
        authorization: `Bearer ${user.token}`,
        "mcp-protocol-version": modern ? CURRENT : PREVIOUS,
      };
      if (modern) {
        headers["mcp-method"] = method;
        headers["mcp-name"] = "uri" in p ? p.uri : p.name;
      }
      const body = { jsonrpc: "2.0", id: 1, method, params: modern ? { ...p, _meta: envelope } : p };
      let res;
      try {
        res = await postMcp(body, headers);
      } catch (err) {
        if (err instanceof TypeError && /header/i.test(err.message)) return; // a generated name no header can carry
        throw err;
      }
      assert.ok(res.status < 500, `${res.status}: ${res.text.slice(0, 300)}`);
      assert.ok(!res.text.includes("Internal error"), res.text.slice(0, 300));
    }),
    { numRuns: 250 },
  );
});
