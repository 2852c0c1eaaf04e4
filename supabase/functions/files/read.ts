/**
 * `GET /files/<id>` (the bytes, verified as they stream, like message-fetch), `GET /files` (the caller's files) and
 * `DELETE /files/<id>`. Reads run as the caller, so row-level security decides what exists for them: another user's
 * file is a 404, as an unknown one.
 */
import type { Context } from "hono";
import { asCaller, asService, type Sql } from "../_shared/db.ts";
import type { Caller } from "../_shared/auth.ts";
import { BusError, notFound } from "../_shared/errors.ts";
import { acceptsGzip, hexToBase64 } from "../_shared/representation.ts";
import {
  ChecksumMismatchError,
  integrityError,
  storedChunks,
  type StoredMeta,
  verifiedPayload,
} from "../_shared/payload_read.ts";

interface FileRow {
  file_id: string;
  filename: string;
  content_type: string;
  sha256: string;
  size_bytes: string;
  stored_size_bytes: string;
  compression: "none" | "gzip";
  stored_checksum: string;
  chunk_count: number;
  created_at: Date;
  expires_at: Date;
  live: boolean;
  only_chunk: Uint8Array | null;
}

/** Answers `GET /files/<id>`: 200 with the bytes, 404 unknown (or not the caller's), 410 once expired. */
export async function getFile(c: Context, sql: Sql, caller: Caller, id: string): Promise<Response> {
  const [row] = await asCaller(caller, (tx) =>
    tx<FileRow[]>`
      select file_id, filename, content_type, sha256, size_bytes, stored_size_bytes, compression, stored_checksum,
             chunk_count, created_at, expires_at, bus.file_live_until(file_id, expires_at) > now() as live,
             (select c.data from public.message_bus_file_chunks c where c.file_id = f.file_id and c.seq = 0
                 and f.chunk_count = 1) as only_chunk
        from public.message_bus_files f where file_id = ${id}::uuid and status = 'ready'`, sql);
  if (!row) throw notFound(`No file ${id}`);
  if (!row.live) {
    throw new BusError(410, "expired", `File ${id} expired at ${new Date(row.expires_at).toISOString()}`, {}, {
      file_id: id,
    });
  }
  const stored: StoredMeta = {
    transaction_id: id,
    checksum: `sha256:${row.sha256}`,
    chunk_count: row.chunk_count,
    compression: row.compression,
    payload_size_bytes: Number(row.size_bytes),
    stored_checksum: row.stored_checksum,
  };
  const gzipOut = row.compression === "gzip" && acceptsGzip(c.req.header("accept-encoding"));
  const headers = new Headers({
    "content-type": row.content_type,
    "content-length": gzipOut ? row.stored_size_bytes : row.size_bytes,
    "content-disposition": `attachment; filename*=UTF-8''${encodeURIComponent(row.filename)}`,
    etag: gzipOut ? `"${row.sha256}-gzip"` : `"${row.sha256}"`,
    "x-file-id": id,
    "x-checksum": stored.checksum,
    "cache-control": "private, no-transform",
    vary: "accept-encoding",
  });
  if (!gzipOut) headers.set("repr-digest", `sha-256=:${hexToBase64(row.sha256)}:`);
  if (gzipOut) headers.set("content-encoding", "gzip");
  const chunks = row.only_chunk ? ReadableStream.from([row.only_chunk]) : storedChunks(caller, stored, sql, "file");
  const body = verifiedPayload(stored, chunks, gzipOut ? "gzip" : "identity");
  if (row.chunk_count <= 1) {
    // Small files are verified before the status line goes out, so a mismatch is a clean error answer.
    const parts: Uint8Array[] = [];
    try {
      for await (const part of body) parts.push(part);
    } catch (err) {
      if (err instanceof ChecksumMismatchError) throw integrityError(err, "file_id");
      throw err;
    }
    return new Response(new Blob(parts as BlobPart[]).stream(), { status: 200, headers });
  }
  // Larger files stream; a mismatch found at the end aborts the body (shorter than Content-Length).
  return new Response(ReadableStream.from(body), { status: 200, headers });
}

/** One element of `GET /files`. */
export interface ListedFile {
  file_id: string;
  sha256: string;
  size_bytes: number;
  filename: string;
  content_type: string;
  created_at: string;
  expires_at: string;
}

/** The live files of `owner` created after `since`, oldest first. */
export async function listFiles(
  sql: Sql,
  caller: Caller,
  owner: string,
  since: string,
  limit: number,
): Promise<ListedFile[]> {
  const rows = await asCaller(
    caller,
    (tx) =>
      tx<(Omit<ListedFile, "created_at" | "expires_at"> & { created_at: Date; expires_at: Date })[]>`
      select file_id, sha256, size_bytes::float8 as size_bytes, filename, content_type, created_at, expires_at
        from public.message_bus_files f
       where owner_id = ${owner}::uuid and status = 'ready' and created_at > ${since}::timestamptz
         and bus.file_live_until(file_id, expires_at) > now()
       order by created_at, file_id limit ${limit}`,
    sql,
  );
  return rows.map((r) => ({
    ...r,
    created_at: new Date(r.created_at).toISOString(),
    expires_at: new Date(r.expires_at).toISOString(),
  }));
}

/** Deletes file `id` of the caller (any file for the service role); false when there was none. */
export async function deleteFile(sql: Sql, caller: Caller, id: string): Promise<boolean> {
  const owner = caller.role === "service_role" ? null : caller.sub!;
  const [{ deleted }] = await asService(
    (tx) => tx<{ deleted: boolean }[]>`select bus.delete_file(${id}::uuid, ${owner}::uuid) as deleted`,
    sql,
  );
  return deleted;
}
