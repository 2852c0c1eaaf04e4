/**
 * The DB tap of the Realtime stand-in (supabase-platform.md §8.3): LISTEN on the channel that the AFTER INSERT
 * trigger of devstack/sql/30_realtime.sql notifies at commit with each realtime.messages row (or, for a row too large
 * for a notification, its key: the row is then read back), and hand the rows on in notification (= commit) order. Hosted Realtime reads the same rows from the WAL (§3.1 delivery path).
 */
import type postgres from "postgres";

/** The NOTIFY channel of `realtime.stand_in_notify_message()` in devstack/sql/30_realtime.sql. */
export const NOTIFY_CHANNEL = "realtime_stand_in_messages";

/** A committed broadcast row: the payload as JSON text, or the binary payload of realtime.send_binary. */
export interface DbBroadcast {
  id: string;
  topic: string;
  event: string;
  private: boolean;
  /** JSON text of `payload` (exact, as Postgres prints jsonb), or null for a binary payload. */
  payloadJson: string | null;
  binaryPayload: Uint8Array | null;
}

/** A running tap. */
export interface Tap {
  /** Stops listening; waits for rows already being delivered. */
  close(): Promise<void>;
}

/** A notification: the inserted row, or only its key when the row did not fit (see the trigger). */
type Notice = { id: string; inserted_at: string } & Partial<Omit<Row, "binary_payload">> & {
  binary_payload_hex?: string | null;
};

/** The row a notification carries. */
function rowOf(n: Notice): Row {
  return {
    id: n.id,
    topic: n.topic!,
    event: n.event ?? null,
    private: n.private ?? null,
    payload_json: n.payload_json ?? null,
    binary_payload: n.binary_payload_hex == null ? null : Uint8Array.fromHex(n.binary_payload_hex),
  };
}

interface Row {
  id: string;
  topic: string;
  event: string | null;
  private: boolean | null;
  payload_json: string | null;
  binary_payload: Uint8Array | null;
}

/**
 * Starts listening. `deliver` is called once per committed row, strictly in commit order; rows without event,
 * private flag or payload are skipped with a log line, as hosted Realtime does (§3.1 step 3).
 */
export async function startTap(
  sql: postgres.Sql,
  deliver: (msg: DbBroadcast) => void,
  log: (msg: string) => void,
): Promise<Tap> {
  let chain: Promise<void> = Promise.resolve();
  const onNotify = (raw: string) => {
    // Serialize: the next row is read only after the previous one was handed on, keeping commit order.
    chain = chain.then(() => readAndDeliver(raw)).catch((err) => {
      log(`UnableToBroadcastChanges: notification ${raw}: ${err instanceof Error ? err.message : err}`);
    });
  };

  async function readAndDeliver(raw: string): Promise<void> {
    const notice = JSON.parse(raw) as Notice;
    const row = "topic" in notice ? rowOf(notice) : await readRow(notice);
    if (!row) return log(`UnableToBroadcastChanges: message ${notice.id} is gone`);
    if (row.event === null || row.private === null || (row.payload_json === null && row.binary_payload === null)) {
      return log(`UnableToBroadcastChanges: message ${row.id} lacks event, private or payload`);
    }
    deliver({
      id: row.id,
      topic: row.topic,
      event: row.event,
      private: row.private,
      payloadJson: row.payload_json,
      binaryPayload: row.binary_payload === null ? null : new Uint8Array(row.binary_payload),
    });
  }

  /** A row too large for its notification, read back by primary key. */
  async function readRow({ id, inserted_at }: Notice): Promise<Row | undefined> {
    // ::text first: postgres.js would turn a timestamp parameter into a Date and drop the microseconds.
    const rows = await sql<Row[]>`
      select id, topic, event, private, payload::text as payload_json, binary_payload
      from realtime.messages where id = ${id} and inserted_at = ${inserted_at}::text::timestamp`;
    return rows[0];
  }

  const listening = await sql.listen(NOTIFY_CHANNEL, onNotify);
  return {
    async close() {
      await listening.unlisten();
      await chain;
    },
  };
}
