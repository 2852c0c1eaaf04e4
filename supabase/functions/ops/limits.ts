/** `PUT /ops/limits/<user_id>` and `GET /ops/limits/<user_id>`: one user's requests-per-minute limit (CONTRACT.md §10, §12). */
import { withDb } from "../_shared/db.ts";
import { notFound } from "../_shared/errors.ts";

export interface UserLimit {
  user_id: string;
  /** 0 = unlimited. */
  requests_per_minute: number;
  updated_at: string;
}

const COLUMNS = `user_id, requests_per_minute,
  to_char(updated_at at time zone 'utc', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') as updated_at`;

/** Sets (or replaces) the user's limit. */
export async function setUserLimit(userId: string, requestsPerMinute: number): Promise<UserLimit> {
  const [row] = await withDb((sql) =>
    sql<UserLimit[]>`select ${sql.unsafe(COLUMNS)} from bus.set_user_limit(${userId}::uuid, ${requestsPerMinute})`
  );
  return row;
}

/**
 * The user's limit.
 * @throws BusError 404 when none is set (the default MESSAGE_BUS_USER_RPM applies).
 */
export async function getUserLimit(userId: string): Promise<UserLimit> {
  const [row] = await withDb((sql) =>
    sql<UserLimit[]>`select ${sql.unsafe(COLUMNS)} from bus.user_limits where user_id = ${userId}::uuid`
  );
  if (!row) throw notFound(`No limit set for user ${userId}: the default applies`);
  return row;
}
