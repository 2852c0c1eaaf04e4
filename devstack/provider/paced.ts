import { ConnectionCut } from "./errors.ts";
import { delay, untilAborted } from "./wait.ts";

/** How {@link pacedBody} shapes a body on the wire. */
export interface Pacing {
  /** Wait before the first piece (headers are already out). */
  firstDelayMs?: number;
  /** Wait before every later piece. */
  gapMs?: number;
  /** After this many bytes, error the stream with {@link ConnectionCut}: the server drops the connection. */
  cutAfter?: number;
  /** After this many bytes, send nothing more until `signal` aborts. */
  stallAfter?: number;
  /** The client left or the stand-in closes: pending waits reject with an AbortError. */
  signal: AbortSignal;
}

type Source = Iterator<Uint8Array> | AsyncIterator<Uint8Array>;

/**
 * Turns pieces (SSE events, body chunks) into a pull-based byte stream with waits and faults. One piece is
 * produced per read, so memory stays at one piece whatever the body's size. A piece that crosses the cut or
 * stall mark is sent up to the mark only (possibly mid-event, mid-character).
 *
 * @example
 * ```ts
 * const body = pacedBody([new TextEncoder().encode("data: x\n\n")].values(), { gapMs: 10, signal });
 * ```
 */
export function pacedBody(source: Source, pacing: Pacing): ReadableStream<Uint8Array> {
  const limit = Math.min(pacing.cutAfter ?? Infinity, pacing.stallAfter ?? Infinity);
  let sent = 0;
  let first = true;
  // Set once the mark is reached: the next pull cuts or stalls. Not in the same pull, because erroring the
  // controller drops chunks still queued, and the bytes before the mark must reach the client.
  let atMark = false;
  return new ReadableStream<Uint8Array>({
    async pull(controller) {
      while (true) {
        if (atMark) {
          if (pacing.cutAfter !== undefined && pacing.cutAfter <= sent) throw new ConnectionCut(sent);
          await untilAborted(pacing.signal, `stalled after ${sent} body bytes`);
        }
        if (sent >= limit) {
          atMark = true;
          continue;
        }
        const next = await source.next();
        if (next.done) return controller.close();
        // The wait comes after taking the piece, so the end of the body is not delayed.
        const wait = first ? pacing.firstDelayMs : pacing.gapMs;
        first = false;
        if (wait) await delay(wait, pacing.signal);
        let piece = next.value;
        if (sent + piece.length >= limit) {
          piece = piece.subarray(0, limit - sent);
          atMark = true;
        }
        sent += piece.length;
        if (piece.length > 0) return controller.enqueue(piece);
      }
    },
    async cancel() {
      await source.return?.();
    },
  }, { highWaterMark: 0 });
}

/** Re-chunks a byte stream into pieces of at most `size` bytes (for `slow_body`). */
export async function* pieces(body: ReadableStream<Uint8Array>, size: number): AsyncGenerator<Uint8Array> {
  const reader = body.getReader();
  let finished = false;
  try {
    while (true) {
      const { value, done } = await reader.read();
      if (done) break;
      for (let at = 0; at < value.length; at += size) yield value.subarray(at, at + size);
    }
    finished = true;
  } finally {
    // Stopped early (the client left): release the body's source too.
    if (!finished) await reader.cancel();
  }
}
