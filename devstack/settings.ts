/**
 * Settings of the local stack (not of the functions: those live in supabase/functions/_shared/env.ts).
 * Read once from the environment and `.env` (the environment wins, CONTRACT.md §2), validated with zod; a bad
 * setting fails with one message listing every problem.
 */
import { z } from "zod";
import { readDotEnv } from "./dotenv.ts";

/** The Supabase CLI's local default JWT secret (supabase-platform.md §1.6). */
export const DEFAULT_JWT_SECRET = "super-secret-jwt-token-with-at-least-32-characters-long";

const port = (fallback: number) => z.coerce.number().int().min(1).max(65535).default(fallback);

export const stackSettingsSchema = z.object({
  API_PORT: port(54321),
  DB_PORT: port(54322),
  PROVIDER_STANDIN_PORT: port(54329),
  JWT_SECRET: z.string().min(32, "JWT_SECRET must be at least 32 characters").default(DEFAULT_JWT_SECRET),
  DEVSTACK_DATA_DIR: z.string().min(1).default(".devstack/data"),
  /** "1" trades durability for speed (fsync off): for throwaway test clusters only. */
  DEVSTACK_PG_FAST: z.enum(["0", "1"]).default("0"),
  /** "1" loads pg_stat_statements (statement counts and times, for profiling: bench/invoke_bench.ts). */
  DEVSTACK_PG_STATEMENTS: z.enum(["0", "1"]).default("0"),
  /** When Postgres exits without being asked to, the stack starts it again after this pause (and keeps serving). */
  DEVSTACK_PG_RESTART_DELAY_MS: z.coerce.number().int().min(0).max(600_000).default(1_000),
  /** The gateway's request idle timeout: no response started within it → 504 (hosted: 150 s, supabase-platform.md
   * §1.7). Tests shorten it to exercise long generations against it in seconds. */
  DEVSTACK_GATEWAY_TIMEOUT_MS: z.coerce.number().int().min(100).max(3_600_000).default(150_000),
  PG_BIN: z.string().min(1).default("/usr/lib/postgresql/15/bin"),
  KIMI_API_KEY: z.string().optional(),
  GLM_API_KEY: z.string().optional(),
});

export type StackSettings = z.infer<typeof stackSettingsSchema>;

/**
 * Resolves the stack settings from `env` (defaults to the process environment merged over `.env`).
 * @throws Error listing every invalid setting.
 */
export function loadStackSettings(env: Record<string, string | undefined> = mergedEnv()): StackSettings {
  const parsed = stackSettingsSchema.safeParse(blankToUndefined(env));
  if (!parsed.success) {
    const problems = parsed.error.issues.map((i) => `  ${i.path.join(".")}: ${i.message}`).join("\n");
    throw new Error(`Invalid local stack settings:\n${problems}`);
  }
  return parsed.data;
}

/** The process environment over `.env` in the working directory (CONTRACT.md §2: the environment wins). */
export function mergedEnv(dotEnvPath = ".env"): Record<string, string> {
  return { ...readDotEnv(dotEnvPath), ...Deno.env.toObject() };
}

function blankToUndefined(env: Record<string, string | undefined>): Record<string, string | undefined> {
  return Object.fromEntries(Object.entries(env).map(([k, v]) => [k, v === "" ? undefined : v]));
}
