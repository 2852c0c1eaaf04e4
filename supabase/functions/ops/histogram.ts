/**
 * The rollups' histogram buckets (migration 20261126000420: bus.ops_duration_bounds, bus.ops_size_bounds; a test
 * checks that these copies equal the database's) and quantiles estimated from them the way Prometheus's
 * `histogram_quantile` does: linear interpolation inside the bucket that holds the rank.
 */

/** Upper bounds (ms) of provider time, bus overhead and time to first token; a last bucket is +Inf. */
export const DURATION_BOUNDS_MS: readonly number[] = [
  0.25,
  0.5,
  1,
  2,
  3,
  5,
  7,
  10,
  15,
  20,
  30,
  50,
  70,
  100,
  150,
  200,
  300,
  500,
  700,
  1000,
  1500,
  2000,
  3000,
  5000,
  7000,
  10000,
  15000,
  20000,
  30000,
  60000,
  120000,
  300000,
];

/** Upper bounds (bytes) of payload sizes; a last bucket is +Inf. */
export const SIZE_BOUNDS_BYTES: readonly number[] = [
  256,
  1024,
  4096,
  16384,
  65536,
  262144,
  1048576,
  4194304,
  16777216,
  67108864,
  268435456,
];

/** Sparse bucket counts (`{ "<bucket index>": count }`, as the SQL readers return them) as a dense array. */
export function denseCounts(sparse: Record<string, number | string>, bounds: readonly number[]): number[] {
  const counts = new Array<number>(bounds.length + 1).fill(0);
  for (const [bucket, count] of Object.entries(sparse)) {
    const i = Number(bucket);
    if (Number.isInteger(i) && i >= 0 && i <= bounds.length) counts[i] += Number(count);
  }
  return counts;
}

/**
 * The q-quantile (0 < q < 1) of a histogram; null when it is empty. In the +Inf bucket the answer is the largest
 * finite bound (as histogram_quantile answers).
 * @example
 * quantile([1, 2], [0, 10, 0], 0.5); // 1.5: the median rank falls in (1, 2]
 */
export function quantile(bounds: readonly number[], counts: readonly number[], q: number): number | null {
  const total = counts.reduce((a, b) => a + b, 0);
  if (total === 0) return null;
  const rank = q * total;
  let below = 0;
  for (let i = 0; i < counts.length; i++) {
    if (counts[i] > 0 && below + counts[i] >= rank) {
      if (i === bounds.length) return bounds[bounds.length - 1];
      const lower = i === 0 ? 0 : bounds[i - 1];
      return lower + (bounds[i] - lower) * ((rank - below) / counts[i]);
    }
    below += counts[i];
  }
  return bounds[bounds.length - 1];
}

/** Adds `b` into `a` (same length) and returns `a`. */
export function addCounts(a: number[], b: readonly number[]): number[] {
  for (let i = 0; i < a.length; i++) a[i] += b[i] ?? 0;
  return a;
}
