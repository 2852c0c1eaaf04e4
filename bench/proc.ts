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

/** Fields of /proc/<pid>/stat after the command name (field 3 = state is index 0). */
function statFields(pid: number): string[] {
  const stat = Deno.readTextFileSync(`/proc/${pid}/stat`);
  return stat.slice(stat.lastIndexOf(")") + 2).split(" ");
}

/** The parent process id of `pid`. */
export function parentPid(pid: number): number {
  return Number(statFields(pid)[1]);
}

/**
 * CPU time of a process tree rooted at `root` one level deep, in milliseconds: its own time, its live children's
 * and what its exited children used (cutime + cstime). Fits Postgres, whose backends and workers are children of
 * the postmaster.
 */
export function treeCpuMs(root: number): number {
  const f = statFields(root);
  let ticks = Number(f[11]) + Number(f[12]) + Number(f[13]) + Number(f[14]); // utime stime cutime cstime
  for (const entry of Deno.readDirSync("/proc")) {
    if (!/^\d+$/.test(entry.name)) continue;
    try {
      const c = statFields(Number(entry.name));
      if (Number(c[1]) === root) ticks += Number(c[11]) + Number(c[12]);
    } catch (err) {
      // Exited between the listing and the read (ENOENT or ESRCH): its time went to the root's cutime/cstime.
      if (!(err instanceof Deno.errors.NotFound) && !/No such process/.test(String(err))) throw err;
    }
  }
  return (ticks * 1000) / TICKS_PER_SECOND;
}
