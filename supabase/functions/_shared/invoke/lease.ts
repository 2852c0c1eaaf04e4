/**
 * A worker's lease on its pending message: renewed every third of its length while the worker runs, so the reaper
 * (which acts only on expired leases, migration 20261126000100) never fails a call in progress. A renewal that
 * finds the message no longer pending for this run marks the lease lost: the completion will then be refused, and
 * the caller answered from the message's recorded state. A renewal still in flight when the worker stops (it waited
 * for a database slot while the run finished the message) says nothing: the message is no longer pending because
 * this run finished it (the fault benchmark logged 38 such false "no longer this run's" warnings in one run).
 */
import { type Sql, withDb } from "../db.ts";

export class Lease {
  #timer: ReturnType<typeof setInterval> | undefined;
  #lost = false;
  #stopped = false;

  constructor(
    readonly sql: Sql,
    readonly transactionId: string,
    readonly run: number,
    readonly seconds: number,
  ) {}

  /** True once a renewal found the message gone from this run. */
  get lost(): boolean {
    return this.#lost;
  }

  start(): this {
    this.#timer = setInterval(() => {
      this.renew().catch((err) => {
        // The next renewal tries again; if none lands before the lease runs out, the reaper takes the message.
        if (!this.#stopped) {
          console.warn(`[lease] renewing ${this.transactionId} failed: ${err instanceof Error ? err.message : err}`);
        }
      });
    }, (this.seconds * 1000) / 3);
    return this;
  }

  /** Renews once now; false (and `lost`, unless the worker stopped meanwhile) when the message is no longer this run's. */
  async renew(): Promise<boolean> {
    const [{ renewed }] = await withDb(
      (sql) =>
        sql<
          { renewed: boolean }[]
        >`select bus.renew_lease(${this.transactionId}::uuid, ${this.run}, ${this.seconds}) as renewed`,
      this.sql,
    );
    if (!renewed && !this.#lost && !this.#stopped) {
      this.#lost = true;
      console.warn(`[lease] ${this.transactionId} run ${this.run}: the message is no longer this run's`);
    }
    return renewed;
  }

  /** Stops renewing; a renewal still in flight then changes nothing and logs nothing. */
  stop(): void {
    this.#stopped = true;
    clearInterval(this.#timer);
  }
}
