import assert from "node:assert/strict";
import { parseSettings, SettingsError } from "./env.ts";

const VALID = {
  SUPABASE_URL: "http://127.0.0.1:54321",
  SUPABASE_DB_URL: "postgresql://postgres:postgres@127.0.0.1:54322/postgres",
  SUPABASE_ANON_KEY: "anon-key",
  SUPABASE_SERVICE_ROLE_KEY: "service-role-key",
  JWT_SECRET: "super-secret-jwt-token-with-at-least-32-characters-long",
};

/** The SettingsError of `env` (fails when parsing succeeds or throws something else). */
function problemsOf(env: Record<string, string | undefined>): SettingsError {
  try {
    parseSettings(env);
  } catch (err) {
    assert.ok(err instanceof SettingsError, `a SettingsError, got ${err}`);
    return err;
  }
  assert.fail("parseSettings should have refused these settings");
}

/** Asserts that exactly the settings `names` are reported, each once, and that the message lists them all. */
function assertProblems(err: SettingsError, names: string[]) {
  const reported = err.problems.map((p) => p.split(":")[0]).sort();
  assert.deepEqual(reported, [...names].sort(), `problems: ${err.problems.join(" | ")}`);
  for (const p of err.problems) assert.ok(err.message.includes(p), `the message lists "${p}"`);
  assert.equal(err.name, "SettingsError");
  assert.ok(err instanceof Error);
}

Deno.test("parseSettings: valid settings, with defaults for everything optional", () => {
  const s = parseSettings({ ...VALID, PATH: "/usr/bin", UNRELATED: "ignored" });
  assert.equal(s.SUPABASE_URL, VALID.SUPABASE_URL);
  assert.equal(s.MESSAGE_BUS_DEFAULT_PROVIDER, "kimi");
  assert.deepEqual([...s.providers.keys()], ["kimi", "glm"], "kimi and glm are built in");
  assert.equal(s.providers.get("kimi")!.baseURL, "https://api.moonshot.ai/v1");
  assert.equal(s.providers.get("glm")!.baseURL, "https://api.z.ai/api/paas/v4");
  assert.equal(s.providers.get("kimi")!.apiKey, undefined);
  assert.equal(s.providers.get("kimi")!.files, "extract");
  assert.equal(s.providers.get("glm")!.files, "inline");
  assert.equal(s.MESSAGE_BUS_MAX_PAYLOAD_MB, 100);
  assert.equal(s.MESSAGE_BUS_DEFAULT_TTL_SECONDS, 172_800);
  assert.equal(s.PROVIDER_MAX_RETRIES, 2);
  assert.ok(!("PATH" in s), "unrelated variables are not carried over");
});

Deno.test("parseSettings: numbers are read from strings", () => {
  const s = parseSettings({ ...VALID, MESSAGE_BUS_MAX_PAYLOAD_MB: "25", PROVIDER_MAX_RETRIES: "0", DB_POOL_SIZE: "3" });
  assert.equal(s.MESSAGE_BUS_MAX_PAYLOAD_MB, 25);
  assert.equal(s.PROVIDER_MAX_RETRIES, 0);
  assert.equal(s.DB_POOL_SIZE, 3);
});

Deno.test("parseSettings: nothing set reports every required setting at once", () => {
  assertProblems(problemsOf({}), [
    "SUPABASE_URL",
    "SUPABASE_DB_URL",
    "SUPABASE_ANON_KEY",
    "SUPABASE_SERVICE_ROLE_KEY",
    "JWT_SECRET",
  ]);
});

Deno.test("parseSettings: blank values count as unset (required ones are reported, optional ones default)", () => {
  assertProblems(problemsOf({ ...VALID, SUPABASE_ANON_KEY: "", JWT_SECRET: "" }), ["SUPABASE_ANON_KEY", "JWT_SECRET"]);
  const s = parseSettings({ ...VALID, KIMI_API_KEY: "", MESSAGE_BUS_MAX_PAYLOAD_MB: "", KIMI_MODEL: "" });
  assert.equal(s.providers.get("kimi")!.apiKey, undefined, "a blank key is no key, not an empty string");
  assert.equal(s.MESSAGE_BUS_MAX_PAYLOAD_MB, 100);
  assert.equal(s.providers.get("kimi")!.defaultModel, "kimi-k2-0905-preview");
});

Deno.test("parseSettings: every bad value is reported in one error, none silently replaced by a default", () => {
  const err = problemsOf({
    SUPABASE_URL: "not a url",
    SUPABASE_DB_URL: "mysql://root@localhost/db",
    SUPABASE_ANON_KEY: "anon",
    SUPABASE_SERVICE_ROLE_KEY: "service",
    JWT_SECRET: "too-short",
    MESSAGE_BUS_DEFAULT_PROVIDER: "openai",
    KIMI_BASE_URL: "moonshot",
    MESSAGE_BUS_MAX_PAYLOAD_MB: "lots",
    PROVIDER_TIMEOUT_MS: "10",
    PROVIDER_MAX_RETRIES: "1.5",
    DB_POOL_SIZE: "0",
  });
  assertProblems(err, [
    "SUPABASE_URL",
    "SUPABASE_DB_URL",
    "JWT_SECRET",
    "MESSAGE_BUS_DEFAULT_PROVIDER",
    "KIMI_BASE_URL",
    "MESSAGE_BUS_MAX_PAYLOAD_MB",
    "PROVIDER_TIMEOUT_MS",
    "PROVIDER_MAX_RETRIES",
    "DB_POOL_SIZE",
  ]);
  assert.ok(err.problems.some((p) => p === "JWT_SECRET: must be at least 32 characters"));
  assert.ok(err.problems.some((p) => p === "SUPABASE_DB_URL: must be a postgres:// URL"));
});

