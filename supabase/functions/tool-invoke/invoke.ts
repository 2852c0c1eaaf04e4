/** `POST /tool-invoke` after the door: submit the invoke (record, run) and answer it as CONTRACT.md §4 says. */
import type { Context } from "hono";
import { callerOf } from "../_shared/auth.ts";
import { db } from "../_shared/db.ts";
import { keepRawBody } from "../_shared/door/validate.ts";
import type { InvokeBody } from "../_shared/invoke/request.ts";
import { type SubmitDeps, submitInvoke } from "../_shared/invoke/submit.ts";
import { completedBody } from "../_shared/invoke/answers.ts";

export { SERVICE_OWNER } from "../_shared/invoke/submit.ts";

/** Handles one invoke request that passed the door. */
export async function invoke(c: Context, deps: Omit<SubmitDeps, "sql">): Promise<Response> {
  const started = performance.now();
  // The submission owns the body's bytes from here: an async run still needs them after the answer.
  const raw = keepRawBody(c);
  const submitted = await submitInvoke({ ...deps, sql: db() }, {
    caller: callerOf(c),
    body: c.req.valid("json" as never) as InvokeBody,
    request: raw.bytes,
    members: raw.members,
    idempotencyKey: (c.req.valid("header" as never) as { "idempotency-key"?: string })["idempotency-key"],
    release: raw.release,
  });
  if (submitted.status === "pending") {
    return c.json({ transaction_id: submitted.transactionId, status: "pending" }, 202);
  }
  const { row, timing } = submitted;
  // Where the time went (Server-Timing, visible in browser dev tools and used by the benchmark).
  c.header(
    "server-timing",
    [
      `validate;dur=${timing.validatedMs.toFixed(1)}`,
      `record;dur=${(timing.recordedMs - timing.validatedMs).toFixed(1)}`,
      `provider;dur=${row.provider_ms ?? 0}`,
      `store;dur=${row.write_ms ?? 0}`,
      `total;dur=${(performance.now() - started).toFixed(1)}`,
    ].join(", "),
  );
  return c.json(completedBody(row), 200);
}
