/**
 * The operator dashboard's calls of the `ops` function (CONTRACT.md §12), with the service role key as the bearer
 * token. Each returns the parsed JSON or throws an Error naming the status and the function's error message.
 */

// The answers' types are the function's own (type-only: nothing of the server is bundled).
export type { ProviderFigures, RouteFigures, WindowFigures } from "../../supabase/functions/ops/providers.ts";
export type { SeriesPoint } from "../../supabase/functions/ops/series.ts";
import type { ProviderFigures } from "../../supabase/functions/ops/providers.ts";
import type { SeriesPoint } from "../../supabase/functions/ops/series.ts";

export interface ErrorGroup {
  fingerprint: string;
  code: string;
  provider: string;
  message: string;
  example: string | null;
  count: number;
  first_seen: string;
  last_seen: string;
  status: string;
  sample_transaction_ids: string[];
  investigation: { summary?: string; suggested_fix?: string } | null;
}
export interface FiringAlert {
  alert: string;
  labels: Record<string, string>;
  summary: string;
  started_at: string;
}

/** A client of one project's `ops` function. */
export class OpsApi {
  constructor(readonly url: string, readonly token: string, readonly fetchFn: typeof fetch = fetch.bind(globalThis)) {}

  async #call<T>(path: string, init: RequestInit = {}): Promise<T> {
    const res = await this.fetchFn(`${this.url}/functions/v1/ops${path}`, {
      ...init,
      headers: { authorization: `Bearer ${this.token}`, "content-type": "application/json" },
    });
    const body = await res.json().catch((err) => ({ error: { message: `not JSON (${err})` } }));
    if (!res.ok) throw new Error(`${path} answered ${res.status}: ${body?.error?.message ?? res.statusText}`);
    return body as T;
  }

  series(minutes: number): Promise<{ points: SeriesPoint[] }> {
    return this.#call(`/series?minutes=${minutes}`);
  }
  providers(): Promise<{ providers: ProviderFigures[] }> {
    return this.#call("/providers");
  }
  errors(): Promise<{ groups: ErrorGroup[] }> {
    return this.#call("/errors?status=open&limit=200");
  }
  alerts(): Promise<{ firing: FiringAlert[] }> {
    return this.#call("/alerts?recent=0");
  }
  resolve(fingerprint: string): Promise<unknown> {
    return this.#call(`/errors/${fingerprint}/resolve`, { method: "POST", body: "{}" });
  }
}