Deno.test("parseSettings: limits outside their range are refused", () => {
  assertProblems(problemsOf({ ...VALID, MESSAGE_BUS_MAX_PAYLOAD_MB: "0" }), ["MESSAGE_BUS_MAX_PAYLOAD_MB"]);
  assertProblems(problemsOf({ ...VALID, MESSAGE_BUS_MAX_PAYLOAD_MB: "1025" }), ["MESSAGE_BUS_MAX_PAYLOAD_MB"]);
  assertProblems(problemsOf({ ...VALID, PROVIDER_MAX_RETRIES: "11" }), ["PROVIDER_MAX_RETRIES"]);
});

Deno.test("parseSettings: inconsistent TTL bounds are reported, each problem named", () => {
  assertProblems(problemsOf({ ...VALID, MESSAGE_BUS_MIN_TTL_SECONDS: "5000", MESSAGE_BUS_MAX_TTL_SECONDS: "100" }), [
    "MESSAGE_BUS_MIN_TTL_SECONDS",
    "MESSAGE_BUS_DEFAULT_TTL_SECONDS",
  ]);
  assertProblems(problemsOf({ ...VALID, MESSAGE_BUS_DEFAULT_TTL_SECONDS: "60", MESSAGE_BUS_MIN_TTL_SECONDS: "120" }), [
    "MESSAGE_BUS_DEFAULT_TTL_SECONDS",
  ]);
});

Deno.test("parseSettings: TTL bound problems are listed together with every other problem", () => {
  assertProblems(
    problemsOf({
      ...VALID,
      JWT_SECRET: "short",
      MESSAGE_BUS_MIN_TTL_SECONDS: "5000",
      MESSAGE_BUS_MAX_TTL_SECONDS: "100",
    }),
    ["JWT_SECRET", "MESSAGE_BUS_MIN_TTL_SECONDS", "MESSAGE_BUS_DEFAULT_TTL_SECONDS"],
  );
  // A TTL setting that is itself invalid is reported as such, without follow-on bound problems.
  assertProblems(problemsOf({ ...VALID, MESSAGE_BUS_MIN_TTL_SECONDS: "soon" }), ["MESSAGE_BUS_MIN_TTL_SECONDS"]);
});

Deno.test("parseSettings: providers by settings, with fallbacks, concurrency and files (CONTRACT.md §3)", () => {
  const s = parseSettings({
    ...VALID,
    MESSAGE_BUS_PROVIDERS: "kimi,glm,my-llm",
    MY_LLM_API_KEY: "k",
    MY_LLM_BASE_URL: "https://llm.example/v1",
    MY_LLM_MODEL: "big-1",
    MY_LLM_MAX_CONCURRENCY: "4",
    KIMI_FALLBACKS: "glm, my-llm/big-2",
    MESSAGE_BUS_DEFAULT_PROVIDER: "my-llm",
  });
  const mine = s.providers.get("my-llm")!;
  assert.deepEqual(
    { base: mine.baseURL, model: mine.defaultModel, key: mine.apiKey, max: mine.maxConcurrency, files: mine.files },
    { base: "https://llm.example/v1", model: "big-1", key: "k", max: 4, files: "inline" },
  );
  assert.deepEqual(s.providers.get("kimi")!.fallbacks, [{ provider: "glm" }, { provider: "my-llm", model: "big-2" }]);
  assert.equal(s.MESSAGE_BUS_DEFAULT_PROVIDER, "my-llm");
});

Deno.test("parseSettings: an unknown fallback and every other provider problem fail at boot, all listed", () => {
  const err = problemsOf({
    ...VALID,
    MESSAGE_BUS_PROVIDERS: "kimi,glm,Bad_Name,extra",
    KIMI_FALLBACKS: "glm,nowhere",
    GLM_MAX_CONCURRENCY: "0",
    GLM_FILES: "attach",
    EXTRA_BASE_URL: "ftp://x",
    MESSAGE_BUS_DEFAULT_PROVIDER: "openai",
  });
  assertProblems(err, [
    "MESSAGE_BUS_PROVIDERS",
    "KIMI_FALLBACKS",
    "GLM_MAX_CONCURRENCY",
    "GLM_FILES",
    "EXTRA_BASE_URL",
    "EXTRA_MODEL",
    "MESSAGE_BUS_DEFAULT_PROVIDER",
  ]);
  assert.ok(err.problems.some((p) => p.includes("nowhere is not a configured provider")));
});
