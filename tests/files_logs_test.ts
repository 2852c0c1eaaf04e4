/**
 * File contents never appear in logs or error messages (issue #16; the origin once wrote a 7 MB file into its debug
 * log). Files carrying a unique marker go through every path — raw and multipart upload, deduplication, download,
 * extract and inline chats, a chat the provider refuses, a binary file refused for inline, a cut multipart body —
 * and then the stack's log (`${DEVSTACK_DATA_DIR}.log`, where `npm test` sends the stack's stdout and stderr) and
 * every error answer and recorded error are searched for the marker.
 */
import assert from "node:assert/strict";
import { adminSql, newUser, testStack, waitFor } from "../devstack/testing/env.ts";
import { fetchJson, invoke, MODEL } from "./claim_check_helpers.ts";
import { post } from "./watch_helpers.ts";
import { binaryWith, getFile, upload, uploadForm } from "./files_helpers.ts";

const sql = adminSql();

function logPath(): string {
  const dir = Deno.env.get("DEVSTACK_DATA_DIR");
  if (!dir) throw new Error("DEVSTACK_DATA_DIR is not set: run the tests through 'npm test'");
  return `${dir}.log`;
}

Deno.test("a file's contents reach neither the stack's log nor any error message", async () => {
  const marker = `FILE-CONTENT-MARKER-${crypto.randomUUID()}`;
  const user = await newUser();
  const answers: unknown[] = [];
  const keep = <T>(a: T) => (answers.push(a), a);

  const text = `Confidential.\n${marker}\n`.repeat(2000); // 2 chunks of text once gzip is set aside: ~140 KB
  const file = keep(await upload(user.token, text, "secret.txt", { "content-type": "text/plain" })).json;
  const form = new FormData();
  form.append("file", new File([`${text}form`], "secret-form.txt", { type: "text/plain" }));
  const viaForm = keep(await uploadForm(user.token, form)).json;
  keep(await upload(user.token, text, "again.txt")); // deduplicated
  const binary = keep(await upload(user.token, binaryWith(marker), "secret.bin")).json;
  const got = await getFile(user.token, file.file_id);
  assert.equal(await got.text(), text);

  const chat = (provider: string, files: string[], prompt = "summarise the file") => ({
    tool: "chat",
    provider,
    model: MODEL,
    input: { messages: [{ role: "user", content: prompt }], files },
  });
  for (const provider of ["kimi", "glm"]) {
    const ok = keep(await invoke(user.token, chat(provider, [file.file_id, viaForm.file_id])));
    assert.equal(ok.status, 200, JSON.stringify(ok.json));
    // The provider refuses the request that carries the file's text: the failure is recorded, without it.
    const refused = keep(await invoke(user.token, chat(provider, [file.file_id], 'fail #standin {"status": 400}')));
    assert.equal(refused.status, 502, JSON.stringify(refused.json));
    const meta = keep(await fetchJson(user.token, `/${refused.json.transaction_id}/meta`));
    assert.equal(meta.json.status, "failed");
  }
  const notText = keep(await invoke(user.token, chat("glm", [binary.file_id])));
  assert.equal(notText.status, 400);
  const cut = keep(
    await upload(
      user.token,
      `--b\r\nContent-Disposition: form-data; name="file"; filename="c.txt"\r\n\r\n${marker}`,
      null,
      {
        "content-type": "multipart/form-data; boundary=b",
      },
    ),
  );
  assert.equal(cut.status, 400);

  const recorded = await sql`select error::text as error from public.message_bus where owner_id = ${user.id}::uuid`;
  for (const answer of [...answers, ...recorded]) {
    assert.ok(!JSON.stringify(answer).includes(marker), `the marker is in ${JSON.stringify(answer).slice(0, 300)}`);
  }

  // The log is live: a line written after all of the above (a background cleanup run) must be in it.
  const [{ last }] = await sql`select coalesce(max(id), 0)::int as last from bus.maintenance_log`;
  assert.equal((await post("cleanup", testStack().serviceRoleKey, { async: true })).status, 202);
  const log = await waitFor(
    "the background cleanup's line in the stack log",
    async () => {
      const text = await Deno.readTextFile(logPath());
      const ids = [...text.matchAll(/\[cleanup\] run (\d+):/g)].map((m) => Number(m[1]));
      return ids.some((id) => id > last) ? text : undefined;
    },
    20_000,
    200,
  );
  assert.ok(!log.includes(marker), "the marker is in the stack's log");
});

Deno.test("files logs tests: close the database client", async () => {
  await sql.end({ timeout: 5 });
});
