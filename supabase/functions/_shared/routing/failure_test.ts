/** classifyFailure, retryAfterMs and backoffMs: what is retried, for how long the bus waits. */
import assert from "node:assert/strict";
import OpenAI from "openai";
import { backoffMs, classifyFailure, ProviderBodyError, retryAfterMs } from "./failure.ts";

const apiError = (status: number, headers: Record<string, string> = {}) =>
  OpenAI.APIError.generate(status, { error: { message: "x" } }, "x", new Headers(headers));

Deno.test("classifyFailure: 429, 408 and 5xx are retried; other 4xx are the request's fault", () => {
  for (const status of [429, 408, 500, 502, 503, 504, 529]) {
    const f = classifyFailure(apiError(status), "kimi", false);
    assert.equal(f.retryable, true, String(status));
    assert.equal(f.errorCode, `http_${status}`);
    assert.equal(f.error.provider_status, status);
  }
  for (const status of [400, 401, 403, 404, 409, 413, 422]) {
    assert.equal(classifyFailure(apiError(status), "kimi", false).retryable, false, String(status));
  }
});

Deno.test("classifyFailure: the provider's status is said once in the message", () => {
  const err = OpenAI.APIError.generate(404, { error: { message: "Model not found" } }, "x", new Headers());
  assert.match(err.message, /^404 /, "the SDK's message starts with the status");
  assert.equal(classifyFailure(err, "kimi", false).error.message, "kimi answered 404: Model not found");
});

Deno.test("classifyFailure: the attempt's own timeout, a connection error and a broken body are retried", () => {
  const timeout = classifyFailure(new Error("aborted"), "glm", true);
  assert.deepEqual([timeout.retryable, timeout.errorCode, timeout.error.code], [true, "timeout", "provider_timeout"]);
  const conn = classifyFailure(new OpenAI.APIConnectionError({ message: "refused" }), "glm", false);
  assert.deepEqual([conn.retryable, conn.errorCode, conn.error.code], [true, "connection", "provider_unreachable"]);
  const body = classifyFailure(new ProviderBodyError(new Error("reset")), "glm", false);
  assert.deepEqual([body.retryable, body.errorCode], [true, "connection"]);
  assert.match(String(body.error.message), /reset/);
});

Deno.test("retryAfterMs: seconds, an HTTP date, retry-after-ms; nothing when absent or unreadable", () => {
  assert.equal(retryAfterMs(new Headers({ "retry-after": "3" })), 3000);
  assert.equal(retryAfterMs(new Headers({ "retry-after-ms": "250" })), 250);
  const inTwo = new Date(Date.now() + 2_000).toUTCString();
  const fromDate = retryAfterMs(new Headers({ "retry-after": inTwo }))!;
  assert.ok(fromDate > 0 && fromDate <= 2_000, String(fromDate));
  assert.equal(retryAfterMs(new Headers({ "retry-after": "soon" })), undefined);
  assert.equal(retryAfterMs(new Headers()), undefined);
  assert.equal(classifyFailure(apiError(429, { "retry-after": "7" }), "kimi", false).retryAfterMs, 7000);
});

Deno.test("backoffMs: full jitter up to base × 2^attempt, capped at 8 s", () => {
  assert.equal(backoffMs(0, 250, () => 1), 250);
  assert.equal(backoffMs(3, 250, () => 1), 2000);
  assert.equal(backoffMs(10, 250, () => 1), 8000);
  assert.equal(backoffMs(2, 250, () => 0), 0);
  assert.equal(backoffMs(1, 250, () => 0.5), 250);
});
