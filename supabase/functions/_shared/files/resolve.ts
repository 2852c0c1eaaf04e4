/**
 * The files of an invoke, checked before anything is recorded (CONTRACT.md §13): each id in the chat input's
 * `files` must be a live file of the message's owner, and, for a provider that gets files inline, text. A request
 * that fails here is answered 400 naming the ids, and no message is written for it.
 */
import { BusError } from "../errors.ts";
import { asService, type Sql } from "../db.ts";
import type { Settings } from "../env.ts";
import { filesStrategy } from "./strategy.ts";

/** The file ids of a tool input (`files`), or undefined when it names none. */
export function fileIdsOf(input: Record<string, unknown>): string[] | undefined {
  const files = input.files;
  return Array.isArray(files) && files.length > 0 ? files.map((id) => String(id).toLowerCase()) : undefined;
}

/**
 * Checks the files of `input` for a message of `owner` sent to provider `provider`.
 * @throws BusError 400 `file_not_found` (unknown, expired, or another owner's; the answer is the same for all, so
 *   it tells nothing about other users' files), 400 `file_not_text` (inline, and not UTF-8 text), 413 when the
 *   texts sent inline would make the provider request larger than MESSAGE_BUS_MAX_PAYLOAD_MB.
 */
export async function resolveFiles(
  sql: Sql,
  owner: string,
  input: Record<string, unknown>,
  provider: string,
  s: Settings,
): Promise<void> {
  const ids = fileIdsOf(input);
  if (!ids) return;
  const rows = await asService(
    (tx) =>
      tx<{ file_id: string; is_text: boolean; size_bytes: number }[]>`
      select file_id, is_text, size_bytes::float8 as size_bytes from public.message_bus_files
       where file_id = any (${ids}::uuid[]) and owner_id = ${owner}::uuid and status = 'ready'
         and bus.file_live_until(file_id, expires_at) > now()`,
    sql,
  );
  const found = new Map(rows.map((r) => [r.file_id, r]));
  const missing = ids.filter((id) => !found.has(id));
  if (missing.length > 0) {
    throw fileError(
      400,
      "file_not_found",
      `No file ${missing.join(", ")} (unknown, expired, or not yours)`,
      ids,
      missing,
    );
  }
  if (filesStrategy(provider, s) !== "inline") return;
  const binary = ids.filter((id) => !found.get(id)!.is_text);
  if (binary.length > 0) {
    throw fileError(
      400,
      "file_not_text",
      `Provider ${provider} gets files inline, as text; ${binary.join(", ")} is not UTF-8 text`,
      ids,
      binary,
    );
  }
  const limit = s.MESSAGE_BUS_MAX_PAYLOAD_MB * 1024 * 1024;
  const total = rows.reduce((n, r) => n + Number(r.size_bytes), 0);
  if (total > limit) {
    throw new BusError(
      413,
      "payload_too_large",
      `The files' text (${total} bytes) would make the request to ${provider} larger than ${limit} bytes`,
      { limit_bytes: limit, file_ids: ids },
    );
  }
}

function fileError(status: 400, code: string, message: string, ids: string[], bad: string[]): BusError {
  return new BusError(status, code, message, {
    file_ids: bad,
    issues: bad.map((id) => ({ path: `input.files.${ids.indexOf(id)}`, message: code.replaceAll("_", " ") })),
  });
}
