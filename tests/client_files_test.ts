/**
 * Files through the SDK and the CLI against the local stack (CONTRACT.md §13): `uploadFile()` (deduplicated the
 * second time), `invoke(..., { files })`, `downloadFile()` verified, `listFiles()`, `deleteFile()`; and the CLI's
 * `upload <path>` (streamed from disk), `files` and `invoke --file`.
 */
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { newUser, testStack } from "../devstack/testing/env.ts";
import { createBusClient } from "../client/mod.ts";
import { fetchJson } from "./claim_check_helpers.ts";

const CLI = new URL("../client/cli.ts", import.meta.url).pathname;
const ROOT = new URL("..", import.meta.url).pathname;
const hex = (bytes: Uint8Array) => createHash("sha256").update(bytes).digest("hex");

async function cli(args: string[], token: string): Promise<{ code: number; out: string; err: string }> {
  const keep = ["HOME", "PATH", "DENO_DIR", "XDG_CACHE_HOME"].flatMap((n) =>
    Deno.env.get(n) ? [[n, Deno.env.get(n)!]] : []
  );
  const { code, stdout, stderr } = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", CLI, ...args],
    cwd: ROOT,
    env: {
      ...Object.fromEntries(keep),
      SUPABASE_URL: testStack().url,
      SUPABASE_ANON_KEY: testStack().anonKey,
      BUS_ACCESS_TOKEN: token,
      NO_COLOR: "1",
      DENO_NO_PACKAGE_JSON: "1",
    },
    clearEnv: true,
    stdout: "piped",
    stderr: "piped",
  }).output();
  return { code, out: new TextDecoder().decode(stdout), err: new TextDecoder().decode(stderr) };
}

Deno.test("SDK: uploadFile() once, again deduplicated; invoke with files; download verified; list; delete", async () => {
  const user = await newUser();
  const bus = createBusClient({ url: testStack().url, key: testStack().anonKey, accessToken: user.token });
  try {
    const bytes = new TextEncoder().encode(`SDK file ${crypto.randomUUID()}\n`.repeat(50_000)); // ~2.4 MB
    const first = await bus.uploadFile(bytes, { filename: "notes ✓.txt", contentType: "text/plain" });
    assert.equal(first.error, null, JSON.stringify(first.error));
    assert.equal(first.data!.sha256, hex(bytes));
    assert.equal(first.data!.filename, "notes ✓.txt");
    assert.equal(first.data!.deduplicated, false);
    const again = await bus.uploadFile(new Blob([bytes as BlobPart]), { filename: "copy.txt" });
    assert.deepEqual([again.data!.file_id, again.data!.deduplicated], [first.data!.file_id, true]);

    const id = first.data!.file_id;
    const invoked = await bus.invoke(
      { tool: "chat", provider: "glm", input: { messages: [{ role: "user", content: "summarise" }] } },
      { files: [id] },
    );
    assert.equal(invoked.error, null, JSON.stringify(invoked.error));
    const meta = await fetchJson(user.token, `/${invoked.data!.transaction_id}/meta`);
    assert.deepEqual(meta.json.files.map((f: { file_id: string }) => f.file_id), [id]);

    const got = await bus.downloadFile(id);
    assert.equal(got.data!.checksum, `sha256:${hex(bytes)}`);
    assert.deepEqual(got.data!.bytes, bytes);
    assert.deepEqual((await bus.listFiles()).data!.map((f) => f.file_id), [id]);
    assert.equal((await bus.deleteFile(id)).error, null);
    assert.equal((await bus.downloadFile(id)).error?.code, "not_found");
  } finally {
    await bus.close();
  }
});

Deno.test("CLI: upload <path> streams the file and prints its id; invoke --file sends it; files lists it", async () => {
  const user = await newUser();
  const path = await Deno.makeTempFile({ suffix: ".md" });
  try {
    const bytes = new TextEncoder().encode(`# CLI file ${crypto.randomUUID()}\n`);
    await Deno.writeFile(path, bytes);
    const up = await cli(["upload", path, "--content-type", "text/markdown"], user.token);
    assert.equal(up.code, 0, up.err);
    const file = JSON.parse(up.out);
    assert.equal(file.sha256, hex(bytes));
    assert.equal(file.filename, path.split("/").pop());
    assert.equal(file.content_type, "text/markdown");
    const again = await cli(["upload", path, "--name", "renamed.md"], user.token);
    assert.equal(JSON.parse(again.out).deduplicated, true);

    const invoked = await cli(
      ["invoke", "--prompt", "what is in it?", "--provider", "kimi", "--file", file.file_id],
      user.token,
    );
    assert.equal(invoked.code, 0, invoked.err);
    const meta = await fetchJson(user.token, `/${JSON.parse(invoked.out).transaction_id}/meta`);
    assert.deepEqual(meta.json.files.map((f: { file_id: string }) => f.file_id), [file.file_id]);

    const listed = await cli(["files"], user.token);
    assert.deepEqual(JSON.parse(listed.out).files.map((f: { file_id: string }) => f.file_id), [file.file_id]);
    const missing = await cli(["upload", `${path}.nope`], user.token);
    assert.equal(missing.code, 2);
    assert.match(missing.err, /cannot read/);
  } finally {
    await Deno.remove(path);
  }
});
