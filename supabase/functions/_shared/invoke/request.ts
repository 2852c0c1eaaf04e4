/**
 * The invoke request (CONTRACT.md §4): its schema, with the tool's input validated by the tool's own schema in the
 * same pass so that a 400 names every problem, and the settings that bound it.
 */
import { z } from "zod";
import type { Settings } from "../env.ts";
import { parseRouteRef } from "../providers/config.ts";
import { TOOL_NAMES, toolNamed } from "../tools/registry.ts";

/**
 * Keys of the message's metadata the bus writes itself on completion (content type, JSON wanted, parsed): a caller's
 * value would be overwritten, or (on a failed stream, which records none) served as the partial's Content-Type.
 */
export const RESERVED_METADATA = ["content_type", "wants_json", "parsed"];

/** The invoke body schema for `s` (provider names and TTL bounds come from the settings). */
export function invokeBodySchema(s: Settings) {
  const names = [...s.providers.keys()];
  const configured = (name: string) => s.providers.has(name);
  return z.strictObject({
    tool: z.string().min(1, "tool is required").max(100),
    provider: z.string().refine(configured, `must be one of: ${names.join(", ")}`).optional(),
    /** Tried in order when the requested provider fails after its retries or its circuit is open (§4, §9). */
    fallbacks: z.array(
      z.string().min(1).max(300).refine(
        (text) => configured(parseRouteRef(text).provider) && parseRouteRef(text).model !== "",
        `must be a provider (${names.join(", ")}) or provider/model`,
      ),
    ).max(8).optional(),
    model: z.string().min(1).max(200).optional(),
    input: z.record(z.string(), z.unknown()),
    session_id: z.string().min(1).max(200).optional(),
    mode: z.enum(["sync", "async"]).default("sync"),
    ttl_seconds: z.number().int().min(s.MESSAGE_BUS_MIN_TTL_SECONDS).max(s.MESSAGE_BUS_MAX_TTL_SECONDS).optional(),
    /** The caller's own; the keys the bus records its facts under beside it are refused (never overwritten). */
    metadata: z.record(z.string(), z.unknown()).refine(
      (m) => !RESERVED_METADATA.some((k) => Object.hasOwn(m, k)),
      `must not use the keys the bus records beside it: ${RESERVED_METADATA.join(", ")}`,
    ).optional(),
    /** Only for service_role callers: the user the message belongs to. */
    owner_id: z.uuid().optional(),
  }).superRefine((body, ctx) => {
    const tool = toolNamed(body.tool);
    if (!tool) {
      ctx.addIssue({ code: "custom", path: ["tool"], message: `must be one of: ${TOOL_NAMES.join(", ")}` });
      return;
    }
    const input = tool.inputSchema.safeParse(body.input);
    if (!input.success) {
      for (const issue of input.error.issues) {
        ctx.addIssue({ code: "custom", path: ["input", ...issue.path.map(String)], message: issue.message });
      }
    }
  });
}

export type InvokeBody = z.output<ReturnType<typeof invokeBodySchema>>;

export const idempotencyKeySchema = z.string().min(1).max(255).regex(/^[\x21-\x7e]+$/, "printable ASCII only");

/** Headers the invoke route reads. */
export const invokeHeadersSchema = z.looseObject({ "idempotency-key": idempotencyKeySchema.optional() });

/** The options of the JSON door for an invoke body. */
export function invokeBodyLimits(s: Settings) {
  return {
    maxBytes: s.MESSAGE_BUS_MAX_PAYLOAD_MB * 1024 * 1024,
    maxDepth: s.MESSAGE_BUS_MAX_JSON_DEPTH,
    // The tool's input goes to the provider as received: its long strings (prompts, documents) are checked, not decoded.
    elideUnder: new Set(["input"]),
    memberLimits: { metadata: s.MESSAGE_BUS_MAX_METADATA_BYTES },
  };
}
