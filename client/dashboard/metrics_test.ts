import assert from "node:assert/strict";
import { providerFigures } from "./metrics.ts";
import type { MessageMeta } from "../types.ts";

function meta(partial: Partial<MessageMeta>): MessageMeta {
  return {
    transaction_id: crypto.randomUUID(),
    status: "completed",
    tool: "chat",
    provider: "kimi",
    model: "m",
    session_id: null,
    mode: "sync",
    stream: false,
    checksum: null,
    payload_size_bytes: 100,
    stored_size_bytes: 100,
    compression: "none",
    finish_reason: "stop",
    usage: null,
    error: null,
    attempts: [],
    replay_of: null,
    created_at: "2026-11-21T00:00:00Z",
    updated_at: "2026-11-21T00:00:00Z",
    completed_at: null,
    expires_at: "2026-11-23T00:00:00Z",
    retrieved_at: null,
    retrieved_count: 0,
    provider_ms: null,
    write_ms: null,
    watcher: null,
    request_checksum: null,
    request_size_bytes: null,
    files: [],
    ...partial,
  };
}

Deno.test("providerFigures() computes error, truncation and flag rates per provider", () => {
  const figures = providerFigures([
    meta({ provider_ms: 10 }),
    meta({ provider_ms: 30, finish_reason: "length", watcher: { verdict: "warning", findings: [] } }),
    meta({ status: "failed", payload_size_bytes: null }),
    meta({ status: "pending", payload_size_bytes: null }),
    meta({ provider: "glm", provider_ms: 5, watcher: { verdict: "ok", findings: [] } }),
  ]);
  assert.deepEqual(figures.map((f) => f.provider), ["glm", "kimi"]);
  const kimi = figures[1];
  assert.equal(kimi.total, 4);
  assert.equal(kimi.completed, 2);
  assert.equal(kimi.failed, 1);
  assert.equal(kimi.pending, 1);
  assert.equal(kimi.errorRate, 1 / 3);
  assert.equal(kimi.truncationRate, 0.5);
  assert.equal(kimi.flagged, 1);
  assert.equal(kimi.medianProviderMs, 20);
  assert.equal(kimi.payloadBytes, 200);
  assert.equal(figures[0].flagged, 0);
});

Deno.test("providerFigures() leaves rates empty before anything finished", () => {
  const [only] = providerFigures([meta({ status: "pending", provider: null })]);
  assert.equal(only.provider, "(none)");
  assert.equal(only.errorRate, null);
  assert.equal(only.truncationRate, null);
  assert.equal(only.medianProviderMs, null);
});
