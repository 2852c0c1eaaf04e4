/**
 * The MCP server driven by an independent client: the MCP Inspector's CLI (`npx @modelcontextprotocol/inspector
 * --cli`, pinned), on both protocol eras. It lists the tools, calls chat, pages a 10 MB result back in 4 MiB
 * pages and verifies the SHA-256 of the joined pages, reads the resource, and is refused another user's ids.
 * Exit codes of the CLI: 0 ok, 1 protocol error, 3 auth required, 4 unreachable, 5 the tool answered isError.
 *
 * The first run downloads the Inspector into npm's cache (about 20 s); later runs start in about a second.
 */
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { newUser } from "../devstack/testing/env.ts";
import { mcpUrl, standinPrompt } from "./mcp_helpers.ts";

const INSPECTOR = "@modelcontextprotocol/inspector@2.12.0";
const TEN_MB = 10 * 1024 * 1024;
const PAGE = 4 * 1024 * 1024;

interface Run {
  code: number;
  stdout: string;
  stderr: string;
  // deno-lint-ignore no-explicit-any
  json: any;
}

let home: string | undefined;

/** Runs the Inspector CLI against the endpoint; bounded by `timeoutMs` (the first run downloads it). */
async function inspector(
  args: string[],
  opts: { token?: string; era?: "legacy" | "modern"; timeoutMs?: number } = {},
): Promise<Run> {
  // Its catalog and client config go to a temporary folder, not to the user's home; removed when the tests end.
  if (!home) {
    const dir = home = await Deno.makeTempDir({ prefix: "mcp-inspector-" });
    globalThis.addEventListener("unload", () => Deno.removeSync(dir, { recursive: true }));
  }
  const command = new Deno.Command("npx", {
    args: [
      "-y",
      INSPECTOR,
      "--cli",
      mcpUrl(),
      "--transport",
      "http",
      "--format",
      "json",
      "--stored-auth-only",
      "--protocol-era",
      opts.era ?? "legacy",
      ...(opts.token ? ["--header", `Authorization: Bearer ${opts.token}`] : []),
      ...args,
    ],
    env: {
      MCP_CATALOG_PATH: `${home}/mcp.json`,
      MCP_CLIENT_CONFIG_PATH: `${home}/client.json`,
      NO_UPDATE_NOTIFIER: "1",
      npm_config_update_notifier: "false",
    },
    stdout: "piped",
    stderr: "piped",
    signal: AbortSignal.timeout(opts.timeoutMs ?? 60_000),
  });
  const out = await command.output();
  const stdout = new TextDecoder().decode(out.stdout);
  const stderr = new TextDecoder().decode(out.stderr);
  let json: unknown = null;
  const text = stdout.trim() || stderr.split("\n").filter((l) => l.startsWith("{")).at(-1) || "";
  if (text) {
    try {
      json = JSON.parse(text);
    } catch (err) {
      throw new Error(`the Inspector printed no JSON (exit ${out.code}): ${text.slice(0, 300)}: ${err}`);
    }
  }
  return { code: out.code, stdout, stderr, json };
}

const call = (name: string, args: Record<string, unknown>) => [
  "--method",
  "tools/call",
  "--tool-name",
  name,
  "--tool-args-json",
  JSON.stringify(args),
];

Deno.test({
  name: "Inspector CLI: tools/list on the current and the previous protocol era",
  async fn() {
    const user = await newUser();
    for (const era of ["modern", "legacy"] as const) {
      // The first call may download the Inspector.
      const run = await inspector(["--method", "tools/list"], { token: user.token, era, timeoutMs: 180_000 });
      assert.equal(run.code, 0, `${era}: ${run.stderr}`);
      const names = run.json.result.tools.map((t: { name: string }) => t.name).sort();
      assert.deepEqual(names, ["chat", "fetch_message", "list_messages", "message_meta", "wait_message"], era);
    }
  },
});

Deno.test({
  name: "Inspector CLI: chat, a 10 MB result paged back and verified, resources/read",
  async fn() {
    const user = await newUser();
    const chat = await inspector(call("chat", { prompt: standinPrompt({ bytes: TEN_MB }) }), {
      token: user.token,
      era: "modern",
    });
    assert.equal(chat.code, 0, chat.stderr);
    const { transaction_id: id, checksum, payload_size_bytes } = chat.json.result.structuredContent;
    assert.equal(payload_size_bytes, TEN_MB);
    assert.ok(chat.json.result.content.some((b: { type: string }) => b.type === "resource_link"));

    const hash = createHash("sha256");
    let offset: number | null = 0, pages = 0, total = 0;
    while (offset !== null) {
      const page = await inspector(call("fetch_message", { transaction_id: id, offset, max_bytes: PAGE }), {
        token: user.token,
      });
      assert.equal(page.code, 0, page.stderr);
      const info = page.json.result.structuredContent;
      assert.equal(info.encoding, "utf-8");
      const bytes = new TextEncoder().encode(page.json.result.content[0].text);
      assert.equal(bytes.length, info.page_bytes);
      hash.update(bytes);
      total += bytes.length;
      offset = info.next_offset;
      pages++;
    }
    assert.equal(pages, 3);
    assert.equal(total, TEN_MB);
    assert.equal(`sha256:${hash.digest("hex")}`, checksum, "the joined pages hash to the checksum");

    const read = await inspector(["--method", "resources/read", "--uri", `bus://messages/${id}`], {
      token: user.token,
      era: "modern",
    });
    assert.equal(read.code, 0, read.stderr);
    const text = read.json.result.contents[0].text;
    assert.equal(`sha256:${createHash("sha256").update(new TextEncoder().encode(text)).digest("hex")}`, checksum);
  },
});

Deno.test({
  name:
    "Inspector CLI: another user's id and a failed chat are tool errors (exit 5), a refused read exit 1, no token 3",
  async fn() {
    const [owner, other] = [await newUser(), await newUser()];
    const chat = await inspector(call("chat", { prompt: "hello" }), { token: owner.token });
    assert.equal(chat.code, 0, chat.stderr);
    const id = chat.json.result.structuredContent.transaction_id;
    const theirs = await inspector(call("fetch_message", { transaction_id: id }), { token: other.token });
    assert.equal(theirs.code, 5, theirs.stderr);
    assert.equal(theirs.json.result.isError, true);
    assert.match(theirs.json.result.content[0].text, /No message/);
    const read = await inspector(["--method", "resources/read", "--uri", `bus://messages/${id}`], {
      token: other.token,
    });
    assert.equal(read.code, 1, read.stdout);
    // A recorded failure: a tool error whose structured content still fits chat's output schema (checked here).
    const failed = await inspector(call("chat", { prompt: standinPrompt({ status: 400 }) }), {
      token: owner.token,
      era: "modern",
    });
    assert.equal(failed.code, 5, failed.stderr);
    assert.equal(failed.json.result.structuredContent.status, "failed");
    assert.equal(failed.json.result._meta["message-bus/error"].status, "failed");
    const anonymous = await inspector(["--method", "tools/list"]);
    assert.equal(anonymous.code, 3, anonymous.stderr);
    assert.equal(anonymous.json.error.code, "auth_required");
  },
});
