/**
 * The files function on the running stack (CONTRACT.md §13): uploads (raw and multipart), deduplication per owner
 * by SHA-256 (also when two uploads race), ownership (another user gets 404), list, delete, the size limit (413 from
 * Content-Length before a byte is read, and while streaming), bad input (400, never 500), and a 50 MB file back
 * byte for byte.
 */
import assert from "node:assert/strict";
import http from "node:http";
import { adminSql, newUser, testStack } from "../devstack/testing/env.ts";
import { sha256Hex, sha256Stream } from "./claim_check_helpers.ts";
import { deleteFile, filesJson, getFile, randomBytes, upload, uploadForm } from "./files_helpers.ts";

const sql = adminSql();
const MB = 1024 * 1024;
const text = (s: string) => new TextEncoder().encode(s);

Deno.test("an upload answers 201 with the file's SHA-256; the same bytes again answer 200 with the same id, deduplicated", async () => {
  const user = await newUser();
  const bytes = text(`notes ${crypto.randomUUID()}\nsecond line\n`);
  const first = await upload(user.token, bytes, "notes.txt", { "content-type": "text/plain" });
  assert.equal(first.status, 201, JSON.stringify(first.json));
  assert.equal(first.json.sha256, sha256Hex(bytes));
  assert.equal(first.json.size_bytes, bytes.length);
  assert.equal(first.json.filename, "notes.txt");
  assert.equal(first.json.deduplicated, false);
  assert.match(first.json.file_id, /^[0-9a-f-]{36}$/);

  const again = await upload(user.token, bytes, "other-name.txt");
  assert.equal(again.status, 200);
  assert.deepEqual(
    { id: again.json.file_id, dedup: again.json.deduplicated, name: again.json.filename },
    { id: first.json.file_id, dedup: true, name: "notes.txt" },
  );
  const form = new FormData();
  form.append("purpose", "file-extract");
  form.append("file", new File([bytes], "via-form.txt", { type: "text/plain" }));
  const viaForm = await uploadForm(user.token, form);
  assert.equal(viaForm.status, 200, JSON.stringify(viaForm.json));
  assert.equal(viaForm.json.file_id, first.json.file_id);
  assert.equal(viaForm.json.deduplicated, true);
  const [{ n }] = await sql`select count(*)::int as n from public.message_bus_files where owner_id = ${user.id}::uuid`;
  assert.equal(n, 1, "stored once: the duplicates' rows and chunks are gone");

  // Deduplication is per owner: another user's upload of the same bytes is their own file.
  const other = await newUser();
  const theirs = await upload(other.token, bytes, "notes.txt");
  assert.equal(theirs.status, 201);
  assert.notEqual(theirs.json.file_id, first.json.file_id);
});

Deno.test("two uploads of the same new bytes at once get one file: one 201, one 200", async () => {
  const user = await newUser();
  const bytes = randomBytes(3 * MB + 17); // several chunks each
  const [a, b] = await Promise.all([upload(user.token, bytes, "a.bin"), upload(user.token, bytes, "b.bin")]);
  assert.deepEqual([a.status, b.status].sort(), [200, 201], JSON.stringify([a.json, b.json]));
  assert.equal(a.json.file_id, b.json.file_id);
  const [{ files, chunks }] = await sql`
    select count(distinct f.file_id)::int as files, count(c.seq)::int as chunks from public.message_bus_files f
      left join public.message_bus_file_chunks c on c.file_id = f.file_id where f.owner_id = ${user.id}::uuid`;
  assert.deepEqual({ files, chunks }, { files: 1, chunks: 4 });
});

Deno.test("a multipart upload stores the part named file with its name and type; other fields are ignored", async () => {
  const user = await newUser();
  const bytes = text(`{"id":"${crypto.randomUUID()}"}`);
  const form = new FormData();
  form.append("purpose", "file-extract");
  form.append("file", new File([bytes], "data.json", { type: "application/json" }));
  const res = await uploadForm(user.token, form);
  assert.equal(res.status, 201, JSON.stringify(res.json));
  assert.equal(res.json.filename, "data.json");
  assert.equal(res.json.sha256, sha256Hex(bytes));
  const got = await getFile(user.token, res.json.file_id);
  assert.equal(got.headers.get("content-type"), "application/json");
  assert.deepEqual(new Uint8Array(await got.arrayBuffer()), bytes);
});

