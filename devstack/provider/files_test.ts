import assert from "node:assert/strict";
import OpenAI, { toFile } from "openai";
import { clientAt, controlRoute, withStandin } from "./_testing.ts";

/** Moonshot's purpose, which the SDK's FilePurpose type does not list. */
const FILE_EXTRACT = "file-extract" as OpenAI.FilePurpose;
const TEXT = "Quarterly notes: café, 漢字, 🙂 and a/b.\nSecond line.";

async function upload(client: OpenAI, text: string | Uint8Array, name = "notes.txt") {
  const bytes = typeof text === "string" ? new TextEncoder().encode(text) : text;
  return await client.files.create({ file: await toFile(bytes, name), purpose: FILE_EXTRACT });
}

Deno.test("files: create, list, retrieve, content and delete with client.files.*", async () => {
  await withStandin(async (served) => {
    const kimi = clientAt(served, "/kimi/v1");
    const file = await upload(kimi, TEXT);
    assert.match(file.id, /^[0-9a-v]{20}$/);
    assert.equal(file.object, "file");
    assert.equal(file.bytes, new TextEncoder().encode(TEXT).length);
    assert.equal(file.filename, "notes.txt");
    assert.equal(file.purpose, "file-extract");
    assert.equal(file.status, "ok");
    assert.equal(typeof file.created_at, "number");

    const second = await upload(kimi, "other", "other.md");
    assert.notEqual(second.id, file.id);
    const listed = [];
    for await (const f of kimi.files.list()) listed.push(f.id);
    assert.deepEqual(listed, [file.id, second.id]);
    assert.deepEqual(await kimi.files.retrieve(file.id), file);

    // Moonshot answers a JSON text that its examples put whole into a system message.
    const text = await (await kimi.files.content(file.id)).text();
    const extracted = JSON.parse(text);
    assert.deepEqual(extracted, {
      content: TEXT,
      file_type: "text/plain",
      filename: "notes.txt",
      title: "",
      type: "file",
    });

    const deleted = await kimi.files.delete(file.id);
    assert.deepEqual(deleted, { id: file.id, object: "file", deleted: true });
    const gone = await kimi.files.retrieve(file.id).then(() => null, (e) => e);
    assert.ok(gone instanceof OpenAI.NotFoundError, String(gone));
    assert.equal(gone.type, "invalid_request_error");
    assert.ok(await kimi.files.content(file.id).then(() => null, (e) => e) instanceof OpenAI.NotFoundError);
    assert.ok(await kimi.files.delete(file.id).then(() => null, (e) => e) instanceof OpenAI.NotFoundError);

    const stats = served.stats().prefixes["/kimi/v1"];
    assert.equal(stats.uploads, 2);
    assert.equal(stats.content_reads, 1);
    assert.equal(stats.deletes, 1);
    assert.deepEqual(served.stats().files, { count: 1, bytes: 5 });
  });
});

Deno.test("files are kept per base path, and a binary file's extraction names its digest", async () => {
  await withStandin(async (served) => {
    const kimi = clientAt(served, "/kimi/v1");
    const glm = clientAt(served, "/glm/api/paas/v4");
    const binary = new Uint8Array([0xff, 0xfe, 0x00, 0x80, 0x81]);
    const file = await upload(kimi, binary, "blob.pdf");
    assert.ok(await glm.files.retrieve(file.id).then(() => null, (e) => e) instanceof OpenAI.NotFoundError);
    const extracted = JSON.parse(await (await kimi.files.content(file.id)).text());
    assert.equal(extracted.file_type, "application/pdf");
    assert.match(extracted.content, /5 bytes of binary data, sha256 [0-9a-f]{64}/);
  });
});

Deno.test("uploads are counted per prefix, and /__standin/files/forget makes the provider forget them", async () => {
  await withStandin(async (served) => {
    const kimi = clientAt(served, "/kimi/v1");
    const file = await upload(kimi, TEXT);
    await (await kimi.files.content(file.id)).text();
    const forgot = await controlRoute(served, "POST", "files/forget", { prefix: "/kimi" });
    assert.deepEqual(forgot.json, { forgotten: 1 });
    assert.ok(await kimi.files.content(file.id).then(() => null, (e) => e) instanceof OpenAI.NotFoundError);
    const again = await upload(kimi, TEXT);
    assert.notEqual(again.id, file.id);
    const stats = served.stats().prefixes["/kimi"];
    assert.equal(stats.uploads, 2);
    assert.equal(stats.deletes, 0, "forgetting is not deleting");
    await controlRoute(served, "POST", "reset");
    assert.deepEqual(served.stats().files, { count: 0, bytes: 0 });
  });
});

Deno.test("uploads past the store's cap or the per-file limit get 413; a bad purpose or body gets 400", async () => {
  await withStandin(async (served) => {
    const kimi = clientAt(served, "/kimi/v1");
    await upload(kimi, "x".repeat(600));
    const full = await upload(kimi, "y".repeat(600)).then(() => null, (e) => e);
    assert.ok(full instanceof OpenAI.APIError && full.status === 413, String(full));
    assert.match(full.message, /1000 bytes/);
    const huge = await upload(kimi, "z".repeat(900)).then(() => null, (e) => e);
    assert.ok(huge instanceof OpenAI.APIError && huge.status === 413, String(huge));
    const tooBig = await upload(kimi, "w".repeat(2000)).then(() => null, (e) => e);
    assert.ok(tooBig instanceof OpenAI.APIError && tooBig.status === 413, String(tooBig));
    assert.match(tooBig.message, /at most 1500 bytes/);

    const purpose = await kimi.files.create({ file: await toFile(new Uint8Array(1), "a.txt"), purpose: "vision" })
      .then(() => null, (e) => e);
    assert.ok(purpose instanceof OpenAI.BadRequestError, String(purpose));
    const notMultipart = await fetch(`${served.url}/kimi/v1/files`, {
      method: "POST",
      headers: { authorization: "Bearer k", "content-type": "application/json" },
      body: "{}",
    });
    assert.equal(notMultipart.status, 400);
    await notMultipart.body?.cancel();
    assert.equal(served.stats().files.count, 1);
  }, { files: { maxTotalBytes: 1000, maxFileBytes: 1500 } });
});

Deno.test("an upload without Content-Length is refused with 413 once it passes the limit", async () => {
  await withStandin(async (served) => {
    const boundary = "standin-boundary";
    const head = `--${boundary}\r\ncontent-disposition: form-data; name="file"; filename="big.txt"\r\n\r\n`;
    let sent = 0;
    const body = new ReadableStream<Uint8Array>({
      pull(controller) {
        if (sent === 0) controller.enqueue(new TextEncoder().encode(head));
        if (sent > 1024 * 1024) return controller.close();
        controller.enqueue(new Uint8Array(16 * 1024).fill(97));
        sent += 16 * 1024;
      },
    });
    const res = await fetch(`${served.url}/kimi/v1/files`, {
      method: "POST",
      headers: { authorization: "Bearer k", "content-type": `multipart/form-data; boundary=${boundary}` },
      body,
    });
    assert.equal(res.status, 413);
    assert.match((await res.json()).error.message, /at most 1500 bytes/);
  }, { files: { maxFileBytes: 1500 } });
});

Deno.test("the files API needs a key like every provider route", async () => {
  await withStandin(async (served) => {
    const res = await fetch(`${served.url}/kimi/v1/files`);
    assert.equal(res.status, 401);
    await res.body?.cancel();
  });
});
