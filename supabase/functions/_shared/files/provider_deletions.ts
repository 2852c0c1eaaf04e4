/**
 * Deleting the provider's copies of files that are gone (bus.provider_file_deletions, queued when a file is
 * deleted or expires, or when a concurrent upload to the provider lost the race). Moonshot keeps at most 1,000
 * files per account (gateways-streaming-mcp.md §4), so copies must not pile up there. Run by the cleanup function.
 */
import OpenAI from "openai";
import { asService, type Sql } from "../db.ts";
import type { Settings } from "../env.ts";
import { providerClient } from "../providers/openai_compatible.ts";

/** What one run did: copies deleted (or already gone at the provider), and failures left for the next run. */
export interface DeletionCounts {
  provider_files_deleted: number;
  provider_file_deletions_failed: number;
}

/**
 * Deletes up to `limit` queued provider copies, one after another, until `deadline` (performance.now() time).
 * A copy the provider no longer has (404) counts as deleted; other failures are kept (bus.take_provider_file_deletions
 * gives up after 5 attempts and leaves the row for an operator).
 */
export async function deleteProviderCopies(
  sql: Sql,
  s: Settings,
  deadline: number,
  limit = 100,
  fetchImpl?: typeof fetch,
): Promise<DeletionCounts> {
  const counts: DeletionCounts = { provider_files_deleted: 0, provider_file_deletions_failed: 0 };
  if (performance.now() >= deadline) return counts;
  const rows = await asService(
    (tx) =>
      tx<{ id: string; provider: string; base_url: string; provider_file_id: string }[]>`
      select id, provider, base_url, provider_file_id from bus.take_provider_file_deletions(${limit})`,
    sql,
  );
  for (const row of rows) {
    let error: string | null = null;
    if (performance.now() >= deadline) error = "the cleanup's time budget ran out";
    else {
      const config = s.providers.get(row.provider);
      if (!config || config.baseURL !== row.base_url || !config.apiKey) {
        error = `provider ${row.provider} is not configured at ${row.base_url} any more`;
      } else {
        try {
          const client = providerClient(config, { timeoutMs: s.PROVIDER_TIMEOUT_MS, maxRetries: 1, fetch: fetchImpl });
          await client.files.delete(row.provider_file_id);
        } catch (err) {
          if (!(err instanceof OpenAI.NotFoundError)) {
            error = err instanceof OpenAI.APIError ? `${row.provider} answered ${err.status}` : `${err}`;
          }
        }
      }
    }
    if (error) counts.provider_file_deletions_failed++;
    else counts.provider_files_deleted++;
    await asService((tx) => tx`select bus.finish_provider_file_deletion(${row.id}, ${error === null}, ${error})`, sql);
  }
  return counts;
}
