import assert from "node:assert/strict";
import { parseSettings } from "../env.ts";
import { filesStrategy } from "./strategy.ts";

const base = {
  SUPABASE_URL: "http://127.0.0.1:1",
  SUPABASE_DB_URL: "postgres://x@127.0.0.1:1/x",
  SUPABASE_ANON_KEY: "a",
  SUPABASE_SERVICE_ROLE_KEY: "s",
  JWT_SECRET: "x".repeat(32),
};

Deno.test("filesStrategy(): extract for kimi and inline for others by default; <NAME>_FILES wins", () => {
  const s = parseSettings(base);
  assert.equal(filesStrategy("kimi", s), "extract");
  assert.equal(filesStrategy("glm", s), "inline");
  assert.equal(filesStrategy("my-provider", s), "inline");
  const set = parseSettings({ ...base, KIMI_FILES: "inline", GLM_FILES: "extract" });
  assert.equal(filesStrategy("kimi", set), "inline");
  assert.equal(filesStrategy("glm", set), "extract");
  assert.throws(() => parseSettings({ ...base, GLM_FILES: "upload" }), /GLM_FILES/);
});
