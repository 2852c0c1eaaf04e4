/**
 * The optional investigation of new error groups (docs/ops.md): one model-written summary per group from the
 * watcher's reviewer (here GLM pointed at the provider stand-in), under the hourly budget counted in the database;
 * off without a key or with the setting off.
 */
import assert from "node:assert/strict";
import { adminSql, testStack } from "../devstack/testing/env.ts";
import { parseSettings } from "../supabase/functions/_shared/env.ts";
import { investigateNewGroups } from "../supabase/functions/ops/investigate.ts";
import { beginMessage, failMessage, ops } from "./ops_helpers.ts";

const sql = adminSql();

/** Settings as the function would parse them, with the reviewer (GLM) pointed at the stand-in. */
function reviewerSettings(extra: Record<string, string | undefined> = {}) {
  return parseSettings({
    ...Deno.env.toObject(),
    OPS_ERROR_INVESTIGATION: "on",
    WATCHER_REVIEW_PROVIDER: "glm",
    GLM_API_KEY: "local-standin-key",
    GLM_BASE_URL: `${testStack().standinUrl}/v1`,
    WATCHER_REVIEW_MODEL: `ops-investigation-${crypto.randomUUID().slice(0, 8)}`,
    OPS_INVESTIGATIONS_PER_HOUR: "10",
    ...extra,
  });
}

async function newGroup(): Promise<string> {
  const code = `ops_investigate_${crypto.randomUUID().slice(0, 8)}`;
  await failMessage(sql, await beginMessage(sql, { provider: "glm", model: "m" }), { code, message: "boom 42" });
  const res = await ops("/errors?status=all&limit=1000");
  return res.json.groups.find((g: { code: string }) => g.code === code).fingerprint;
}

const investigation = async (fingerprint: string) =>
  (await sql`select investigation from bus.error_groups where fingerprint = ${fingerprint}`)[0].investigation;

Deno.test("a new error group gets one investigation from the reviewer, counted in the budget", async () => {
  const s = reviewerSettings();
  const fingerprint = await newGroup();
  assert.ok((await investigateNewGroups(s, { sql })) >= 1);
  const first = await investigation(fingerprint);
  assert.equal(first.status, "done", JSON.stringify(first));
  assert.equal(first.provider, "glm");
  assert.equal(first.model, s.WATCHER_REVIEW_MODEL);
  assert.ok(typeof first.summary === "string" && first.summary.length > 0);
  const [{ used }] = await sql`select coalesce(sum(used), 0)::int as used from bus.review_budget
                                where reviewer = ${`ops:glm:${s.WATCHER_REVIEW_MODEL}`}`;
  assert.ok(used >= 1 && used <= 3, `slots used: ${used}`);
  // Once: a second run does not investigate it again.
  await investigateNewGroups(s, { sql });
  assert.deepEqual(await investigation(fingerprint), first);
});

Deno.test("no investigation without a key, with the setting off, or with the hour's budget spent", async () => {
  const fingerprint = await newGroup();
  assert.equal(await investigateNewGroups(reviewerSettings({ GLM_API_KEY: undefined }), { sql }), 0);
  assert.equal(await investigateNewGroups(reviewerSettings({ OPS_ERROR_INVESTIGATION: "off" }), { sql }), 0);
  assert.equal(await investigateNewGroups(reviewerSettings({ OPS_INVESTIGATIONS_PER_HOUR: "0" }), { sql }), 0);
  assert.equal(await investigation(fingerprint), null);
});

Deno.test("ops investigation tests: close the database client", async () => {
  await sql.end({ timeout: 5 });
});
