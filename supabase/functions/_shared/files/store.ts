/**
 * Storing an uploaded file (CONTRACT.md §13): its bytes stream into the chunk store as they arrive (storePayload:
 * SHA-256 while streaming, gzip when it helps, about 1 MiB a chunk row, so an upload holds a chunk or two in memory
 * whatever its size), checked for text on the way (TextCheck), then sealed by bus.seal_file, which answers the
 * owner's existing file instead when the same bytes were uploaded before (deduplicated; the new chunks are dropped).
 */
import type { Sql } from "../db.ts";
import { withDb } from "../db.ts";
import { storePayload } from "../payload_store.ts";
import { TextCheck } from "./text_check.ts";

/** What an upload answers (201 new, 200 deduplicated), plus what the files function shows in headers. */
export interface StoredFile {
  file_id: string;
  sha256: string;
  size_bytes: number;
  filename: string;
  content_type: string;
  created_at: Date;
  expires_at: Date;
  deduplicated: boolean;
}

export interface NewFile {
  owner: string;
  filename: string;
  contentType: string;
  ttlSeconds: number;
  /** Largest file accepted (413 past it, while streaming). */
  maxBytes: number;
  /** Awaited after the bytes are stored and before the file is sealed; throwing aborts the upload. */
  beforeSeal?: () => Promise<void>;
}

/**
 * Stores the bytes of `source` as a file of `f.owner` and returns it (the existing file when deduplicated). A failed
 * upload (too large, the client went away, a store error) is dropped with its chunks before the error is rethrown.
 * @throws BusError 413 past `maxBytes`; the source's or the database's error otherwise.
 */
export async function storeFile(sql: Sql, f: NewFile, source: AsyncIterable<Uint8Array>): Promise<StoredFile> {
  const [{ id }] = await withDb(
    (sql) =>
      sql<{ id: string }[]>`select bus.begin_file(${f.owner}::uuid, ${f.filename}, ${f.contentType},
                                                  ${f.ttlSeconds}) as id`,
    sql,
  );
  const text = new TextCheck();
  const checked = (async function* () {
    for await (const piece of source) {
      text.push(piece);
      yield piece;
    }
  })();
  try {
    const stored = await storePayload(sql, id, checked, f.maxBytes, "file");
    await f.beforeSeal?.();
    const [row] = await withDb((sql) =>
      sql<StoredFile[]>`
        select file_id, filename, content_type, sha256, size_bytes::float8 as size_bytes, created_at, expires_at,
               deduplicated
          from bus.seal_file(${id}::uuid, ${stored.checksum.slice("sha256:".length)}, ${stored.payloadSize},
                             ${stored.storedSize}, ${stored.compression}, ${stored.storedChecksum},
                             ${stored.chunkCount}, ${stored.lastChunk}, ${text.finish()})`, sql);
    return row;
  } catch (err) {
    await withDb((sql) => sql`select bus.abort_file(${id}::uuid)`, sql).catch((abortErr) =>
      // Left in status uploading, invisible to its owner; cleanup drops it once stale (bus.cleanup_files).
      console.error(`[files] dropping the failed upload ${id} failed: ${abortErr}`)
    );
    throw err;
  }
}
