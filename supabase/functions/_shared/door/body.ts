/**
 * Reading a request body once, with two bounds:
 * - its size (413 past `maxBytes`: a declared `Content-Length` is refused before a byte is read, a chunked body as
 *   soon as it passes the limit);
 * - the bodies in flight in this instance (a {@link BodyBudget}): a function instance has 256 MB
 *   (supabase-platform.md §1.7), and eight 90 MB invokes at once took the local stack to 888 MB. A body that does
 *   not fit the budget is answered 503 with `Retry-After` at once, without reading it.
 *
 * The bytes are held once, in one buffer of the declared length (or in the pieces of a chunked body, joined once),
 * and the caller releases the reservation when it no longer needs them.
 */
import { busy, payloadTooLarge } from "../errors.ts";
import { concatBytes } from "../bytes.ts";

/** Bytes of request bodies this instance may hold at once. */
export class BodyBudget {
  #used = 0;

  constructor(readonly limitBytes: number) {}

  /** Bytes reserved now. */
  get used(): number {
    return this.#used;
  }

  /** Reserves `n` bytes; false (nothing reserved) when that would pass the limit. */
  tryReserve(n: number): boolean {
    if (this.#used + n > this.limitBytes) return false;
    this.#used += n;
    return true;
  }

  release(n: number): void {
    this.#used = Math.max(0, this.#used - n);
  }
}

/** A body read under a reservation; call `release()` once the bytes are no longer needed (idempotent). */
export interface HeldBody {
  bytes: Uint8Array;
  release(): void;
}

export interface ReadBodyOptions {
  maxBytes: number;
  budget: BodyBudget;
  /** Seconds a client is told to wait when the budget is full. */
  retryAfterSeconds?: number;
}

/**
 * Reads `req`'s body.
 * @throws BusError 413 (too large), 503 `server_busy` with Retry-After (budget full).
 */
export async function readBody(req: Request, opts: ReadBodyOptions): Promise<HeldBody> {
  const limitMb = Math.round(opts.maxBytes / 1024 / 1024);
  const tooLarge = () =>
    payloadTooLarge(`The request body exceeds the ${limitMb} MB limit`, { limit_bytes: opts.maxBytes });
  const full = () =>
    busy(
      "server_busy",
      "Too many large request bodies are being processed by this instance; retry shortly",
      opts.retryAfterSeconds ?? 2,
    );
  let reserved = 0;
  const reserve = (n: number) => {
    if (!opts.budget.tryReserve(n)) throw full();
    reserved += n;
  };
  const release = () => {
    opts.budget.release(reserved);
    reserved = 0;
  };

  const header = req.headers.get("content-length");
  const declared = header !== null && /^\d+$/.test(header) ? Number(header) : undefined;
  if (declared !== undefined && declared > opts.maxBytes) {
    await req.body?.cancel();
    throw tooLarge();
  }
  if (!req.body) return { bytes: new Uint8Array(0), release };
  try {
    if (declared !== undefined) {
      reserve(declared);
      const bytes = new Uint8Array(declared);
      let size = 0;
      for await (const chunk of req.body) {
        // The server enforces Content-Length; this guards against a runtime that does not.
        if (size + chunk.length > declared) throw tooLarge();
        bytes.set(chunk, size);
        size += chunk.length;
      }
      return { bytes: size === declared ? bytes : bytes.subarray(0, size), release };
    }
    const parts: Uint8Array[] = [];
    let size = 0;
    for await (const chunk of req.body) {
      size += chunk.length;
      if (size > opts.maxBytes) throw tooLarge();
      reserve(chunk.length);
      parts.push(chunk);
    }
    return { bytes: concatBytes(parts), release };
  } catch (err) {
    release();
    if (!req.body.locked) {
      await req.body.cancel().catch((cancelErr) => console.warn(`cancelling a refused body: ${cancelErr}`));
    }
    throw err;
  }
}
