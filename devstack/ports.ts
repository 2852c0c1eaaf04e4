/**
 * Checks, before anything is started, that the ports the stack will listen on are free on 127.0.0.1, so a second
 * `npm start` (or a Postgres already on 54322) fails at once with the setting to change instead of half-starting.
 */

/** A port the stack will listen on, and the setting that chose it. */
export interface PortUse {
  setting: string;
  port: number;
}

const LIKELY_OWNER: Record<string, string> = {
  API_PORT: "another stack?",
  DB_PORT: "another stack or Postgres?",
  PROVIDER_STANDIN_PORT: "another stack?",
};

/**
 * Throws one error naming every setting whose port is taken (or shared with another setting).
 * @throws Error e.g. "DB_PORT 54322 is in use (another stack or Postgres?); set DB_PORT to a free port".
 * @example
 * ```ts
 * assertPortsFree([{ setting: "API_PORT", port: 54321 }, { setting: "DB_PORT", port: 54322 }]);
 * ```
 */
export function assertPortsFree(uses: PortUse[]): void {
  const problems: string[] = [];
  const seen = new Map<number, string>();
  for (const { setting, port } of uses) {
    const other = seen.get(port);
    if (other) {
      problems.push(`${other} and ${setting} are both ${port}; set ${setting} to another port`);
      continue;
    }
    seen.set(port, setting);
    const busy = portProblem(port);
    if (busy) problems.push(`${setting} ${port} ${busy(setting)}`);
  }
  if (problems.length) throw new Error(problems.join("\n"));
}

/** Why `port` cannot be listened on (a message builder), or undefined when it is free. */
function portProblem(port: number): ((setting: string) => string) | undefined {
  let listener: Deno.Listener;
  try {
    listener = Deno.listen({ hostname: "127.0.0.1", port });
  } catch (err) {
    if (err instanceof Deno.errors.AddrInUse) {
      return (s) => `is in use (${LIKELY_OWNER[s] ?? "another program?"}); set ${s} to a free port`;
    }
    if (err instanceof Deno.errors.PermissionDenied) {
      return (s) => `cannot be listened on (permission denied: ports below 1024 need root); set ${s} to another port`;
    }
    throw err;
  }
  listener.close();
  return undefined;
}
