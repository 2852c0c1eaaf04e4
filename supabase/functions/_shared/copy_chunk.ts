/**
 * Writing stored chunks with `COPY … FROM STDIN (FORMAT binary)`: the bytes go to Postgres as they are. A bytea
 * parameter travels as hex text (`\x…`, twice the size), which Postgres then has to parse: appending 50 chunks of
 * 1 MiB took 800 ms that way here, 360 ms by binary COPY. One COPY stays open while chunks keep coming (up to
 * {@link MAX_ROWS} rows, closed after {@link IDLE_MS} without one): a COPY per chunk took 620-800 ms for 50 MiB where
 * one COPY took 310-520 ms (fsync on; bench/RESULTS.md "Files"), and a client that trickles its upload does not
 * hold a connection for long. Reading uses the same format (payload_read.ts).
 *
 * Errors: postgres.js settles a COPY's query when the stream opens, so a failure after the last byte (a trigger
 * refusing a row, a lost connection) would never be reported on the stream; each COPY's transaction therefore ends
 * with a probe statement, which fails when the COPY did (SQLSTATE 25P02, or the connection's error).
 */
import type { Writable } from "node:stream";
import { type Sql, type Tx, withDb } from "./db.ts";

/** The first bytes of every binary COPY: "PGCOPY\n\377\r\n\0", no flags, no header extension. */
const HEADER = new Uint8Array([
  0x50,
  0x47,
  0x43,
  0x4f,
  0x50,
  0x59,
  0x0a,
  0xff,
  0x0d,
  0x0a,
  0x00,
  0,
  0,
  0,
  0,
  0,
  0,
  0,
  0,
]);
/** The trailer: a field count of -1. */
const TRAILER = new Uint8Array([0xff, 0xff]);
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
/** Rows of one COPY (about 1 MiB each): its transaction commits, and its connection goes back, after this many. */
export const MAX_ROWS = 32;
/** A COPY waiting this long for its next row is ended (committed) and its connection given back. */
export const IDLE_MS = 100;

/** Where file chunks go: `(file_id, seq, data)`, the owner filled in (and the upload checked) by a trigger. */
export const FILE_CHUNKS = "public.message_bus_file_chunks (file_id, seq, data)";

interface Batch {
  writable: Writable;
  rows: number;
  timer?: ReturnType<typeof setTimeout>;
  /** Lets the transaction go on to its probe and commit (after the trailer was written). */
  finish(): void;
  /** The transaction: resolves once committed, rejects with the COPY's failure. */
  done: Promise<void>;
}

/**
 * The rows `(id, seq, data)` of one stored object, written to `target` (a table and its three columns, a constant of
 * this module's callers) by binary COPY. Call `write` one row at a time, then `flush` (everything committed) or,
 * after a failure, `abort` (the open COPY rolled back).
 */
export class CopySink {
  #batch: Batch | undefined;
  #closing: Promise<void>[] = [];
  #error: unknown;
  readonly #id: Uint8Array;

  constructor(readonly sql: Sql, readonly target: string, id: string) {
    if (!UUID.test(id)) throw new Error(`not a UUID: ${JSON.stringify(id)}`);
    this.#id = uuidBytes(id);
  }

