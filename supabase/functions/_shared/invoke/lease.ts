/**
 * A worker's lease on its pending message: renewed every third of its length while the worker runs, so the reaper
 * (which acts only on expired leases, migration 20261126000100) never fails a call in progress. A renewal that
 * finds the message no longer pending for this run marks the lease lost: the completion will then be refused, and
 * the caller answered from the message's recorded state.
 */
import { type Sql, withDb } from "../db.ts";

export class Lease {
  #timer: ReturnType<typeof setInterval> | undefined;
  #lost = false;

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
      this.renew().catch((err) =>
        // The next renewal tries again; if none lands before the lease runs out, the reaper takes the message.
        console.warn(`[lease] renewing ${this.transactionId} failed: ${err instanceof Error ? err.message : err}`)
      );
    }, (this.seconds * 1000) / 3);
    return this;
  }

  /** Renews once now; false (and `lost`) when the message is no longer this run's. */
  async renew(): Promise<boolean> {
    const [{ renewed }] = await withDb(
      (sql) =>
        sql<
          { renewed: boolean }[]
        >`select bus.renew_lease(${this.transactionId}::uuid, ${this.run}, ${this.seconds}) as renewed`,
      this.sql,
    );
    if (!renewed && !this.#lost) {
      this.#lost = true;
      console.warn(`[lease] ${this.transactionId} run ${this.run}: the message is no longer this run's`);
    }
    return renewed;
  }

  stop(): void {
    clearInterval(this.#timer);
  }
}
