/**
 * Decoders of stored gzip payloads, paused where a page ended, so that the next page of a reader who pages through
 * a payload in order continues the decoding instead of starting it again from the first byte: reading a gzip
 * payload in `n` pages then costs one decoding instead of `n²/2` (bench/RESULTS.md, "MCP"). A cursor belongs to one
 * caller and one stored payload (its checksum is in the key), and whoever takes it has read the message's meta as
 * that caller first, so RLS has let them see it.
 *
 * Bounded: at most `max` cursors per instance, each holding the gzip state, one decoded piece (256 KiB) and a chunk
 * read ahead (1 MiB); a cursor idle for `idleMs` is closed, which ends its decoding and its chunk reads.
 */
import type { Caller } from "./auth.ts";
import { concatBytes } from "./bytes.ts";

/** A paused decoding: `pieces` hold the decoded bytes from `start` on that were read but not yet dropped. */
export class DecodeCursor {
  #pieces: Uint8Array[] = [];
  #start = 0;
  #end = 0;
  #done = false;

  constructor(private readonly source: AsyncIterator<Uint8Array>) {}

  /** The first decoded position this cursor can still serve. */
  get start(): number {
    return this.#start;
  }

  /**
   * The decoded bytes `[from, to)`, reading on as far as needed; fewer when the payload ends first.
   * @throws RangeError when `from` was dropped already; whatever the source throws.
   */
  async read(from: number, to: number): Promise<Uint8Array> {
    if (from < this.#start) throw new RangeError(`position ${from} is behind this cursor (${this.#start})`);
    while (this.#end < to && !this.#done) {
      const next = await this.source.next();
      if (next.done) this.#done = true;
      else {
        this.#pieces.push(next.value);
        this.#end += next.value.length;
      }
    }
    const parts: Uint8Array[] = [];
    let at = this.#start;
    for (const piece of this.#pieces) {
      const a = Math.max(from - at, 0), b = Math.min(to - at, piece.length);
      if (a < b) parts.push(piece.subarray(a, b));
      at += piece.length;
    }
    return concatBytes(parts);
  }

  /** Forgets the pieces that end before `position` (the next read starts at or after it). */
  dropBefore(position: number): void {
    while (this.#pieces.length > 1 && this.#start + this.#pieces[0].length <= position) {
      this.#start += this.#pieces.shift()!.length;
    }
  }

  /** Ends the decoding (and the chunk reads behind it). */
  async close(): Promise<void> {
    this.#pieces = [];
    await this.source.return?.();
  }
}

/** The paused cursors of one instance. */
export class DecodeCursors {
  #cursors = new Map<string, { cursor: DecodeCursor; timer: ReturnType<typeof setTimeout> }>();

  constructor(readonly max = 8, readonly idleMs = 60_000) {}

  /** The cursor of `key` that can serve position `from`, taken out (one reader at a time), or undefined. */
  take(key: string, from: number): DecodeCursor | undefined {
    const entry = this.#cursors.get(key);
    if (!entry || entry.cursor.start > from) return undefined;
    this.#cursors.delete(key);
    clearTimeout(entry.timer);
    return entry.cursor;
  }

  /** Parks `cursor` under `key` until it is taken or idle for `idleMs`; the oldest cursor beyond `max` is closed. */
  put(key: string, cursor: DecodeCursor): void {
    this.#evict(key);
    const timer = setTimeout(() => this.#evict(key), this.idleMs);
    // An idle cursor must not keep a process alive (where the runtime offers it).
    if (typeof timer === "number") (Deno as { unrefTimer?: (id: number) => void }).unrefTimer?.(timer);
    this.#cursors.set(key, { cursor, timer });
    while (this.#cursors.size > this.max) this.#evict(this.#cursors.keys().next().value!);
  }

  /** Closes every parked cursor (shutdown, tests). */
  async closeAll(): Promise<void> {
    await Promise.all([...this.#cursors.keys()].map((key) => this.#evict(key)));
  }

  /** Cursors parked now. */
  get size(): number {
    return this.#cursors.size;
  }

  #evict(key: string): Promise<void> {
    const entry = this.#cursors.get(key);
    if (!entry) return Promise.resolve();
    this.#cursors.delete(key);
    clearTimeout(entry.timer);
    return entry.cursor.close().catch((err) => console.error(`closing a paused decoder of ${key}: ${err}`));
  }
}

/** The key of a caller's cursor over one stored payload. */
export function cursorKey(caller: Caller, transactionId: string, checksum: string): string {
  return `${caller.role}:${caller.sub ?? ""}:${transactionId}:${checksum}`;
}
