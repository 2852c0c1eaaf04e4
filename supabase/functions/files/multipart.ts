/**
 * The file of a `multipart/form-data` upload, streamed: @fastify/busboy parses the body as it arrives and hands
 * over the part named `file` as a stream, with backpressure (busboy holds the body until the file's bytes are
 * taken), so memory stays bounded whatever the file's size. `Request.formData()` would hold the whole body, and
 * then the file, in memory.
 *
 * Fields other than `file` are read and ignored (a client may send `purpose`, as to OpenAI's files API); a file part
 * under another name, or a second one, makes the upload a 400 (checked once the body has been read, before the
 * file is sealed).
 */
import { Busboy, type BusboyInstance } from "@fastify/busboy";
import type { Readable } from "node:stream";
import { BusError, invalidRequest } from "../_shared/errors.ts";

/** The one file of a multipart upload. */
export interface MultipartFile {
  /** The part's filename (may be empty: the caller then needs another name). */
  filename: string;
  /** The part's Content-Type. */
  contentType: string;
  data: AsyncIterable<Uint8Array>;
  /** Resolves once the whole body was parsed without a problem; rejects with a 400 otherwise. */
  finished: Promise<void>;
  /** Stops parsing and reading the body (after a failure: the file's bytes are no longer taken). */
  abort(): void;
}

/**
 * Starts parsing `req`'s multipart body; resolves with the part named `file` as soon as it starts.
 * @param maxFileBytes a file part larger than this is cut short (the store refuses it first, with 413)
 * @throws BusError 400 when the body is not valid multipart or has no part named `file`.
 */
export function multipartFile(req: Request, maxFileBytes: number): Promise<MultipartFile> {
  let parser: BusboyInstance;
  try {
    parser = new Busboy({
      headers: { "content-type": req.headers.get("content-type") ?? "" },
      limits: { files: 1, fields: 16, fieldSize: 64 * 1024, parts: 32, fileSize: maxFileBytes + 1, headerPairs: 32 },
    });
  } catch (err) {
    return Promise.reject(badForm(err instanceof Error ? err.message : String(err)));
  }
  let problem: BusError | undefined;
  const note = (err: BusError) => (problem ??= err);

  const finished = new Promise<void>((resolve, reject) => {
    parser.on("finish", () => (problem ? reject(problem) : resolve()));
    parser.on("error", (err: Error) => reject(problem ?? badForm(err.message)));
  });
  const file = new Promise<MultipartFile>((resolve, reject) => {
    parser.on("file", (field: string, stream: Readable, filename: string, _encoding: string, mime: string) => {
      // busboy emits a part cut short by the end of the body (or a bad part) as an 'error' on the file stream, at
      // any time, read or not: unheard, it would end the process. It is a 400; `finished` rejects with it, so the
      // upload is dropped before it is sealed.
      stream.on("error", (err: Error) => note(badForm(err.message)));
      if (field !== "file") {
        note(invalidRequest("Expected the file in a multipart field named file", [{
          path: `body.${field}`,
          message: "unexpected file part (the file goes in field file)",
        }]));
        stream.resume(); // discard it so that parsing goes on to the end
        return;
      }
      resolve({
        filename: filename ?? "",
        contentType: mime || "application/octet-stream",
        data: stream,
        finished,
        abort: () => stop.abort(),
      });
    });
    parser.on(
      "filesLimit",
      () => note(invalidRequest("Expected one file", [{ path: "body.file", message: "more than one file part" }])),
    );
    parser.on("partsLimit", () => note(badForm("too many parts")));
    parser.on("fieldsLimit", () => note(badForm("too many fields")));
    // No file part at all: known once the body has been parsed.
    finished.then(
      () =>
        reject(invalidRequest("Expected a multipart field named file", [{ path: "body.file", message: "missing" }])),
      reject,
    );
  });
  const stop = new AbortController();
  feed(req, parser, stop.signal).catch((err) => parser.destroy(err instanceof Error ? err : new Error(String(err))));
  // Whoever awaits `file` gets the error; `finished` is awaited later by the caller, or not at all when `file` failed.
  finished.catch(() => {});
  return file;
}

/**
 * Writes the request body into the parser, waiting whenever it holds enough. Stopping (`signal`) cancels the body
 * and ends the wait; the error then goes to whoever still waits on the parser.
 */
async function feed(req: Request, parser: BusboyInstance, signal: AbortSignal): Promise<void> {
  if (!req.body) {
    parser.end();
    return;
  }
  const stopped = new Promise<"stopped">((resolve) => signal.addEventListener("abort", () => resolve("stopped")));
  for await (const piece of req.body) {
    if (signal.aborted) break; // leaving the loop cancels the body
    if (!parser.write(piece)) {
      const drained = new Promise<"drained">((resolve) => {
        const done = () => {
          parser.off("drain", done);
          parser.off("close", done);
          resolve("drained");
        };
        parser.on("drain", done);
        parser.on("close", done);
      });
      if ((await Promise.race([drained, stopped])) === "stopped") break;
    }
  }
  if (signal.aborted) throw new Error("upload stopped");
  parser.end();
}

function badForm(reason: string): BusError {
  return invalidRequest(`The body is not valid multipart/form-data: ${reason}`, [{ path: "body", message: reason }]);
}
