/**
 * Error groups (CONTRACT.md §12; migration 20261126000410): `GET /ops/errors` folds the occurrences committed so far
 * and lists the groups; `POST /ops/errors/<fingerprint>/resolve` marks one resolved (a new occurrence reopens it).
 */
import { withDb } from "../_shared/db.ts";
import { notFound } from "../_shared/errors.ts";

/** One group as the API answers it. */
export interface ErrorGroup {
  fingerprint: string;
  code: string;
  provider: string;
  message: string;
  count: number;
  first_seen: string;
  last_seen: string;
  status: "open" | "resolved";
  sample_transaction_ids: string[];
  source: "failure" | "watcher";
  example: string | null;
  resolved_at: string | null;
  reopened_count: number;
  investigation: Record<string, unknown> | null;
}

const COLUMNS = `fingerprint, code, provider, message, count::float8 as count,
  to_char(first_seen at time zone 'utc', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') as first_seen,
  to_char(last_seen at time zone 'utc', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') as last_seen, status,
  sample_transaction_ids::text[] as sample_transaction_ids, source, example,
  to_char(resolved_at at time zone 'utc', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') as resolved_at, reopened_count,
  investigation`;

/** Lists groups (`status`: open, resolved or all), most recently seen first, after folding pending occurrences. */
export async function listErrorGroups(status: "open" | "resolved" | "all", limit: number): Promise<ErrorGroup[]> {
  return await withDb((sql) =>
    sql.begin(async (tx) => {
      await tx`select bus.fold_error_groups()`;
      return await tx<ErrorGroup[]>`
        select ${tx.unsafe(COLUMNS)} from bus.error_groups
         where ${status} = 'all' or status = ${status}
         order by last_seen desc, fingerprint limit ${limit}`;
    })
  );
}

/**
 * Marks the group resolved.
 * @throws BusError 404 when there is no such group.
 */
export async function resolveErrorGroup(fingerprint: string): Promise<ErrorGroup> {
  const [group] = await withDb((sql) =>
    sql<ErrorGroup[]>`select ${sql.unsafe(COLUMNS)} from bus.resolve_error_group(${fingerprint})`
  );
  if (!group) throw notFound(`No error group ${fingerprint}`);
  return group;
}
