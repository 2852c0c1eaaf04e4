/** `POST /tool-invoke` (and a replay) after the door: submit the invoke and answer it as CONTRACT.md §4 says. */
import type { Context } from "hono";
import { callerOf } from "../_shared/auth.ts";
import { db } from "../_shared/db.ts";
import { keepRawBody } from "../_shared/door/validate.ts";
import type { InvokeBody } from "../_shared/invoke/request.ts";
import { rateLimitHeaders, type Submission, type SubmitDeps, submitInvoke } from "../_shared/invoke/submit.ts";
import { completedBody } from "../_shared/invoke/answers.ts";

/** Handles one invoke request that passed the door. */
export async function invoke(c: Context, deps: Omit<SubmitDeps, "sql">): Promise<Response> {
  // The submission owns the body's bytes from here: an async run still needs them after the answer.
  const raw = keepRawBody(c);
  return await answer(c, deps, {
    caller: callerOf(c),
    body: c.req.valid("json" as never) as InvokeBody,
    request: raw.bytes,
    members: raw.members,
    idempotencyKey: (c.req.valid("header" as never) as { "idempotency-key"?: string })["idempotency-key"],
    release: raw.release,
    allowUnstored: true,
  });
}

/** Submits `sub` and answers: 200 completed, 202 pending, or the degraded mode's unstored bytes. */
export async function answer(
  c: Context,
  deps: Omit<SubmitDeps, "sql">,
  sub: Submission & { stream?: undefined },
): Promise<Response> {
  const started = performance.now();
  const submitted = await submitInvoke({ ...deps, sql: db() }, sub);
  if (submitted.rate) { for (const [k, v] of Object.entries(rateLimitHeaders(submitted.rate))) c.header(k, v); }
  if (submitted.status === "pending") {
    return c.json({ transaction_id: submitted.transactionId, status: "pending" }, 202);
  }
  if (submitted.status === "unstored") {
    const u = submitted.unstored;
    return new Response(u.bytes as Uint8Array<ArrayBuffer>, {
      status: 200,
      headers: {
        "content-type": u.contentType,
        "x-bus-degraded": "unstored",
        "x-bus-checksum": u.checksum,
        "x-bus-provider": u.provider,
        "access-control-allow-origin": "*",
        "access-control-expose-headers": "x-bus-degraded, x-bus-checksum, x-bus-provider",
      },
    });
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
