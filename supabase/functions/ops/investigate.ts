/**
 * The optional investigation of new error groups: one model-written summary and suggested fix per group, from the
 * watcher's reviewer (WATCHER_REVIEW_PROVIDER / WATCHER_REVIEW_MODEL), under hard limits like the watcher's review
 * (origin-lessons.md §3.2: the origin system's model watcher ran away to thousands of calls):
 * - off unless OPS_ERROR_INVESTIGATION=on and the reviewer has a key;
 * - OPS_INVESTIGATIONS_PER_HOUR counted in the database (bus.take_review_slot, reviewer `ops:<provider>:<model>`),
 *   so the budget holds across isolates; at most MAX_PER_RUN groups per evaluation, no retries;
 * - the prompt holds the group's code, provider, normalised message and one example, cut to
 *   WATCHER_REVIEW_MAX_INPUT_CHARS; the answer is capped at WATCHER_REVIEW_MAX_OUTPUT_TOKENS;
 * - one attempt per group: a failed or refused call is recorded as such and not repeated.
 */
import { type Sql, withDb } from "../_shared/db.ts";
import type { Settings } from "../_shared/env.ts";
import { askReviewer, providerConfig } from "../_shared/providers/openai_compatible.ts";

const MAX_PER_RUN = 3;

const SYSTEM_PROMPT = "You help the operator of a message bus that calls LLM providers. You get one group of " +
  "identical errors. Answer with one JSON object and nothing else: " +
  '{"summary": "<what goes wrong, one or two sentences>", "suggested_fix": "<what the operator should check or change>"}.';

interface Candidate {
  fingerprint: string;
  code: string;
  provider: string;
  message: string;
  example: string | null;
  count: string;
  source: string;
}

/** Investigates up to MAX_PER_RUN uninvestigated groups first seen in the last day, newest first; returns how many were recorded. */
export async function investigateNewGroups(
  s: Settings,
  deps: { sql?: Sql; fetch?: typeof fetch } = {},
): Promise<number> {
  if (s.OPS_ERROR_INVESTIGATION !== "on" || s.WATCHER_REVIEW_PROVIDER === "none") return 0;
  const config = providerConfig(s.WATCHER_REVIEW_PROVIDER, s);
  if (!config.apiKey) return 0; // off without a key
  const model = s.WATCHER_REVIEW_MODEL ?? config.defaultModel;
  const candidates = await withDb((sql) =>
    sql<Candidate[]>`
      select fingerprint, code, provider, message, example, count::text as count, source from bus.error_groups
       where investigation is null and first_seen > now() - interval '1 day'
       order by first_seen desc limit ${MAX_PER_RUN}`, deps.sql);
  let recorded = 0;
  for (const group of candidates) {
    const [{ allowed }] = await withDb(
      (sql) =>
        sql<{ allowed: boolean }[]>`
        select bus.take_review_slot(${`ops:${config.name}:${model}`}, ${s.OPS_INVESTIGATIONS_PER_HOUR}) as allowed`,
      deps.sql,
    );
    if (!allowed) break; // the hour's budget is spent: the rest wait for the next hour
    const started = performance.now();
    let investigation: Record<string, unknown>;
    try {
      const completion = await askReviewer(config, model, s, {
        system: SYSTEM_PROMPT,
        user: investigationPrompt(group, s.WATCHER_REVIEW_MAX_INPUT_CHARS),
      }, deps.fetch);
      investigation = {
        status: "done",
        provider: config.name,
        model,
        ...parseAnswer(completion.choices[0]?.message?.content ?? ""),
        usage: completion.usage ?? null,
        ms: Math.round(performance.now() - started),
      };
    } catch (err) {
      const message = err instanceof Error ? err.message : String(err);
      console.error(`[ops] investigating error group ${group.fingerprint} failed: ${message}`);
      investigation = { status: "failed", provider: config.name, model, error: message.slice(0, 500) };
    }
    const [{ stored }] = await withDb(
      (sql) =>
        sql<{ stored: boolean }[]>`
        select bus.record_error_investigation(${group.fingerprint}, ${sql.json(investigation as never)}) as stored`,
      deps.sql,
    );
    if (stored) recorded++;
  }
  return recorded;
}

/** The user message: the group's facts, cut to `maxChars`. */
export function investigationPrompt(group: Omit<Candidate, "fingerprint">, maxChars: number): string {
  const text = [
    `source: ${group.source === "watcher" ? "a check of a stored provider answer" : "a failed provider call"}`,
    `error code: ${group.code}`,
    `provider: ${group.provider || "(none)"}`,
    `occurrences: ${group.count}`,
    `normalised message: ${group.message}`,
    `example: ${group.example ?? "(none)"}`,
  ].join("\n");
  return [...text].slice(0, maxChars).join("");
}

function parseAnswer(text: string): { summary: string; suggested_fix: string } {
  const json = /\{[\s\S]*\}/.exec(text)?.[0];
  if (json) {
    try {
      const parsed = JSON.parse(json) as { summary?: unknown; suggested_fix?: unknown };
      return {
        summary: typeof parsed.summary === "string" ? parsed.summary.slice(0, 1000) : "",
        suggested_fix: typeof parsed.suggested_fix === "string" ? parsed.suggested_fix.slice(0, 1000) : "",
      };
    } catch (err) {
      if (!(err instanceof SyntaxError)) throw err;
    }
  }
  return { summary: [...text].slice(0, 1000).join(""), suggested_fix: "" };
}
