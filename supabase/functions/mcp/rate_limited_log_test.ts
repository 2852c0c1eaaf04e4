import assert from "node:assert/strict";
import { rateLimitedLog } from "./rate_limited_log.ts";

Deno.test("rateLimitedLog() writes max lines per window, then counts what it left out", () => {
  const lines: string[] = [];
  let clock = 1_000;
  const log = rateLimitedLog("[mcp]", 2, 60_000, (l) => lines.push(l), () => clock);
  for (let i = 0; i < 5; i++) log(new Error(`bad ${i}`));
  assert.deepEqual(lines, ["[mcp] bad 0", "[mcp] bad 1"]);
  clock += 60_000;
  log(new Error("later"));
  assert.deepEqual(lines.slice(2), ["[mcp] 3 more report(s) left out in the last 60 s", "[mcp] later"]);
});
