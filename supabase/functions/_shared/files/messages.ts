/**
 * The files of a chat as the provider takes them (CONTRACT.md §13), made when the message runs: the message records
 * the files it uses (bus.use_files: meta `files`, and references that keep the files while the message lives), then
 * each file becomes one system message, put first in `messages`:
 * - `inline`: the file's text, unchanged, streamed from the chunk store into the request (never held whole);
 * - `extract`: the provider's extraction of the file (extract.ts).
 * File contents never reach a log or an error message: errors name file ids, sizes and statuses only.
 */
import type OpenAI from "openai";
import type { Sql } from "../db.ts";
import { asService } from "../db.ts";
import type { Settings } from "../env.ts";
import { BusError } from "../errors.ts";
import type { ProviderConfig } from "../providers/openai_compatible.ts";
import type { BodyPart } from "../tools/tool.ts";
import { fileBytes, type FileRef } from "./bytes.ts";
import { extractedText } from "./extract.ts";
import { systemMessageJson } from "./json_text.ts";
import { fileIdsOf } from "./resolve.ts";
import { filesStrategy } from "./strategy.ts";

export interface FileMessagesArgs {
  sql: Sql;
  transactionId: string;
  /** The validated tool input (its `files`). */
  input: Record<string, unknown>;
  provider: ProviderConfig;
  /** The provider's SDK client (extract uploads and reads through it). */
  client: OpenAI;
  settings: Settings;
}

/** The JSON of `{"role":"system","content":""}` around a text. */
const FRAMING = 30;

/**
 * The system messages for the files of `a.input` (undefined when it names none), for provider `a.provider`. Call it
 * once per provider a message is sent to; the record of the files is written once (later calls find it).
 * @throws BusError 400 `file_not_found` (a file went away since the request was accepted), 400 `file_not_text`,
 *   502 `file_extract_failed`, 413 (an extraction larger than the request limit).
 */
export async function fileMessages(a: FileMessagesArgs): Promise<BodyPart[] | undefined> {
  const ids = fileIdsOf(a.input);
  if (!ids) return undefined;
  const files = await useFiles(a.sql, a.transactionId, ids);
  if (filesStrategy(a.provider.name, a.settings) === "inline") {
    const binary = files.filter((f) => !f.is_text).map((f) => f.file_id);
    if (binary.length > 0) {
      throw new BusError(400, "file_not_text", `${binary.join(", ")} is not UTF-8 text`, { file_ids: binary });
    }
    return files.map((f) => ({
      size: Number(f.size_bytes) + FRAMING,
      stream: () => systemMessageJson(fileBytes(a.sql, f)),
    }));
  }
  const out: BodyPart[] = [];
  for (const f of files) {
    const text = await extractedText({
      sql: a.sql,
      client: a.client,
      provider: a.provider,
      maxRetries: a.settings.PROVIDER_MAX_RETRIES,
      maxTextBytes: a.settings.MESSAGE_BUS_MAX_PAYLOAD_MB * 1024 * 1024,
    }, f);
    out.push(await collect(systemMessageJson(oneOf(text))));
  }
  return out;
}

/** Records that the message uses the files and returns them in order (bus.use_files). */
async function useFiles(sql: Sql, transactionId: string, ids: string[]): Promise<FileRef[]> {
  try {
    return await asService(
      (tx) =>
        tx<FileRef[]>`select file_id, filename, content_type, sha256, size_bytes::float8 as size_bytes, compression,
                             stored_checksum, chunk_count, is_text
                        from bus.use_files(${transactionId}::uuid, ${ids}::uuid[])`,
      sql,
    );
  } catch (err) {
    const e = err as { code?: string; detail?: string };
    if (e.code === "P0002" && e.detail) {
      const missing = e.detail.split(",");
      throw new BusError(400, "file_not_found", `No file ${missing.join(", ")} (deleted or expired)`, {
        file_ids: missing,
      });
    }
    throw err;
  }
}

async function* oneOf(bytes: Uint8Array): AsyncGenerator<Uint8Array> {
  yield bytes;
}

async function collect(pieces: AsyncIterable<Uint8Array>): Promise<Uint8Array> {
  const parts: Uint8Array[] = [];
  for await (const p of pieces) parts.push(p);
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}
