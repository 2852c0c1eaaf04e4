/** Test helpers for the SDK's unit tests. */
import assert from "node:assert/strict";

/** Awaits `fn()`, asserts that it rejects with an instance of `type`, and returns that error. */
export async function rejection<E extends Error>(
  fn: () => Promise<unknown>,
  type: abstract new (...args: never[]) => E,
): Promise<E> {
  let result: unknown;
  try {
    result = await fn();
  } catch (err) {
    assert.ok(err instanceof type, `expected a ${type.name}, got ${err instanceof Error ? err.stack : err}`);
    return err;
  }
  throw new assert.AssertionError({
    message: `expected a ${type.name}, but it resolved with ${JSON.stringify(result)}`,
  });
}

/** A fetch that answers from `handler` and records every request. */
export function fakeFetch(
  handler: (req: Request) => Response | Promise<Response>,
): typeof fetch & { requests: Request[] } {
  const requests: Request[] = [];
  const f = (input: RequestInfo | URL, init?: RequestInit) => {
    const req = new Request(input, init);
    requests.push(req.clone());
    return Promise.resolve(handler(req));
  };
  return Object.assign(f, { requests }) as typeof fetch & { requests: Request[] };
}
