/**
 * Waits that end early when the client leaves or the stand-in closes. Both reject with an `AbortError`
 * `DOMException`, which the stand-in answers with 499 (nobody reads it) or turns into a closed connection.
 */

/**
 * Waits `ms`, rejecting with an AbortError as soon as `signal` aborts.
 *
 * @example
 * ```ts
 * await delay(50, AbortSignal.timeout(1000));
 * ```
 */
export function delay(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(new DOMException("Aborted before the wait", "AbortError"));
    const onAbort = () => {
      clearTimeout(timer);
      reject(new DOMException(`Aborted during a ${ms} ms wait`, "AbortError"));
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    signal?.addEventListener("abort", onAbort, { once: true });
  });
}

/**
 * Never resolves; rejects with an AbortError once `signal` aborts. This is how `hang` and `stall_after_bytes`
 * keep a connection open without answering.
 */
export function untilAborted(signal: AbortSignal, what: string): Promise<never> {
  return new Promise((_resolve, reject) => {
    const onAbort = () => reject(new DOMException(`Aborted while ${what}`, "AbortError"));
    if (signal.aborted) return onAbort();
    signal.addEventListener("abort", onAbort, { once: true });
  });
}

/** Whether `error` is the AbortError the waits above reject with. */
export function isAbortError(error: unknown): boolean {
  return error instanceof DOMException && error.name === "AbortError";
}
