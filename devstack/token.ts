/**
 * `npm run -s token -- [<user uuid>] [--expires-in <seconds>]`: prints a user access token for the local stack (an
 * HS256 JWT with role "authenticated", sub, aud, iat and exp, CONTRACT.md §2) signed with JWT_SECRET from the
 * environment or `.env`. Only the token goes to stdout, so `TOKEN=$(npm run -s token -- <uuid>)` works; without a
 * uuid a random user is made and named on stderr. Exit codes: 0, 2 bad usage, 1 bad settings.
 *
 * @module
 */
import { parseArgs } from "node:util";
import { resolve } from "node:path";
import { mintUserToken } from "./keys.ts";
import { loadStackSettings, mergedEnv } from "./settings.ts";

/** The text of `--help`. */
export const TOKEN_USAGE = `Usage: npm run -s token -- [<user uuid>] [--expires-in <seconds>]

Prints a user access token (HS256 JWT: role "authenticated", sub = the uuid, aud, iat, exp) signed with
JWT_SECRET from the environment or .env. Without a uuid, a random user is made (its id goes to stderr).
  --expires-in <seconds>   lifetime, default 3600
`;

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const MAX_LIFETIME = 10 * 365 * 24 * 3600;

/** Runs the command with `args` against the settings in `env`; returns the exit code. */
export async function tokenCommand(
  args: string[],
  env: Record<string, string | undefined>,
  io: { out: (text: string) => void; err: (text: string) => void },
): Promise<number> {
  const usage = (problem: string) => {
    io.err(`error: ${problem}\n\n${TOKEN_USAGE}`);
    return 2;
  };
  let parsed;
  try {
    parsed = parseArgs({
      args,
      options: { "expires-in": { type: "string" }, help: { type: "boolean", short: "h" } },
      allowPositionals: true,
      strict: true,
    });
  } catch (err) {
    return usage(err instanceof Error ? err.message : String(err));
  }
  if (parsed.values.help) {
    io.out(TOKEN_USAGE);
    return 0;
  }
  if (parsed.positionals.length > 1) return usage(`expected at most one user uuid, got ${parsed.positionals.length}`);
  let sub = parsed.positionals[0];
  if (sub !== undefined && !UUID.test(sub)) return usage(`${JSON.stringify(sub)} is not a uuid`);
  const rawLifetime = parsed.values["expires-in"] ?? "3600";
  const lifetime = /^\d+$/.test(rawLifetime) ? Number(rawLifetime) : NaN;
  if (!(lifetime >= 1 && lifetime <= MAX_LIFETIME)) {
    return usage(`--expires-in must be a whole number of seconds from 1 to ${MAX_LIFETIME}, got ${rawLifetime}`);
  }
  let jwtSecret: string;
  try {
    jwtSecret = loadStackSettings(env).JWT_SECRET;
  } catch (err) {
    io.err(`${err instanceof Error ? err.message : err}\n`);
    return 1;
  }
  if (sub === undefined) {
    sub = crypto.randomUUID();
    io.err(`no user uuid given: made a token for a new random user ${sub}\n`);
  }
  io.out(`${await mintUserToken(sub, jwtSecret, { expiresInSeconds: lifetime })}\n`);
  return 0;
}

if (import.meta.main) {
  const root = resolve(new URL("..", import.meta.url).pathname);
  const writeAll = (to: { writeSync(p: Uint8Array): number }) => (text: string) => {
    const bytes = new TextEncoder().encode(text);
    for (let at = 0; at < bytes.length;) at += to.writeSync(bytes.subarray(at));
  };
  const code = await tokenCommand(Deno.args, mergedEnv(resolve(root, ".env")), {
    out: writeAll(Deno.stdout),
    err: writeAll(Deno.stderr),
  });
  Deno.exit(code);
}
