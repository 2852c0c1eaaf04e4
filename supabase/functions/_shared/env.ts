/**
 * The functions' settings: every setting read once from the environment and validated with zod. A bad or missing
 * setting fails with one message that lists every problem (no silent defaults for required values: the original
 * system turned itself off when its configuration was invalid, origin-lessons.md §1.5).
 *
 * `SUPABASE_*` values are injected by the platform (supabase-platform.md §1.6); the rest are project secrets
 * (`supabase secrets set ...` on hosted, `.env` locally). `.env.example` lists exactly these keys.
 */
import { z } from "zod";
import { parseProviders, type ProviderConfig } from "./providers/config.ts";

const intFrom = (fallback: number, min: number, max: number) =>
  z.coerce.number().int().min(min).max(max).default(fallback);
const optionalString = z.string().min(1).optional();

export const settingsSchema = z.object({
  SUPABASE_URL: z.url(),
  SUPABASE_DB_URL: z.string().regex(/^postgres(ql)?:\/\//, "must be a postgres:// URL"),
  SUPABASE_ANON_KEY: z.string().min(1),
  SUPABASE_SERVICE_ROLE_KEY: z.string().min(1),
  /** The project's legacy JWT secret: tokens are verified again in code (defence in depth, §1.10). */
  JWT_SECRET: z.string().min(32, "must be at least 32 characters"),

  /**
   * The providers (CONTRACT.md §3): built in kimi and glm; more by name, each with `<NAME>_API_KEY`, `_BASE_URL`,
   * `_MODEL` and optionally `_FALLBACKS`, `_MAX_CONCURRENCY`, `_FILES` (parsed by providers/config.ts, which also
   * reads those of providers added here; the built-in ones are listed below for .env.example).
   */
  MESSAGE_BUS_PROVIDERS: z.string().default("kimi,glm"),
  MESSAGE_BUS_DEFAULT_PROVIDER: z.string().default("kimi"),
  KIMI_API_KEY: optionalString,
  KIMI_BASE_URL: optionalString,
  KIMI_MODEL: optionalString,
  KIMI_FALLBACKS: optionalString,
  KIMI_MAX_CONCURRENCY: optionalString,
  KIMI_FILES: optionalString,
  GLM_API_KEY: optionalString,
  GLM_BASE_URL: optionalString,
  GLM_MODEL: optionalString,
  GLM_FALLBACKS: optionalString,
  GLM_MAX_CONCURRENCY: optionalString,
  GLM_FILES: optionalString,

  /**
   * Per provider attempt, from the request to the last byte of the body; for a stream, to its first event (then
   * PROVIDER_STREAM_IDLE_MS and the message's deadline bound it).
   */
  PROVIDER_TIMEOUT_MS: intFrom(120_000, 1_000, 600_000),
  /** A stream that sends nothing for this long has stalled: it ends as `stream_incomplete` (CONTRACT.md §10). */
  PROVIDER_STREAM_IDLE_MS: intFrom(60_000, 100, 600_000),
  /** Retries of 429/408/5xx/timeouts/connection errors per route, with exponential backoff and full jitter. */
  PROVIDER_MAX_RETRIES: intFrom(2, 0, 10),
  PROVIDER_RETRY_BASE_MS: intFrom(250, 1, 60_000),
  /** A provider's Retry-After is honoured up to this; past it the route is given up (fallbacks take over). */
  PROVIDER_MAX_RETRY_AFTER_MS: intFrom(30_000, 0, 600_000),
  /**
   * A message's whole provider work (every attempt, retry and fallback) ends by this; a stream still running then
   * fails as `worker_time_limit` with what arrived stored. Under the platform's wall clock (400 s paid, 150 s free:
   * supabase-platform.md §1.7), so that the bus, not the platform, ends it.
   */
  MESSAGE_BUS_DEADLINE_MS: intFrom(390_000, 1_000, 3_600_000),
  /** Failed attempts in a row that open a route's circuit, and how long it stays open before one trial. */
  CIRCUIT_BREAKER_THRESHOLD: intFrom(5, 1, 1_000),
  CIRCUIT_BREAKER_TIMEOUT_SECS: intFrom(60, 1, 86_400),
  /** A concurrency slot held by a worker that died is freed after this. */
  PROVIDER_LEASE_SECS: intFrom(60, 5, 3_600),
  /** How long a call waits for a free concurrency slot before its route is skipped (429 provider_busy if none left). */
  PROVIDER_QUEUE_TIMEOUT_MS: intFrom(10_000, 0, 600_000),
  /**
   * Requests per minute per message owner (tool-invoke, replays, the OpenAI endpoint, MCP chat; idempotent repeats
   * count too); 0 = unlimited.
   */
  MESSAGE_BUS_USER_RPM: intFrom(0, 0, 1_000_000),
  /** Runs of an async message (the first included) before a message whose worker keeps dying is failed. */
  MESSAGE_BUS_MAX_ATTEMPTS: intFrom(3, 1, 20),
  /** With the database unreachable, a sync invoke still answers the payload inline (X-Bus-Degraded: unstored). */
  MESSAGE_BUS_INLINE_FALLBACK: z.enum(["true", "false"]).default("false").transform((v) => v === "true"),

  MESSAGE_BUS_MAX_PAYLOAD_MB: intFrom(100, 1, 1024),
  /** Largest uploaded file (413 past it). */
  MESSAGE_BUS_MAX_FILE_MB: intFrom(100, 1, 1024),
  /** Time to live of an uploaded file; a file used by a message is kept until that message expires too. */
  MESSAGE_BUS_FILE_TTL_SECONDS: intFrom(172_800, 60, 31_536_000),
  MESSAGE_BUS_DEFAULT_TTL_SECONDS: intFrom(172_800, 60, 31_536_000),
  MESSAGE_BUS_MIN_TTL_SECONDS: intFrom(60, 1, 31_536_000),
  MESSAGE_BUS_MAX_TTL_SECONDS: intFrom(2_592_000, 60, 31_536_000),
  DB_POOL_SIZE: intFrom(10, 1, 100),
  /** How long a unit of database work waits for a free connection before answering 503 database_busy. */
  DB_ACQUIRE_TIMEOUT_MS: intFrom(5_000, 100, 60_000),

  /** Deepest JSON nesting accepted in a request body. */
  MESSAGE_BUS_MAX_JSON_DEPTH: intFrom(64, 8, 1_000),
  /** Largest `metadata` of a message, as JSON text. */
  MESSAGE_BUS_MAX_METADATA_BYTES: intFrom(16_384, 0, 1_048_576),
  /** Request bodies one instance holds at once (excess: 503 with Retry-After); at least MESSAGE_BUS_MAX_PAYLOAD_MB. */
  MESSAGE_BUS_BODY_BUDGET_MB: intFrom(128, 1, 4_096),
  /** A pending message's lease: its worker renews it every third of this; the reaper acts once it has run out. */
  MESSAGE_BUS_LEASE_SECS: intFrom(60, 5, 3_600),

  /** Watcher content checks read payloads up to this size whole; above it, head and tail only (the checksum always streams every byte). */
  WATCHER_CONTENT_CAP_MB: intFrom(8, 1, 256),
  /** Payloads larger than this get an `unusual_size` warning. */
  WATCHER_SIZE_WARNING_MB: intFrom(32, 1, 1024),
  /** Optional model review (a second opinion): off unless the sample rate is above 0 and the provider has a key. */
  WATCHER_REVIEW_PROVIDER: z.string().default("glm"),
  WATCHER_REVIEW_MODEL: optionalString,
  WATCHER_REVIEW_SAMPLE_RATE: z.coerce.number().min(0).max(1).default(0),
  /** Hard budget, counted in the database so that it holds across isolates. */
  WATCHER_REVIEWS_PER_HOUR: intFrom(20, 0, 10_000),
  WATCHER_REVIEW_MAX_INPUT_CHARS: intFrom(8_000, 200, 200_000),
  WATCHER_REVIEW_MAX_OUTPUT_TOKENS: intFrom(400, 16, 8_192),
  WATCHER_REVIEW_TIMEOUT_MS: intFrom(30_000, 1_000, 120_000),

  /** Metadata rows are purged this many days after their payload expired (0: at the next cleanup). */
  MESSAGE_BUS_RETENTION_DAYS: intFrom(30, 0, 3_650),
  /** Pending messages recorded before leases existed are marked failed once older than this. */
  MESSAGE_BUS_REAP_PENDING_MINUTES: intFrom(15, 1, 1_440),
  CLEANUP_BATCH_SIZE: intFrom(5_000, 10, 100_000),
  /** Wall-clock budget of one cleanup run; one round (one transaction) takes at most CLEANUP_ROUND_MS of it. */
  CLEANUP_BUDGET_MS: intFrom(25_000, 1_000, 300_000),
  CLEANUP_ROUND_MS: intFrom(500, 50, 60_000),
  /** Metadata rows marked expired per statement; a round marks batches until its CLEANUP_ROUND_MS is spent. */
  CLEANUP_MARK_BATCH_SIZE: intFrom(5_000, 10, 100_000),
  /** Pause between rounds once the payloads are gone and only metadata rows are left to mark (pacing for writers). */
  CLEANUP_PAUSE_MS: intFrom(250, 0, 10_000),
  CLEANUP_HTTP_RESPONSES_KEEP_MINUTES: intFrom(60, 1, 10_080),
  CLEANUP_CRON_HISTORY_DAYS: intFrom(7, 1, 365),

  /**
   * Browser origins (hostnames, comma-separated) the MCP endpoint accepts besides SUPABASE_URL's own; requests
   * without `Origin` (every non-browser MCP client) always pass (DNS-rebinding defence, MCP Streamable HTTP).
   */
  MCP_ALLOWED_ORIGINS: z.string().default("localhost,127.0.0.1,[::1]").transform((v) =>
    v.split(",").map((h) => h.trim().toLowerCase()).filter((h) => h.length > 0)
  ),
  /** Largest MCP request body (a JSON-RPC message: a chat prompt travels in it). */
  MCP_MAX_BODY_MB: intFrom(4, 1, 100),
  /** Largest payload `resources/read` returns whole; larger ones are read with `fetch_message` pages. */
  MCP_READ_MAX_MB: intFrom(16, 1, 256),
  /** Where alert firings and resolutions are POSTed (through pg_net); unset: Realtime topic `ops` only. */
  ALERT_WEBHOOK_URL: z.url({ protocol: /^https?$/ }).optional(),
  /** A model-written summary and suggested fix for each new error group (the watcher's reviewer; off without its key). */
  OPS_ERROR_INVESTIGATION: z.enum(["on", "off"]).default("off"),
  /** Hard hourly budget of investigations, counted in the database (bus.take_review_slot). */
  OPS_INVESTIGATIONS_PER_HOUR: intFrom(10, 0, 1_000),
}).superRefine((s, ctx) => {
  if (s.MESSAGE_BUS_BODY_BUDGET_MB < s.MESSAGE_BUS_MAX_PAYLOAD_MB) {
    ctx.addIssue({
      code: "custom",
      path: ["MESSAGE_BUS_BODY_BUDGET_MB"],
      message: "must be at least MESSAGE_BUS_MAX_PAYLOAD_MB, or a body of the largest allowed size is never accepted",
    });
  }
  // A renewal that waits the whole acquire timeout must still land before the lease runs out, or the reaper could
  // fail a call that is alive.
  if (s.MESSAGE_BUS_LEASE_SECS * 1000 < 3 * s.DB_ACQUIRE_TIMEOUT_MS) {
    ctx.addIssue({
      code: "custom",
      path: ["MESSAGE_BUS_LEASE_SECS"],
      message: "must be at least 3 × DB_ACQUIRE_TIMEOUT_MS: a live worker renews its lease every third of it",
    });
  }
  if (s.PROVIDER_TIMEOUT_MS > s.MESSAGE_BUS_DEADLINE_MS) {
    ctx.addIssue({
      code: "custom",
      path: ["PROVIDER_TIMEOUT_MS"],
      message: "must not exceed MESSAGE_BUS_DEADLINE_MS (an attempt ends by the message's deadline)",
    });
  }
  if (s.MESSAGE_BUS_MIN_TTL_SECONDS > s.MESSAGE_BUS_MAX_TTL_SECONDS) {
    ctx.addIssue({
      code: "custom",
      path: ["MESSAGE_BUS_MIN_TTL_SECONDS"],
      message: "must not exceed MESSAGE_BUS_MAX_TTL_SECONDS",
    });
  }
  const ttl = s.MESSAGE_BUS_DEFAULT_TTL_SECONDS;
  if (ttl < s.MESSAGE_BUS_MIN_TTL_SECONDS || ttl > s.MESSAGE_BUS_MAX_TTL_SECONDS) {
    ctx.addIssue({
      code: "custom",
      path: ["MESSAGE_BUS_DEFAULT_TTL_SECONDS"],
      message: "must lie within the TTL bounds",
    });
  }
}, {
  // Also when other settings are bad (zod skips refinements after any issue), so that every problem is listed;
  // only the TTL settings themselves must have parsed.
  when: (payload) =>
    !payload.issues.some((i) =>
      /_TTL_SECONDS|MESSAGE_BUS_BODY_BUDGET_MB|MESSAGE_BUS_MAX_PAYLOAD_MB|MESSAGE_BUS_LEASE_SECS|DB_ACQUIRE_TIMEOUT_MS|PROVIDER_TIMEOUT_MS|MESSAGE_BUS_DEADLINE_MS/
        .test(String(i.path?.[0]))
    ),
});

export type Settings = z.infer<typeof settingsSchema> & {
  /** The configured providers by name (providers/config.ts). */
  providers: ReadonlyMap<string, ProviderConfig>;
};

/** Thrown when settings are invalid; `problems` lists every one. */
export class SettingsError extends Error {
  constructor(readonly problems: string[]) {
    super(`Invalid settings:\n${problems.map((p) => `  - ${p}`).join("\n")}`);
    this.name = "SettingsError";
  }
}

/**
 * Validates `env` (blank values count as unset).
 * @throws SettingsError listing every problem.
 * @example
 * const s = parseSettings({ ...Deno.env.toObject(), MESSAGE_BUS_MAX_PAYLOAD_MB: "10" });
 */
export function parseSettings(env: Record<string, string | undefined>): Settings {
  const cleaned = Object.fromEntries(Object.entries(env).map(([k, v]) => [k, v === "" ? undefined : v]));
  const parsed = settingsSchema.safeParse(cleaned);
  const { providers, problems } = parseProviders(cleaned);
  const defaultProvider = cleaned.MESSAGE_BUS_DEFAULT_PROVIDER ?? "kimi";
  if (!providers.has(defaultProvider)) {
    problems.push(`MESSAGE_BUS_DEFAULT_PROVIDER: ${defaultProvider} is not a configured provider`);
  }
  const reviewer = cleaned.WATCHER_REVIEW_PROVIDER ?? "glm";
  if (reviewer !== "none" && !providers.has(reviewer)) {
    problems.push(`WATCHER_REVIEW_PROVIDER: ${reviewer} is not a configured provider (or none)`);
  }
  const all = [
    ...(parsed.success ? [] : parsed.error.issues.map((i) => `${i.path.join(".") || "(settings)"}: ${i.message}`)),
    ...problems,
  ];
  if (all.length > 0) throw new SettingsError(all);
  return { ...parsed.data!, providers };
}

let cached: Settings | undefined;

/** The process settings, parsed on first use from `Deno.env`. */
export function settings(): Settings {
  cached ??= parseSettings(Deno.env.toObject());
  return cached;
}