Deno.test("GET /files/<id> returns the bytes to their owner only; the list shows the caller's files", async () => {
  const owner = await newUser();
  const other = await newUser();
  const bytes = text(`héllo ✓ ${crypto.randomUUID()}`);
  const name = "résumé ✓.txt";
  const up = await upload(owner.token, bytes, encodeURIComponent(name), {
    "content-type": "text/plain; charset=utf-8",
  });
  assert.equal(up.status, 201, JSON.stringify(up.json));
  assert.equal(up.json.filename, name, "a percent-encoded x-filename is decoded");
  const id = up.json.file_id;

  const res = await getFile(owner.token, id);
  assert.equal(res.status, 200);
  assert.equal(res.headers.get("etag"), `"${sha256Hex(bytes)}"`);
  assert.equal(res.headers.get("content-type"), "text/plain; charset=utf-8");
  assert.equal(res.headers.get("content-disposition"), `attachment; filename*=UTF-8''${encodeURIComponent(name)}`);
  assert.deepEqual(new Uint8Array(await res.arrayBuffer()), bytes);

  for (const [token, status] of [[other.token, 404], [testStack().anonKey, 401]] as const) {
    const denied = await getFile(token, id);
    assert.equal(denied.status, status);
    await denied.body?.cancel();
  }
  const unknown = await getFile(owner.token, crypto.randomUUID());
  assert.equal(unknown.status, 404);
  await unknown.body?.cancel();

  const mine = await filesJson(owner.token);
  assert.equal(mine.status, 200);
  assert.deepEqual(mine.json.files.map((f: { file_id: string }) => f.file_id), [id]);
  assert.deepEqual(Object.keys(mine.json.files[0]).sort(), [
    "content_type",
    "created_at",
    "expires_at",
    "file_id",
    "filename",
    "sha256",
    "size_bytes",
  ]);
  assert.deepEqual((await filesJson(other.token)).json.files, []);
  // The service role lists a user's files with x-owner-id.
  const asService = await filesJson(testStack().serviceRoleKey, "", { headers: { "x-owner-id": owner.id } });
  assert.deepEqual(asService.json.files.map((f: { file_id: string }) => f.file_id), [id]);
});

Deno.test("DELETE /files/<id> answers 204 to the owner (the bytes go), 404 to anyone else and afterwards", async () => {
  const owner = await newUser();
  const other = await newUser();
  const up = await upload(owner.token, randomBytes(2 * MB), "big.bin");
  const id = up.json.file_id;
  assert.equal(await deleteFile(other.token, id), 404);
  const still = await getFile(owner.token, id);
  assert.equal(still.status, 200, "another user's delete changed nothing");
  await still.body?.cancel();
  assert.equal(await deleteFile(owner.token, id), 204);
  const gone = await getFile(owner.token, id);
  assert.equal(gone.status, 404);
  await gone.body?.cancel();
  assert.equal(await deleteFile(owner.token, id), 404);
  const [{ n }] = await sql`select count(*)::int as n from public.message_bus_file_chunks where file_id = ${id}::uuid`;
  assert.equal(n, 0);
});

/** A raw POST whose Content-Length is `declared`, sending no more than `send` bytes. */
function declaredPost(token: string, declared: number, send: Uint8Array): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request(`${testStack().functionsUrl}/files`, {
      method: "POST",
      headers: { authorization: `Bearer ${token}`, "x-filename": "huge.bin", "content-length": String(declared) },
    }, (res) => {
      let body = "";
      res.on("data", (d) => (body += d));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on("error", reject);
    req.write(send);
    // The answer comes before the body is complete; nothing more is sent.
  });
}

Deno.test("413 past MESSAGE_BUS_MAX_FILE_MB: from Content-Length before reading, and while streaming a body without one", async () => {
  const user = await newUser();
  const early = await declaredPost(user.token, 101 * MB, text("x"));
  assert.equal(early.status, 413, early.body);
  assert.equal(JSON.parse(early.body).error.code, "payload_too_large");

  // A chunked body (no Content-Length) of 100 MB + 1 byte: refused once it passes the limit, nothing kept.
  const piece = text("0123456789abcdef".repeat(4096)); // 64 KiB of text
  let left = 100 * MB + 1;
  const body = new ReadableStream<Uint8Array>({
    pull(c) {
      if (left <= 0) return c.close();
      const n = Math.min(left, piece.length);
      c.enqueue(piece.subarray(0, n));
      left -= n;
    },
  });
  const res = await fetch(`${testStack().functionsUrl}/files`, {
    method: "POST",
    headers: { authorization: `Bearer ${user.token}`, "x-filename": "stream.txt" },
    body,
  });
  assert.equal(res.status, 413);
  assert.equal((await res.json()).error.code, "payload_too_large");
  const [{ n }] = await sql`select count(*)::int as n from public.message_bus_files where owner_id = ${user.id}::uuid`;
  assert.equal(n, 0, "the refused upload left no file (nor chunks: they cascade)");
});

