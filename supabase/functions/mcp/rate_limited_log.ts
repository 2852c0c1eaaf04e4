/**
 * A logger for the MCP SDK's reports (`onerror`: rejected requests, closed streams) that writes at most `max` lines
 * per `windowMs` and then says how many it left out: every malformed request is reported, and a client sending junk
 * must not flood the function's logs.
 */
export function rateLimitedLog(
  prefix: string,
  max: number,
  windowMs: number,
  write: (line: string) => void = console.warn,
  now: () => number = Date.now,
): (err: Error) => void {
  let windowStart = -Infinity, written = 0, skipped = 0;
  return (err) => {
    const t = now();
    if (t - windowStart >= windowMs) {
      if (skipped > 0) write(`${prefix} ${skipped} more report(s) left out in the last ${windowMs / 1000} s`);
      windowStart = t;
      written = 0;
      skipped = 0;
    }
    if (written < max) {
      written++;
      write(`${prefix} ${err.message}`);
    } else skipped++;
  };
}
