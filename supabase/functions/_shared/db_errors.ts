/**
 * Telling "the database is unreachable" apart from other failures: the bus then answers 503 `bus_unavailable` at
 * once (or, with MESSAGE_BUS_INLINE_FALLBACK, a sync invoke answers unstored), never a hang or a bare 500.
 */

// postgres.js connection errors, and the SQLSTATEs of a server that is shutting down, starting up or gone.
const CONNECTION_CODES = new Set([
  "ECONNREFUSED",
  "ECONNRESET",
  "EPIPE",
  "ETIMEDOUT",
  "EHOSTUNREACH",
  "CONNECT_TIMEOUT",
  "CONNECTION_CLOSED",
  "CONNECTION_ENDED",
  "CONNECTION_DESTROYED",
  "57P01", // admin_shutdown
  "57P02", // crash_shutdown
  "57P03", // cannot_connect_now
  "08000",
  "08001",
  "08003",
  "08004",
  "08006",
]);

/** True when `err` says the database cannot be reached (as opposed to a query that failed). */
export function isDatabaseUnreachable(err: unknown): boolean {
  for (let e = err, depth = 0; e && depth < 4; depth++) {
    const code = (e as { code?: unknown }).code;
    if (typeof code === "string" && CONNECTION_CODES.has(code)) return true;
    if (
      e instanceof Error && /Connection refused|connection (?:ended|closed|terminated)|ECONNREFUSED/i.test(e.message)
    ) {
      return true;
    }
    e = (e as { cause?: unknown }).cause;
  }
  return false;
}
