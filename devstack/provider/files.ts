import type { Answer } from "./chat.ts";
import { CREATED } from "./chat.ts";
import { openAIError } from "./errors.ts";
import { type StandinState, underPrefix } from "./state.ts";

/** Bounds of the file store, so a test cannot grow the stand-in without limit. */
export interface FileLimits {
  /** One file at most (Moonshot: 100 MB). */
  maxFileBytes: number;
  /** All stored files together; past it uploads get 413 until files are deleted or forgotten. */
  maxTotalBytes: number;
  /** Files per base path (Moonshot: 1,000). */
  maxFiles: number;
}

/** The defaults: Moonshot's per-file and count limits, and 256 MiB in all (files are held in memory). */
export const DEFAULT_FILE_LIMITS: FileLimits = {
  maxFileBytes: 100 * 1024 * 1024,
  maxTotalBytes: 256 * 1024 * 1024,
  maxFiles: 1000,
};

/** Moonshot's file object (gateways-streaming-mcp.md §4: `FileObject(id, bytes, created_at, …, status)`). */
interface FileObject {
  id: string;
  object: "file";
  bytes: number;
  created_at: number;
  filename: string;
  purpose: string;
  status: "ok";
  status_details: string;
}

interface StoredFile {
  file: FileObject;
  fileType: string;
  /** The extracted text: the file itself when it is UTF-8, else a line describing it. */
  text: string;
}

const PURPOSES = ["file-extract", "image", "video", "batch", "agent"];
/** Room for the multipart envelope (boundaries, part headers, the purpose field) around the file. */
const MULTIPART_OVERHEAD = 64 * 1024;
const ID_ALPHABET = "0123456789abcdefghijklmnopqrstuv";
const TYPES: Record<string, string> = {
  txt: "text/plain",
  md: "text/markdown",
  csv: "text/csv",
  json: "application/json",
  html: "text/html",
  pdf: "application/pdf",
};

class UploadTooLarge extends Error {}

/**
 * Moonshot's files API as the stand-in serves it under each base path (`{base}/files…`), for file
 * forwarding (CONTRACT.md §13). Files live in memory, per base path, within {@link FileLimits}.
 */
export class FileStore {
  private readonly bases = new Map<string, Map<string, StoredFile>>();
  private uploads = 0;
  /** Bytes of all stored files. */
  bytes = 0;

  constructor(private readonly limits: FileLimits, private readonly state: StandinState) {}

  /** How many files are stored, and their bytes. */
  snapshot(): { count: number; bytes: number } {
    let count = 0;
    for (const files of this.bases.values()) count += files.size;
    return { count, bytes: this.bytes };
  }

  /** Drops every file under `prefix` ("" for all) without counting deletes; returns how many. */
  forget(prefix: string): number {
    let forgotten = 0;
    for (const [base, files] of this.bases) {
      if (!underPrefix(base, prefix)) continue;
      for (const stored of files.values()) this.bytes -= stored.file.bytes;
      forgotten += files.size;
      this.bases.delete(base);
    }
    return forgotten;
  }

  /**
   * Answers `{base}/files`, `{base}/files/{id}` and `{base}/files/{id}/content`.
   *
   * @param id the file id from the path, or undefined for the collection
   * @param content whether the path ends in `/content`
   */
  async handle(req: Request, base: string, id: string | undefined, content: boolean): Promise<Answer> {
    const fixed = (response: Response) => ({ response, live: false });
    const files = this.bases.get(base) ?? new Map<string, StoredFile>();
    const wanted = id === undefined ? ["GET", "POST"] : content ? ["GET"] : ["GET", "DELETE"];
    if (!wanted.includes(req.method)) {
      return fixed(openAIError(405, `Expected ${wanted.join(" or ")}, got ${req.method}`));
    }
    if (id === undefined) return fixed(req.method === "POST" ? await this.upload(req, base) : list(req, files));
    const stored = files.get(id);
    if (!stored) return fixed(openAIError(404, `No file with id ${id}`, { param: "file_id" }));
    if (content) {
      this.state.count(base, "content_reads");
      // Moonshot answers the extraction as a JSON text, which its own examples put whole into a system message
      // (`client.files.content(id).text`; gateways-streaming-mcp.md §4).
      const { filename } = stored.file;
      const body = JSON.stringify({
        content: stored.text,
        file_type: stored.fileType,
        filename,
        title: "",
        type: "file",
      });
      return fixed(new Response(body, { headers: { "content-type": "application/json; charset=utf-8" } }));
    }
    if (req.method === "DELETE") {
      files.delete(id);
      this.bytes -= stored.file.bytes;
      this.state.count(base, "deletes");
      return fixed(Response.json({ id, object: "file", deleted: true }));
    }
    return fixed(Response.json(stored.file));
  }

