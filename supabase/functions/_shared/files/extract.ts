/**
 * `<NAME>_FILES=extract` (CONTRACT.md §13): a file goes to the provider's files API once per (file, provider) —
 * `POST {BASE_URL}/files`, multipart, `purpose=file-extract`, streamed from the chunk store with the openai SDK's
 * `toStreamingFile` — and the provider's id is remembered (bus.provider_files). Each chat then reads
 * `GET {BASE_URL}/files/<id>/content` and sends that answer, whole, as a system message, as Moonshot's own examples
 * do (gateways-streaming-mcp.md §4). When the provider no longer knows a remembered id (404), the file is uploaded
 * again.
 */
import OpenAI, { toStreamingFile } from "openai";
import { isUtf8 } from "node:buffer";
import { asService, type Sql } from "../db.ts";
import { BusError } from "../errors.ts";
import { concatBytes } from "../bytes.ts";
import type { ProviderConfig } from "../providers/openai_compatible.ts";
import { fileBytes, type FileRef } from "./bytes.ts";

export interface ExtractArgs {
  sql: Sql;
  client: OpenAI;
  provider: ProviderConfig;
  /** Retries of an upload that failed with 408, 429, 5xx or no answer (its body is streamed anew each time). */
  maxRetries: number;
  /** Largest extraction read (bytes). */
  maxTextBytes: number;
}

/**
 * The provider's extraction of `file` (the body of `GET /files/<id>/content`, as UTF-8 bytes), uploading the file
 * first if this provider does not have it.
 * @throws BusError 502 `file_extract_failed` naming the file and the provider's status (never the provider's text,
 *   which may quote the file).
 */
export async function extractedText(a: ExtractArgs, file: FileRef): Promise<Uint8Array> {
  const remembered = await rememberedId(a, file);
  if (remembered) {
    try {
      return await content(a, file, remembered);
    } catch (err) {
      if (!(err instanceof OpenAI.NotFoundError)) throw failure(a, file, "reading the extraction of", err);
      // The provider forgot it (deleted, expired, another account): upload again.
      await asService(
        (tx) => tx`select bus.forget_provider_file(${file.file_id}::uuid, ${a.provider.name}, ${remembered})`,
        a.sql,
      );
    }
  }
  let id: string;
  try {
    id = (await upload(a, file)).id;
  } catch (err) {
    throw failure(a, file, "uploading", err);
  }
  const [{ kept }] = await asService(
    (tx) =>
      tx<{ kept: string }[]>`select bus.remember_provider_file(${file.file_id}::uuid, ${a.provider.name},
                                                                ${a.provider.baseURL}, ${id}) as kept`,
    a.sql,
  );
  try {
    return await content(a, file, kept);
  } catch (err) {
    throw failure(a, file, "reading the extraction of", err);
  }
}

async function rememberedId(a: ExtractArgs, file: FileRef): Promise<string | undefined> {
  const [row] = await asService(
    (tx) =>
      tx<{ provider_file_id: string }[]>`
      select provider_file_id from bus.provider_files
       where file_id = ${file.file_id}::uuid and provider = ${a.provider.name} and base_url = ${a.provider.baseURL}`,
    a.sql,
  );
  return row?.provider_file_id;
}

/** Uploads the file, streamed; a retryable failure is tried again with a fresh stream (the SDK cannot replay one). */
async function upload(a: ExtractArgs, file: FileRef): Promise<OpenAI.FileObject> {
  for (let attempt = 0;; attempt++) {
    try {
      return await a.client.files.create({
        file: toStreamingFile(fileBytes(a.sql, file), file.filename, { type: file.content_type }),
        purpose: "file-extract" as OpenAI.FilePurpose, // Moonshot's purpose; not in the SDK's list of OpenAI's
      }, { maxRetries: 0 });
    } catch (err) {
      if (attempt >= a.maxRetries || !retryable(err)) throw err;
      await new Promise((r) => setTimeout(r, Math.min(8_000, 500 * 2 ** attempt) * (0.5 + Math.random() / 2)));
    }
  }
}

/** `GET /files/<id>/content`, read whole (bounded), as UTF-8. */
async function content(a: ExtractArgs, file: FileRef, id: string): Promise<Uint8Array> {
  const res = await a.client.files.content(id);
  const parts: Uint8Array[] = [];
  let size = 0;
  for await (const piece of res.body ?? ReadableStream.from<Uint8Array>([])) {
    size += piece.length;
    if (size > a.maxTextBytes) {
      await res.body?.cancel();
      throw new BusError(
        413,
        "payload_too_large",
        `The extraction of file ${file.file_id} exceeds ${a.maxTextBytes} bytes`,
      );
    }
    parts.push(piece);
  }
  const text = concatBytes(parts);
  if (!isUtf8(text)) {
    throw new BusError(502, "file_extract_failed", `The extraction of file ${file.file_id} is not UTF-8`);
  }
  return text;
}

function retryable(err: unknown): boolean {
  if (err instanceof OpenAI.APIConnectionError) return true; // includes timeouts
  if (err instanceof OpenAI.APIError && typeof err.status === "number") {
    return err.status === 408 || err.status === 429 || err.status >= 500;
  }
  return false;
}

/** The error recorded on the message: what failed, for which file, and the provider's status; no provider text. */
function failure(a: ExtractArgs, file: FileRef, doing: string, err: unknown): BusError {
  if (err instanceof BusError) return err;
  const status = err instanceof OpenAI.APIError && typeof err.status === "number" ? err.status : null;
  if (status === null) {
    console.error(`[files] ${doing} file ${file.file_id} at ${a.provider.name} failed:`, describe(err));
  }
  const what = status === null ? "could not be reached" : `answered ${status}`;
  return new BusError(502, "file_extract_failed", `${a.provider.name} ${what} ${doing} file ${file.file_id}`, {
    provider: a.provider.name,
    provider_status: status,
    file_id: file.file_id,
  });
}

/** An error for the log: its name and message only (an SDK error's body could quote what was sent). */
function describe(err: unknown): string {
  return err instanceof Error ? `${err.name}: ${err.message}` : String(err);
}