Deno.test("bad uploads answer 400 naming the problem, never 500", async () => {
  const user = await newUser();
  const cases: Array<[string, () => Promise<{ status: number; json: { error: { code: string } } }>]> = [
    ["no x-filename", () => upload(user.token, "x", null)],
    ["a path as name", () => upload(user.token, "x", "../etc/passwd")],
    ["an empty name", () => upload(user.token, "x", "")],
    ["a control character", () => upload(user.token, "x", "a%0Ab.txt")],
    ["x-owner-id from a user", () => upload(user.token, "x", "a.txt", { "x-owner-id": crypto.randomUUID() })],
    [
      "a query string",
      () => filesJson(user.token, "?x=1", { method: "POST", headers: { "x-filename": "a" }, body: "x" }),
    ],
    ["a malformed id", () => filesJson(user.token, "/not-a-uuid")],
    ["multipart without a file", () => {
      const form = new FormData();
      form.append("purpose", "file-extract");
      return uploadForm(user.token, form);
    }],
    ["a file under another field", () => {
      const form = new FormData();
      form.append("document", new File([text("x")], "a.txt"));
      return uploadForm(user.token, form);
    }],
    ["two files", () => {
      const form = new FormData();
      form.append("file", new File([text("one")], "a.txt"));
      form.append("file", new File([text("two")], "b.txt"));
      return uploadForm(user.token, form);
    }],
    [
      "a broken multipart body",
      () =>
        upload(user.token, '--x\r\nContent-Disposition: form-data; name="file"; filename="a"\r\n\r\nabc', null, {
          "content-type": "multipart/form-data; boundary=x",
        }),
    ],
  ];
  for (const [what, call] of cases) {
    const res = await call();
    assert.equal(res.status, 400, `${what}: ${JSON.stringify(res.json)}`);
    assert.equal(typeof res.json.error.code, "string", what);
  }
  const [{ n }] = await sql`select count(*)::int as n from public.message_bus_files where owner_id = ${user.id}::uuid`;
  assert.equal(n, 0, "no refused upload left a file");
  const noToken = await fetch(`${testStack().functionsUrl}/files`, { method: "POST", body: "x" });
  assert.equal(noToken.status, 401);
  await noToken.body?.cancel();
});

Deno.test("an empty file is a file", async () => {
  const user = await newUser();
  const res = await upload(user.token, new Uint8Array(0), "empty.txt");
  assert.equal(res.status, 201, JSON.stringify(res.json));
  assert.equal(res.json.size_bytes, 0);
  assert.equal(res.json.sha256, sha256Hex(new Uint8Array(0)));
  const got = await getFile(user.token, res.json.file_id);
  assert.equal(got.status, 200);
  assert.equal((await got.arrayBuffer()).byteLength, 0);
});

Deno.test("a 50 MB file comes back byte for byte (identity and gzip), stored in chunks, never held whole", async () => {
  const user = await newUser();
  // Half random, half text: the first chunk decides the compression (random: stored as it is).
  const size = 50 * MB;
  const bytes = randomBytes(size);
  bytes.set(text("abcdefghij".repeat(size / 20)), size / 2);
  const up = await upload(user.token, bytes, "fifty.bin");
  assert.equal(up.status, 201, JSON.stringify(up.json));
  assert.equal(up.json.sha256, sha256Hex(bytes));
  const [row] =
    await sql`select chunk_count, compression, stored_size_bytes::float8 as stored from public.message_bus_files
                           where file_id = ${up.json.file_id}::uuid`;
  assert.equal(row.chunk_count, 50);
  assert.equal(row.compression, "none");
  const res = await getFile(user.token, up.json.file_id, { "accept-encoding": "identity" });
  assert.equal(res.headers.get("content-length"), String(size));
  const back = await sha256Stream(res.body!);
  assert.deepEqual(back, { hex: sha256Hex(bytes), size });

  // A text file is stored gzip and served gzip to clients that accept it (fetch decodes it).
  const words = text("the quick brown fox jumps over the lazy dog\n".repeat(300_000)); // 13.2 MB
  const up2 = await upload(user.token, words, "fox.txt");
  const [row2] = await sql`select compression, stored_size_bytes::float8 as stored from public.message_bus_files
                            where file_id = ${up2.json.file_id}::uuid`;
  assert.equal(row2.compression, "gzip");
  assert.ok(row2.stored < words.length / 10, `stored ${row2.stored} of ${words.length}`);
  const gz = await getFile(user.token, up2.json.file_id);
  assert.deepEqual(await sha256Stream(gz.body!), { hex: sha256Hex(words), size: words.length });
});

Deno.test("files tests: close the database client", async () => {
  await sql.end({ timeout: 5 });
});
