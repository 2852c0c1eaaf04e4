/**
 * Files in chat on the running stack (CONTRACT.md §13), against the provider stand-in, whose completion id is a
 * digest of the exact request body it received (so each test proves the bytes the provider got):
 * - extract (kimi's default): the file goes to the provider's files API once, however many chats use it; each chat
 *   sends the provider's extraction as a system message; a provider that forgot the file gets it again;
 * - inline (glm's default): the file's text, unchanged, as a system message; nothing is uploaded;
 * - the message records its files (meta `files`); unknown, foreign and (inline) binary files are a 400 before
 *   anything is recorded.
 */
import assert from "node:assert/strict";
import { adminSql, newUser } from "../devstack/testing/env.ts";
import { runMessage } from "../supabase/functions/_shared/invoke/run.ts";
import { toolNamed } from "../supabase/functions/_shared/tools/registry.ts";
import { parseSettings } from "../supabase/functions/_shared/env.ts";
import { BusError } from "../supabase/functions/_shared/errors.ts";
import { fetchJson, invoke, MODEL, sha256Hex } from "./claim_check_helpers.ts";
import {
  binaryWith,
  deleteFile,
  kimiBase,
  standinCompletionId,
  standinContent,
  standinFiles,
  standinForgetFiles,
  standinPrefixStats,
  upload,
} from "./files_helpers.ts";

const sql = adminSql();

/** A chat invoke with `files`; the prompt is unique so that every completion id is too. */
function chat(provider: "kimi" | "glm", files: string[], prompt = `about the file ${crypto.randomUUID()}`) {
  return { tool: "chat", provider, model: MODEL, input: { messages: [{ role: "user", content: prompt }], files } };
}

/** The request body the bus must send for `body` with these system message contents (files cut, messages first). */
function expectedRequest(body: ReturnType<typeof chat>, systemContents: string[]): string {
  const messages = [...systemContents.map((content) => ({ role: "system", content })), ...body.input.messages];
  return JSON.stringify({ messages, model: MODEL, stream: false });
}

async function completionId(token: string, transactionId: string): Promise<string> {
  const res = await fetch(
    `${Deno.env.get("SUPABASE_URL")}/functions/v1/message-fetch/${transactionId}`,
    { headers: { authorization: `Bearer ${token}` } },
  );
  return (await res.json()).id;
}

async function messageCount(owner: string): Promise<number> {
  const [{ n }] = await sql`select count(*)::int as n from public.message_bus where owner_id = ${owner}::uuid`;
  return n;
}

Deno.test("extract: two chats with the same file upload it to the provider once and send its extraction each time", async () => {
  const user = await newUser();
  const name = `report-${crypto.randomUUID()}.txt`;
  const text = `Quarterly report\nRevenue "up" 12% \\ costs flat\n`;
  const file = (await upload(user.token, text, name, { "content-type": "text/plain" })).json;
  const uploadsBefore = (await standinPrefixStats()).uploads;

  const first = chat("kimi", [file.file_id]);
  const second = chat("kimi", [file.file_id]);
  const a = await invoke(user.token, first);
  const b = await invoke(user.token, second);
  assert.equal(a.status, 200, JSON.stringify(a.json));
  assert.equal(b.status, 200, JSON.stringify(b.json));

  const atProvider = await standinFiles(name);
  assert.equal(atProvider.length, 1, "exactly one upload for two chats");
  assert.equal(atProvider[0].purpose, "file-extract");
  assert.equal(atProvider[0].bytes, new TextEncoder().encode(text).length);
  assert.equal((await standinPrefixStats()).uploads - uploadsBefore, 1);
  const [remembered] = await sql`select provider_file_id from bus.provider_files
                                  where file_id = ${file.file_id}::uuid and provider = 'kimi'`;
  assert.equal(remembered.provider_file_id, atProvider[0].id);

  // What the provider got: its own extraction, whole, as the first (system) message; `files` itself not sent.
  const extraction = await standinContent(atProvider[0].id);
  assert.match(extraction, /Quarterly report/);
  assert.equal(
    await completionId(user.token, a.json.transaction_id),
    standinCompletionId(expectedRequest(first, [extraction])),
  );
  assert.equal(
    await completionId(user.token, b.json.transaction_id),
    standinCompletionId(expectedRequest(second, [extraction])),
  );

  const meta = await fetchJson(user.token, `/${a.json.transaction_id}/meta`);
  assert.deepEqual(meta.json.files, [{
    file_id: file.file_id,
    sha256: sha256Hex(new TextEncoder().encode(text)),
    filename: name,
  }]);
});

Deno.test("extract: a provider that forgot the file gets it again, once", async () => {
  const user = await newUser();
  const name = `forgotten-${crypto.randomUUID()}.md`;
  const file = (await upload(user.token, `# Notes ${name}\n`, name)).json;
  assert.equal((await invoke(user.token, chat("kimi", [file.file_id]))).status, 200);
  const [before] = await standinFiles(name);
  await standinForgetFiles();
  assert.deepEqual(await standinFiles(name), []);

  const again = chat("kimi", [file.file_id]);
  const res = await invoke(user.token, again);
  assert.equal(res.status, 200, JSON.stringify(res.json));
  const after = await standinFiles(name);
  assert.equal(after.length, 1, "uploaded again, once");
  assert.notEqual(after[0].id, before.id);
  assert.equal(
    await completionId(user.token, res.json.transaction_id),
    standinCompletionId(expectedRequest(again, [await standinContent(after[0].id)])),
  );
  assert.equal((await invoke(user.token, chat("kimi", [file.file_id]))).status, 200);
  assert.equal((await standinFiles(name)).length, 1, "and remembered again");
});

