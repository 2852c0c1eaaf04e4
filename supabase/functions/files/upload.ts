/**
 * `POST /files` (CONTRACT.md §13): the file as the raw body with its name in `x-filename`, or as multipart field
 * `file`. The body never goes through the JSON door (it is not JSON) nor into the body budget (it is never held
 * whole): it streams into the chunk store, bounded by MESSAGE_BUS_MAX_FILE_MB (413 from a Content-Length past it
 * before a byte is read, and while streaming for a body without one).
 */
import type { Context } from "hono";
import type { Caller } from "../_shared/auth.ts";
import type { Sql } from "../_shared/db.ts";
import type { Settings } from "../_shared/env.ts";
import { invalidRequest, payloadTooLarge } from "../_shared/errors.ts";
import { SERVICE_OWNER } from "../_shared/invoke/submit.ts";
import { type StoredFile, storeFile } from "../_shared/files/store.ts";
import { multipartFile } from "./multipart.ts";
import { fileName, type UploadHeaders } from "./schemas.ts";

/** Room for the multipart envelope (boundary lines, part headers, small fields) around the file. */
const MULTIPART_OVERHEAD = 64 * 1024;

/** Stores the upload of `c` and answers 201 (a new file) or 200 (the owner had these bytes: deduplicated). */
export async function upload(c: Context, sql: Sql, s: Settings, caller: Caller, h: UploadHeaders): Promise<Response> {
  const maxBytes = s.MESSAGE_BUS_MAX_FILE_MB * 1024 * 1024;
  const multipart = /^multipart\/form-data\s*;/i.test(h["content-type"] ?? "");
  const declared = h["content-length"];
  if (declared !== undefined && declared > maxBytes + (multipart ? MULTIPART_OVERHEAD : 0)) {
    await c.req.raw.body?.cancel();
    throw tooLarge(maxBytes);
  }
  const owner = ownerOf(caller, h["x-owner-id"]);
  const common = { owner, ttlSeconds: s.MESSAGE_BUS_FILE_TTL_SECONDS, maxBytes };
  let stored: StoredFile;
  if (multipart) {
    const part = await multipartFile(c.req.raw, maxBytes);
    try {
      const filename = part.filename ? checkedName(part.filename, "body.file (filename)") : h["x-filename"];
      if (!filename) {
        throw invalidRequest("Expected a file name", [{
          path: "body.file",
          message: "the part has no filename; give one, or send x-filename",
        }]);
      }
      stored = await storeFile(
        sql,
        { ...common, filename, contentType: part.contentType.slice(0, 255), beforeSeal: () => part.finished },
        part.data,
      );
    } catch (err) {
      part.abort();
      throw err;
    }
  } else {
    if (!h["x-filename"]) {
      await c.req.raw.body?.cancel();
      throw invalidRequest("Expected the file's name in x-filename (or a multipart body with field file)", [{
        path: "X-Filename",
        message: "required for a raw upload",
      }]);
    }
    const body = c.req.raw.body ?? ReadableStream.from<Uint8Array>([]);
    stored = await storeFile(
      sql,
      { ...common, filename: h["x-filename"], contentType: h["content-type"] ?? "application/octet-stream" },
      body,
    );
  }
  return c.json(uploadAnswer(stored), stored.deduplicated ? 200 : 201);
}

/** The contract's answer to an upload. */
export function uploadAnswer(f: StoredFile) {
  return {
    file_id: f.file_id,
    sha256: f.sha256,
    size_bytes: Number(f.size_bytes),
    filename: f.filename,
    content_type: f.content_type,
    created_at: new Date(f.created_at).toISOString(),
    expires_at: new Date(f.expires_at).toISOString(),
    deduplicated: f.deduplicated,
  };
}

/** Whose files: the caller's, or for the service role `x-owner-id` (default: the service's own owner id). */
export function ownerOf(caller: Caller, ownerId: string | undefined): string {
  if (caller.role === "service_role") return ownerId ?? SERVICE_OWNER;
  if (ownerId && ownerId !== caller.sub) {
    throw invalidRequest("x-owner-id may only be set by the service role", [
      { path: "X-Owner-Id", message: "not allowed for user tokens" },
    ]);
  }
  return caller.sub!;
}

function checkedName(name: string, path: string): string {
  const parsed = fileName.safeParse(name);
  if (!parsed.success) throw invalidRequest("Invalid file name", [{ path, message: parsed.error.issues[0].message }]);
  return parsed.data;
}

const tooLarge = (maxBytes: number) =>
  payloadTooLarge(`The file exceeds the ${maxBytes / 1024 / 1024} MB limit`, { limit_bytes: maxBytes });
