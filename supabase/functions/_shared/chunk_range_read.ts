/**
 * Reads a run of stored chunks in one round trip: the caller context and `COPY (select seq, data …) TO STDOUT
 * (FORMAT binary)` go as one simple-protocol query, one transaction (as asCallerInOneTrip), so row-level security
 * applies as to any query and the bytes come as they are stored (a query result would carry bytea as hex text).
 * The chunks are handed on as views of the bytes postgres.js received, not copied again.
 */
import type postgres from "postgres";
import { callerContextSql, type Sql, withDb } from "./db.ts";
import type { Caller } from "./auth.ts";
import { COPY_SIGNATURE } from "./copy_signature.ts";
import { copyOutParts } from "./copy_out.ts";

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** Where the chunks live: the table and the column of the ID. */
export interface ChunkTable {
  table: string;
  key: string;
}

/**
 * Chunks `from` ≤ seq < `to` of `id` that the caller may see, by seq (a missing one is absent from the map).
 * COPY takes no parameters: the ID is checked to be a UUID and the bounds integers before they are written into
 * the statement.
 */
export async function readChunkRange(
  caller: Caller,
  where: ChunkTable,
  id: string,
  from: number,
  to: number,
  sql: Sql,
): Promise<Map<number, Uint8Array>> {
  if (!UUID.test(id)) throw new Error(`not a transaction ID: ${JSON.stringify(id)}`);
  if (![from, to].every((n) => Number.isSafeInteger(n) && n >= 0) || to <= from) {
    throw new Error(`not a chunk range: ${from}..${to}`);
  }
  const parts = await withDb(async (pool) => {
    // A connection of its own while the COPY streams: when every connection is busy, postgres.js pipelines the next
    // query onto a busy one, and on one whose COPY is still streaming that query fails (COPY_IN_PROGRESS) — a 500
    // for whichever request it was (seen under concurrent fetches). A reserved connection takes no other query.
    const sql = await pool.reserve();
    try {
      return await copyParts(sql);
    } finally {
      sql.release();
    }
  }, sql);
  return copiedChunks(parts, `chunks ${from}..${to - 1} of ${id}`);

  function copyParts(sql: postgres.ReservedSql): Promise<Uint8Array[]> {
    return copyOutParts(sql.unsafe(
      `${callerContextSql(caller)};
       copy (select seq, data from ${where.table} where ${where.key} = '${id}' and seq >= ${from} and seq < ${to}
             order by seq) to stdout (format binary)`,
    ));
  }
}

/**
 * The (seq int4, data bytea) rows of a binary COPY (PostgreSQL docs, "COPY", Binary Format), split over `parts` as
 * they arrived. A field inside one part is returned as a view of it; one that spans parts is joined.
 */
export function copiedChunks(parts: readonly Uint8Array[], what: string): Map<number, Uint8Array> {
  const bytes = new PartsCursor(parts);
  const malformed = (why: string) => new Error(`binary COPY of ${what}: ${why}`);
  const signature = bytes.take(COPY_SIGNATURE.length);
  if (!signature || COPY_SIGNATURE.some((b, i) => signature[i] !== b)) throw malformed("no signature");
  if (bytes.int32() === undefined) throw malformed("no flags");
  const extension = bytes.int32();
  if (extension === undefined || extension < 0 || !bytes.take(extension)) throw malformed("no header extension");
  const rows = new Map<number, Uint8Array>();
  for (;;) {
    const fields = bytes.int16();
    if (fields === -1) break; // the trailer
    if (fields !== 2) throw malformed(fields === undefined ? "no trailer" : `${fields} fields`);
    if (bytes.int32() !== 4) throw malformed("seq is not an int4");
    const seq = bytes.int32()!;
    const length = bytes.int32();
    if (length === undefined || length < 0) throw malformed(`chunk ${seq} has no data`);
    const data = bytes.take(length);
    if (!data) throw malformed(`chunk ${seq} is cut short`);
    rows.set(seq, data);
  }
  if (!bytes.atEnd()) throw malformed("bytes after the trailer");
  return rows;
}

/** Reads through byte arrays as one sequence. */
class PartsCursor {
  #part = 0;
  #at = 0;

  constructor(readonly parts: readonly Uint8Array[]) {}

  /** The next `n` bytes (a view when they lie in one part), or undefined when fewer are left. */
  take(n: number): Uint8Array | undefined {
    this.#skipEmpty();
    const part = this.parts[this.#part];
    if (part && this.#at + n <= part.length) {
      const view = new Uint8Array(part.buffer, part.byteOffset + this.#at, n); // a plain view, not a Buffer
      this.#at += n;
      return view;
    }
    const out = new Uint8Array(n);
    let filled = 0;
    while (filled < n) {
      this.#skipEmpty();
      const p = this.parts[this.#part];
      if (!p) return undefined;
      const k = Math.min(n - filled, p.length - this.#at);
      out.set(p.subarray(this.#at, this.#at + k), filled);
      filled += k;
      this.#at += k;
    }
    return out;
  }

  int16(): number | undefined {
    const b = this.take(2);
    return b && new DataView(b.buffer, b.byteOffset, 2).getInt16(0);
  }

  int32(): number | undefined {
    const b = this.take(4);
    return b && new DataView(b.buffer, b.byteOffset, 4).getInt32(0);
  }

  atEnd(): boolean {
    this.#skipEmpty();
    return this.#part >= this.parts.length;
  }

  #skipEmpty(): void {
    while (this.#part < this.parts.length && this.#at >= this.parts[this.#part].length) {
      this.#part++;
      this.#at = 0;
    }
  }
}
