import assert from "node:assert/strict";
import { addCounts, denseCounts, quantile } from "./histogram.ts";

Deno.test("quantile() interpolates inside the bucket that holds the rank, as histogram_quantile does", () => {
  const bounds = [10, 20, 50];
  assert.equal(quantile(bounds, [0, 10, 0, 0], 0.5), 15);
  assert.equal(quantile(bounds, [10, 0, 0, 0], 0.5), 5);
  assert.equal(quantile(bounds, [5, 5, 0, 0], 0.95), 19);
  assert.equal(quantile(bounds, [0, 0, 0, 4], 0.5), 50, "the +Inf bucket answers the largest finite bound");
  assert.equal(quantile(bounds, [0, 0, 0, 0], 0.5), null);
  assert.equal(quantile(bounds, [1, 0, 0, 1], 0.5), 10, "an empty bucket is never the answer");
});

Deno.test("denseCounts() and addCounts() turn sparse {bucket: count} into arrays and add them", () => {
  const bounds = [1, 2];
  assert.deepEqual(denseCounts({ "0": 2, "2": "5", "9": 1, x: 3 }, bounds), [2, 0, 5]);
  assert.deepEqual(addCounts([1, 1, 1], [0, 2, 3]), [1, 3, 4]);
});