Deno.test("inline: the files' text, unchanged and in order, as system messages; nothing is uploaded", async () => {
  const user = await newUser();
  const nameA = `a-${crypto.randomUUID()}.txt`;
  const nameB = `b-${crypto.randomUUID()}.csv`;
  const textA = `line one\n\t"quoted" \\ back\u0001slash é 漢字 🙂\n`;
  const textB = "x,y\n1,2\n".repeat(200_000); // 1.6 MB: streamed from its chunks into the request
  const a = (await upload(user.token, textA, nameA)).json;
  const b = (await upload(user.token, textB, nameB)).json;
  const body = chat("glm", [b.file_id, a.file_id]);
  const res = await invoke(user.token, body);
  assert.equal(res.status, 200, JSON.stringify(res.json));
  assert.equal(
    await completionId(user.token, res.json.transaction_id),
    standinCompletionId(expectedRequest(body, [textB, textA])),
  );
  assert.deepEqual(await standinFiles(nameA), []);
  assert.deepEqual(await standinFiles(nameB), []);
  const meta = await fetchJson(user.token, `/${res.json.transaction_id}/meta`);
  assert.deepEqual(meta.json.files.map((f: { filename: string }) => f.filename), [nameB, nameA]);
});

Deno.test("a binary file: 400 file_not_text for an inline provider, before anything is recorded; extract takes it", async () => {
  const user = await newUser();
  const name = `scan-${crypto.randomUUID()}.pdf`;
  const file = (await upload(user.token, binaryWith("binary"), name, { "content-type": "application/pdf" })).json;
  const refused = await invoke(user.token, chat("glm", [file.file_id]));
  assert.equal(refused.status, 400, JSON.stringify(refused.json));
  assert.equal(refused.json.error.code, "file_not_text");
  assert.deepEqual(refused.json.error.file_ids, [file.file_id]);
  assert.equal(await messageCount(user.id), 0, "no message recorded for a refused request");

  const extracted = await invoke(user.token, chat("kimi", [file.file_id]));
  assert.equal(extracted.status, 200, JSON.stringify(extracted.json));
  assert.equal((await standinFiles(name)).length, 1);
});

Deno.test("unknown and other users' files are a 400 naming them, before anything is recorded", async () => {
  const user = await newUser();
  const other = await newUser();
  const mine = (await upload(user.token, `mine ${crypto.randomUUID()}`, "mine.txt")).json;
  const theirs = (await upload(other.token, `theirs ${crypto.randomUUID()}`, "theirs.txt")).json;
  const unknown = crypto.randomUUID();
  for (const provider of ["kimi", "glm"] as const) {
    const res = await invoke(user.token, chat(provider, [mine.file_id, theirs.file_id, unknown]));
    assert.equal(res.status, 400, JSON.stringify(res.json));
    assert.equal(res.json.error.code, "file_not_found");
    assert.deepEqual(res.json.error.file_ids, [theirs.file_id, unknown]);
    assert.deepEqual(res.json.error.issues.map((i: { path: string }) => i.path), ["input.files.1", "input.files.2"]);
  }
  const bad = await invoke(user.token, chat("kimi", ["not-a-uuid"]));
  assert.equal(bad.status, 400);
  assert.equal(bad.json.error.issues[0].path, "input.files.0");
  assert.equal(await messageCount(user.id), 0);
});

Deno.test("a file deleted between the request's check and its run fails the message: 400 file_not_found, recorded", async () => {
  const user = await newUser();
  const file = (await upload(user.token, `short-lived ${crypto.randomUUID()}`, "gone.txt")).json;
  // The request passed the check (its row is recorded), then the file goes before the run uses it: the run is
  // driven in process (runMessage, as submitInvoke calls it) so that the deletion lands in between.
  const [{ transaction_id: id }] = await sql`
    select transaction_id from bus.begin_message(${user.id}::uuid, 'chat', 'kimi', ${MODEL}, null, null, 3600)`;
  assert.equal(await deleteFile(user.token, file.file_id), 204);
  const input = { messages: [{ role: "user", content: "hi" }], files: [file.file_id] };
  const error = await runMessage({
    sql,
    transactionId: id,
    run: 1,
    tool: toolNamed("chat")!,
    input,
    inputJson: new TextEncoder().encode(JSON.stringify(input)),
    routes: [{
      provider: {
        name: "kimi",
        baseURL: kimiBase(),
        apiKey: "test-key",
        defaultModel: MODEL,
        fallbacks: [],
        files: "extract",
      },
      model: MODEL,
    }],
    primary: { state: "closed", slot: null },
    settings: parseSettings(Deno.env.toObject()),
  }).then(() => undefined, (err) => err);
  assert.ok(error instanceof BusError, String(error));
  assert.equal(error.status, 400);
  assert.equal(error.code, "file_not_found");
  const meta = await fetchJson(user.token, `/${id}/meta`);
  assert.equal(meta.json.status, "failed");
  assert.equal(meta.json.error.code, "file_not_found");
  assert.match(meta.json.error.message, new RegExp(file.file_id));
});

Deno.test("files chat tests: close the database client", async () => {
  await sql.end({ timeout: 5 });
});
