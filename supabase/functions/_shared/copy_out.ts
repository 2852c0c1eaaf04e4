/** Reading a `COPY … TO STDOUT` through postgres.js: the bytes as they arrived, and the connection left usable. */

/** What `sql.unsafe(…)` returns for a COPY TO STDOUT: its `readable()` resolves to the stream of CopyData. */
interface CopyOutQuery {
  readable(): Promise<NodeJS.ReadableStream>;
}

/** The parts of the COPY's output, in order (split wherever the socket reads split them). */
export async function copyOutParts(query: CopyOutQuery): Promise<Uint8Array[]> {
  const stream = await query.readable();
  const parts: Uint8Array[] = [];
  try {
    await new Promise<void>((resolve, reject) => {
      stream.on("data", (part: Uint8Array) => parts.push(part));
      stream.on("end", resolve);
      stream.on("error", reject);
    });
  } finally {
    // postgres.js pauses its socket when a CopyData fills the stream's buffer and resumes it from the stream's
    // read(); when CopyDone came in the same socket read, the stream ends without another read() and the
    // connection would stay paused, so every later query on it would hang (porsager/postgres#499, fix proposed in
    // #1016). Calling read() once more resumes the socket; it does nothing to a socket that is flowing.
    (stream as unknown as { _read(size: number): void })._read(0);
  }
  return parts;
}