  /** Writes row `seq`; resolves once its bytes are handed to the connection (not yet committed). */
  async write(seq: number, data: Uint8Array): Promise<void> {
    if (!Number.isSafeInteger(seq) || seq < 0) throw new Error(`not a chunk number: ${seq}`);
    if (this.#error) throw this.#error;
    const batch = this.#batch ??= await this.#open();
    clearTimeout(batch.timer);
    const head = new Uint8Array((batch.rows === 0 ? HEADER.length : 0) + 34);
    if (batch.rows === 0) head.set(HEADER, 0);
    const view = new DataView(head.buffer, head.length - 34);
    view.setInt16(0, 3); // fields: the uuid (16 bytes), the int4 seq, the bytea
    view.setInt32(2, 16);
    head.set(this.#id, head.length - 28);
    view.setInt32(22, 4);
    view.setInt32(26, seq);
    view.setInt32(30, data.length);
    await writeTo(batch.writable, head);
    await writeTo(batch.writable, data);
    batch.rows++;
    if (batch.rows >= MAX_ROWS) this.#close();
    else batch.timer = setTimeout(() => this.#close(), IDLE_MS);
  }

  /** Ends the open COPY and waits until every row written is committed. @throws the first failure. */
  async flush(): Promise<void> {
    this.#close();
    await Promise.allSettled(this.#closing);
    this.#closing = [];
    if (this.#error) throw this.#error;
  }

  /** Rolls back the open COPY (its rows are not stored) and waits for those already closing. Never throws. */
  async abort(): Promise<void> {
    const batch = this.#batch;
    this.#batch = undefined;
    if (batch) {
      clearTimeout(batch.timer);
      batch.writable.destroy(new Error("the store was abandoned")); // postgres.js sends CopyFail
      this.#closing.push(settle(batch));
    }
    await Promise.allSettled(this.#closing);
    this.#closing = [];
  }

  /** Ends the open COPY (its commit goes on in the background, awaited by `flush`). */
  #close(): void {
    const batch = this.#batch;
    this.#batch = undefined;
    if (!batch) return;
    clearTimeout(batch.timer);
    const ending = writeTo(batch.writable, TRAILER).then(() => void batch.writable.end());
    this.#closing.push(
      ending.then(() => settle(batch), (err) => (batch.writable.destroy(err), settle(batch)))
        .catch((err) => void (this.#error ??= err)),
    );
  }

  /** Starts a transaction with its COPY open, holding one of the instance's database slots until it ends. */
  #open(): Promise<Batch> {
    return new Promise<Batch>((resolve, reject) => {
      let finish!: () => void;
      const finishing = new Promise<void>((r) => (finish = r));
      const done = withDb(
        (sql) =>
          sql.begin(async (tx) => {
            // The seal's commit waits for the WAL flush, and flushes these too (db.ts COMMIT_WITHOUT_FLUSH_WAIT).
            await tx.unsafe("set local synchronous_commit = off");
            const writable = await tx.unsafe(`copy ${this.target} from stdin (format binary)`).writable();
            writable.on("error", (err: Error) => void (this.#error ??= err)); // unheard, an 'error' ends the process
            resolve({ writable, rows: 0, finish, done });
            await finishing;
            await probe(tx);
          }),
        this.sql,
      ).then(() => undefined);
      done.catch((err) => {
        this.#error ??= err;
        reject(err); // opening failed (no effect once resolved)
      });
    });
  }
}

/**
 * Lets the batch's transaction go on to its probe once postgres.js has sent the COPY's end (CopyDone, or CopyFail
 * after a destroy), which it does on the tick after `end()`; a statement issued before would be refused
 * (COPY_IN_PROGRESS), and inside postgres.js's transaction scope even a refused statement rolls the transaction back.
 */
async function settle(batch: Batch): Promise<void> {
  await new Promise((r) => setTimeout(r, 0));
  batch.finish();
  await batch.done;
}

/** Writes `bytes`, resolving when the connection took them (its backpressure) and rejecting on a stream error. */
function writeTo(writable: Writable, bytes: Uint8Array): Promise<void> {
  return new Promise((resolve, reject) => writable.write(bytes, (err) => (err ? reject(err) : resolve())));
}

/**
 * A statement after the COPY, on its transaction: it runs once the COPY has completed, and fails when the COPY did
 * (SQLSTATE 25P02, the transaction aborted; the COPY's own error is not reported by postgres.js once its stream has
 * ended).
 */
async function probe(tx: Tx): Promise<void> {
  await tx`select 1`;
}

function uuidBytes(id: string): Uint8Array {
  const hex = id.replaceAll("-", "");
  const out = new Uint8Array(16);
  for (let i = 0; i < 16; i++) out[i] = parseInt(hex.slice(i * 2, i * 2 + 2), 16);
  return out;
}
