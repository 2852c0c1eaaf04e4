/** A stored file's bytes, read back chunk by chunk as the service role and verified against its SHA-256. */
import type { Caller } from "../auth.ts";
import type { Sql } from "../db.ts";
import { storedChunks, type StoredMeta, verifiedPayload } from "../payload_read.ts";

/** What reading a file needs (a row of bus.use_files). */
export interface FileRef {
  file_id: string;
  filename: string;
  content_type: string;
  sha256: string;
  size_bytes: number;
  compression: "none" | "gzip";
  stored_checksum: string;
  chunk_count: number;
  is_text: boolean;
}

const SERVICE: Caller = { role: "service_role", claims: { role: "service_role" } };

/**
 * The file's bytes as uploaded, in pieces of about 1 MiB (decoded when stored gzip); the stream fails instead of
 * ending when they do not match the file's SHA-256.
 */
export function fileBytes(sql: Sql, f: FileRef): AsyncIterable<Uint8Array> {
  const meta: StoredMeta = {
    transaction_id: f.file_id,
    checksum: `sha256:${f.sha256}`,
    chunk_count: f.chunk_count,
    compression: f.compression,
    payload_size_bytes: Number(f.size_bytes),
    stored_checksum: f.stored_checksum,
  };
  return verifiedPayload(meta, storedChunks(SERVICE, meta, sql, "file"), "identity");
}
