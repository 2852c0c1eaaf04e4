/** Process measurements from Linux /proc: CPU time and resident memory of another process. */
const TICKS_PER_SECOND = 100; // USER_HZ on Linux

/** User + system CPU time of `pid`, in milliseconds. */
export function cpuMs(pid: number): number {
  const stat = Deno.readTextFileSync(`/proc/${pid}/stat`);
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return ((Number(fields[11]) + Number(fields[12])) * 1000) / TICKS_PER_SECOND; // utime, stime
}

/** Resident set size of `pid`, in bytes. */
export function rssBytes(pid: number): number {
  const status = Deno.readTextFileSync(`/proc/${pid}/status`);
  const kb = /VmRSS:\s+(\d+) kB/.exec(status);
  if (!kb) throw new Error(`no VmRSS for ${pid}`);
  return Number(kb[1]) * 1024;
}

/** Runs `fn` while sampling `pid`; returns its CPU time and peak RSS growth over the RSS before. */
export async function measure<T>(
  pid: number,
  fn: () => Promise<T>,
): Promise<{ result: T; cpuMs: number; peakGrowthBytes: number }> {
  const rss0 = rssBytes(pid);
  const cpu0 = cpuMs(pid);
  let peak = rss0;
  const timer = setInterval(() => (peak = Math.max(peak, rssBytes(pid))), 10);
  try {
    const result = await fn();
    peak = Math.max(peak, rssBytes(pid));
    return { result, cpuMs: cpuMs(pid) - cpu0, peakGrowthBytes: peak - rss0 };
  } finally {
    clearInterval(timer);
  }
}