  private async upload(req: Request, base: string): Promise<Response> {
    const tooLarge = () =>
      openAIError(413, `Expected a file of at most ${this.limits.maxFileBytes} bytes, got more`, { param: "file" });
    const declared = Number(req.headers.get("content-length") ?? 0);
    if (declared > this.limits.maxFileBytes + MULTIPART_OVERHEAD) return tooLarge();
    if (!(req.headers.get("content-type") ?? "").startsWith("multipart/form-data")) {
      return openAIError(400, "Expected a multipart/form-data body with fields file and purpose", { param: "file" });
    }
    let form: FormData;
    try {
      form = await limited(req, this.limits.maxFileBytes + MULTIPART_OVERHEAD).formData();
    } catch (error) {
      if (error instanceof UploadTooLarge || (error as Error)?.cause instanceof UploadTooLarge) return tooLarge();
      return openAIError(400, `Expected a valid multipart/form-data body: ${(error as Error).message}`);
    }
    const file = form.get("file");
    const purpose = form.get("purpose");
    if (!(file instanceof File)) {
      return openAIError(400, "Expected a file field holding a file, got none", { param: "file" });
    }
    if (typeof purpose !== "string" || !PURPOSES.includes(purpose)) {
      return openAIError(400, `Expected purpose to be one of ${PURPOSES.join(", ")}, got ${purpose}`, {
        param: "purpose",
      });
    }
    if (file.size > this.limits.maxFileBytes) return tooLarge();
    if (this.bytes + file.size > this.limits.maxTotalBytes) {
      return openAIError(
        413,
        `Expected stored files to stay within the stand-in's ${this.limits.maxTotalBytes} bytes, got ${
          this.bytes + file.size
        } with this one; delete files or POST /__standin/files/forget`,
        { param: "file", code: "file_store_full" },
      );
    }
    const files = this.bases.get(base) ?? new Map<string, StoredFile>();
    if (files.size >= this.limits.maxFiles) {
      return openAIError(400, `Expected at most ${this.limits.maxFiles} files, got one more; delete some first`, {
        param: "file",
      });
    }
    const bytes = new Uint8Array(await file.arrayBuffer());
    const sha = await sha256Hex(bytes);
    const seq = ++this.uploads;
    const id = idFrom(await sha256Hex(new TextEncoder().encode(`${base}\n${seq}\n${file.name}\n${sha}`)));
    const stored: StoredFile = {
      file: {
        id,
        object: "file",
        bytes: file.size,
        created_at: CREATED + seq,
        filename: file.name,
        purpose,
        status: "ok",
        status_details: "",
      },
      fileType: fileType(file),
      text: extract(bytes, file.name, sha),
    };
    files.set(id, stored);
    this.bases.set(base, files);
    this.bytes += file.size;
    this.state.count(base, "uploads");
    return Response.json(stored.file);
  }
}

/** `GET {base}/files`: Moonshot's `{object: "list", data}`, plus `has_more` and `after`/`limit` for the SDK's pager. */
function list(req: Request, files: Map<string, StoredFile>): Response {
  const params = new URL(req.url).searchParams;
  let data = [...files.values()].map((stored) => stored.file);
  const purpose = params.get("purpose");
  if (purpose) data = data.filter((file) => file.purpose === purpose);
  const after = params.get("after");
  if (after) data = data.slice(data.findIndex((file) => file.id === after) + 1);
  const limit = Number(params.get("limit") ?? 10_000) || 10_000;
  return Response.json({ object: "list", data: data.slice(0, limit), has_more: data.length > limit });
}

/** The request with its body cut off (an error) past `max` bytes, so a huge upload is never buffered. */
function limited(req: Request, max: number): Request {
  let seen = 0;
  const counter = new TransformStream<Uint8Array, Uint8Array>({
    transform(chunk, controller) {
      seen += chunk.length;
      if (seen > max) throw new UploadTooLarge(`Upload larger than ${max} bytes`);
      controller.enqueue(chunk);
    },
  });
  return new Request(req.url, { method: "POST", headers: req.headers, body: req.body!.pipeThrough(counter) });
}

/** The file as text when it is valid UTF-8; otherwise a line naming it, its size and its digest. */
function extract(bytes: Uint8Array, filename: string, sha: string): string {
  try {
    return new TextDecoder("utf-8", { fatal: true }).decode(bytes);
  } catch (error) {
    if (!(error instanceof TypeError)) throw error;
    return `Stand-in extraction of ${filename}: ${bytes.length} bytes of binary data, sha256 ${sha}`;
  }
}

function fileType(file: File): string {
  const declared = file.type.split(";")[0];
  if (declared && declared !== "application/octet-stream") return declared;
  return TYPES[file.name.split(".").pop()?.toLowerCase() ?? ""] ?? "application/octet-stream";
}

/** Twenty characters of Moonshot's id alphabet (0-9, a-v) from a hex digest. */
function idFrom(hex: string): string {
  let id = "";
  for (let i = 0; i < 40; i += 2) id += ID_ALPHABET[parseInt(hex.slice(i, i + 2), 16) & 31];
  return id;
}

async function sha256Hex(bytes: Uint8Array<ArrayBuffer>): Promise<string> {
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", bytes));
  return [...digest].map((b) => b.toString(16).padStart(2, "0")).join("");
}
