/**
 * The optional model review: a second opinion from a model (GLM by default) on sampled responses. Hard limits,
 * because the origin system's model watcher ran away to thousands of calls (origin-lessons.md §3.2):
 * - off unless WATCHER_REVIEW_SAMPLE_RATE > 0 (or a service-role caller forces one) and the provider has a key;
 * - sampling by a hash of the transaction ID, so a repeated check of the same message makes the same choice;
 * - WATCHER_REVIEWS_PER_HOUR counted in the database (bus.take_review_slot), so the budget holds across isolates;
 * - at most WATCHER_REVIEW_MAX_INPUT_CHARS of content (head and tail), WATCHER_REVIEW_MAX_OUTPUT_TOKENS, no retries;
 * - its cost (usage) is stored with the observation; a model's concern is at most a warning.
 */
import { createHash } from "node:crypto";
import { asService, type Sql } from "../_shared/db.ts";
import type { Settings } from "../_shared/env.ts";
import { askReviewer, providerConfig } from "../_shared/providers/openai_compatible.ts";
import { type Finding, finding } from "./findings.ts";
import type { CompletionView } from "./checks.ts";

export interface ReviewDeps {
  sql: Sql;
  settings: Settings;
  /** Provider HTTP, injectable for tests. */
  fetch?: typeof fetch;
}

export interface Review {
  provider: string;
  model: string;
  status: "done" | "budget_exhausted" | "failed";
  verdict?: "ok" | "warning" | "error" | "unknown";
  summary?: string;
  usage?: { prompt_tokens?: number; completion_tokens?: number; total_tokens?: number } | null;
  ms?: number;
  error?: string;
}

const SYSTEM_PROMPT = "You review one response of an AI model for an automated message bus. Judge only the " +
  "response text you are given. Answer with one JSON object and nothing else: " +
  '{"verdict": "ok" | "warning" | "error", "summary": "<one sentence>"}. ' +
  '"error": unusable (a refusal, an error message, garbage, cut off mid-sentence, broken JSON when JSON was requested). ' +
  '"warning": usable with a caveat. "ok": otherwise.';

/** Whether `transactionId` falls into the sample (deterministic: the same ID always makes the same choice). */
export function sampled(transactionId: string, rate: number): boolean {
  if (rate <= 0) return false;
  if (rate >= 1) return true;
  const digest = createHash("sha256").update(transactionId).digest();
  return digest.readUInt32BE(0) / 2 ** 32 < rate;
}

/**
 * Reviews `view` when sampled (or `force`d), the provider is configured and the hourly budget allows.
 * @returns undefined when no review was due; otherwise the review record and, when the model had concerns, a
 *   `review_flagged` finding. Provider errors are recorded on the review, never thrown.
 */
export async function maybeReview(
  transactionId: string,
  view: CompletionView,
  context: { finishReason: string | null; wantsJson: boolean; findings: Finding[] },
  deps: ReviewDeps,
  force = false,
): Promise<{ review: Review; finding?: Finding } | undefined> {
  const s = deps.settings;
  if (s.WATCHER_REVIEW_PROVIDER === "none") return undefined;
  if (!force && !sampled(transactionId, s.WATCHER_REVIEW_SAMPLE_RATE)) return undefined;
  const config = providerConfig(s.WATCHER_REVIEW_PROVIDER, s);
  if (!config.apiKey) return undefined; // off without a key
  const model = s.WATCHER_REVIEW_MODEL ?? config.defaultModel;
  const base = { provider: config.name, model };

  const [{ allowed }] = await asService(
    (tx) =>
      tx<
        { allowed: boolean }[]
      >`select bus.take_review_slot(${`${config.name}:${model}`}, ${s.WATCHER_REVIEWS_PER_HOUR}) as allowed`,
    deps.sql,
  );
  if (!allowed) return { review: { ...base, status: "budget_exhausted" } };

  const started = performance.now();
  try {
    const completion = await askReviewer(config, model, s, {
      system: SYSTEM_PROMPT,
      user: reviewPrompt(view, context, s.WATCHER_REVIEW_MAX_INPUT_CHARS),
    }, deps.fetch);
    const answer = parseAnswer(completion.choices[0]?.message?.content ?? "");
    const review: Review = {
      ...base,
      status: "done",
      ...answer,
      usage: completion.usage
        ? {
          prompt_tokens: completion.usage.prompt_tokens,
          completion_tokens: completion.usage.completion_tokens,
          total_tokens: completion.usage.total_tokens,
        }
        : null,
      ms: Math.round(performance.now() - started),
    };
    const flagged = answer.verdict === "warning" || answer.verdict === "error";
    return {
      review,
      finding: flagged
        ? finding("review_flagged", `Model review (${config.name} ${model}) says ${answer.verdict}: ${answer.summary}`)
        : undefined,
    };
  } catch (err) {
    const message = err instanceof Error ? err.message : String(err);
    console.error(`[watcher] model review of ${transactionId} failed: ${message}`);
    return { review: { ...base, status: "failed", error: message, ms: Math.round(performance.now() - started) } };
  }
}

/** The user message: the facts, then the content (head and tail when longer than `maxChars`). */
export function reviewPrompt(
  view: CompletionView,
  context: { finishReason: string | null; wantsJson: boolean; findings: Finding[] },
  maxChars: number,
): string {
  const chars = [...view.content];
  let content = view.content;
  let note = `${chars.length} characters`;
  if (chars.length > maxChars) {
    const half = Math.floor(maxChars / 2);
    content = `${chars.slice(0, half).join("")}\n[… ${chars.length - 2 * half} characters omitted …]\n${
      chars.slice(-half).join("")
    }`;
    note = `${chars.length} characters, shown: the first and last ${half}`;
  }
  const automatic = context.findings.map((f) => f.code).join(", ") || "none";
  return [
    `finish_reason: ${context.finishReason ?? "unknown"}`,
    `JSON output requested: ${context.wantsJson ? "yes" : "no"}`,
    `automatic checks found: ${automatic}`,
    `reasoning_content: ${view.reasoning ? `${[...view.reasoning].length} characters (not shown)` : "none"}`,
    `--- response content (${note}) ---`,
    content,
  ].join("\n");
}

function parseAnswer(text: string): { verdict: Review["verdict"]; summary: string } {
  const json = /\{[\s\S]*\}/.exec(text)?.[0];
  if (json) {
    try {
      const parsed = JSON.parse(json) as { verdict?: unknown; summary?: unknown };
      const verdict = parsed.verdict;
      if (verdict === "ok" || verdict === "warning" || verdict === "error") {
        return { verdict, summary: typeof parsed.summary === "string" ? parsed.summary.slice(0, 500) : "" };
      }
    } catch (err) {
      if (!(err instanceof SyntaxError)) throw err;
    }
  }
  return { verdict: "unknown", summary: `Unparseable reviewer answer: ${[...text].slice(0, 200).join("")}` };
}
