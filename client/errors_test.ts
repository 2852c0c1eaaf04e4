import assert from "node:assert/strict";
import {
  BusApiError,
  BusClientError,
  BusNetworkError,
  BusTimeoutError,
  ChecksumMismatchError,
  ErrorCode,
  isBusClientError,
  RealtimeError,
} from "./errors.ts";

Deno.test("every SDK error is a BusClientError with its code and name", () => {
  const cases: Array<[BusClientError, string, string]> = [
    [new BusApiError("No message", "not_found", { status: 404 }), "BusApiError", "not_found"],
    [new BusNetworkError("down"), "BusNetworkError", ErrorCode.Network],
    [new BusTimeoutError("slow"), "BusTimeoutError", ErrorCode.Timeout],
    [new RealtimeError("Unauthorized: no", ErrorCode.RealtimeUnauthorized), "RealtimeError", "realtime_unauthorized"],
    [new ChecksumMismatchError("t", "sha256:a", "sha256:b", "client"), "ChecksumMismatchError", "checksum_mismatch"],
  ];
  for (const [err, name, code] of cases) {
    assert.ok(err instanceof BusClientError && err instanceof Error);
    assert.equal(err.name, name);
    assert.equal(err.code, code);
    assert.ok(isBusClientError(err));
  }
});

Deno.test("toJSON() serialises code, status, transaction id and details, and survives JSON round trips", () => {
  const err = new ChecksumMismatchError("01a1fe64-0000-7000-8000-000000000000", "sha256:aa", "sha256:bb", "server", {
    status: 500,
  });
  const json = JSON.parse(JSON.stringify(err));
  assert.deepEqual(json, {
    name: "ChecksumMismatchError",
    code: "checksum_mismatch",
    message:
      "Checksum mismatch for 01a1fe64-0000-7000-8000-000000000000: expected sha256:aa, got sha256:bb (detected by the server)",
    status: 500,
    transaction_id: "01a1fe64-0000-7000-8000-000000000000",
    details: { expected: "sha256:aa", actual: "sha256:bb", source: "server" },
  });
  assert.deepEqual(new BusNetworkError("down").toJSON(), {
    name: "BusNetworkError",
    code: "network_error",
    message: "down",
  });
});

Deno.test("isBusClientError() recognises the brand (another copy of the SDK) and rejects look-alikes", () => {
  assert.ok(isBusClientError({ __isBusClientError: true, code: "x", message: "from another copy" }));
  assert.ok(!isBusClientError(new Error("plain")));
  assert.ok(!isBusClientError({ code: "not_found" }));
  assert.ok(!isBusClientError(null));
  assert.ok(!isBusClientError("checksum_mismatch"));
});

Deno.test("the cause is kept", () => {
  const cause = new TypeError("connection refused");
  assert.equal(new BusNetworkError("down", { cause }).cause, cause);
});
