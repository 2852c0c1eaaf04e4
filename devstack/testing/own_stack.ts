/**
 * A test on a stack of its own (for faults that would disturb the shared test stack: killing Postgres, terminating
 * connections): the stack, a database client on it and a user token; the stack's data and log are removed when the
 * test passed and kept (its path printed) when it failed.
 */
import postgres from "postgres";
import { mintUserToken } from "../keys.ts";
import { spawnStack, type StackProcess } from "./stack_process.ts";

/** Runs `fn` on a new stack started with `env` from checkout `root`; `name` labels the database client. */
export async function withOwnStack(
  opts: { root: string; env: Record<string, string>; log: (m: string) => void; name: string; maxConnections?: number },
  fn: (stack: StackProcess, sql: postgres.Sql, token: string) => Promise<void>,
): Promise<void> {
  const stack = await spawnStack({ root: opts.root, env: opts.env, log: opts.log });
  const sql = postgres(stack.dbUrl, {
    prepare: false,
    max: opts.maxConnections ?? 2,
    onnotice: () => {},
    connection: { application_name: opts.name },
  });
  let passed = false;
  try {
    await fn(stack, sql, await mintUserToken(crypto.randomUUID(), stack.jwtSecret, { expiresInSeconds: 3600 }));
    passed = true;
  } finally {
    await sql.end();
    const stopped = await stack.stop();
    if (stopped.clean && passed) await stack.cleanup();
    else console.log(`stack log kept: ${stack.logPath}`);
  }
}
