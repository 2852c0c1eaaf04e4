/** The `tool-invoke` request body (CONTRACT.md §4). Tool inputs are validated by each tool's own schema. */
import { z } from "zod";
import { PROVIDERS } from "../_shared/providers/openai_compatible.ts";

export const invokeBodySchema = z.strictObject({
  tool: z.string().min(1, "tool is required").max(100),
  provider: z.enum(PROVIDERS).optional(),
  model: z.string().min(1).max(200).optional(),
  input: z.record(z.string(), z.unknown()),
  session_id: z.string().min(1).max(200).optional(),
  mode: z.enum(["sync", "async"]).default("sync"),
  ttl_seconds: z.number().int().positive().optional(),
  metadata: z.record(z.string(), z.unknown()).optional(),
  /** Only for service_role callers: the user the message belongs to. */
  owner_id: z.uuid().optional(),
});

export type InvokeBody = z.infer<typeof invokeBodySchema>;

export const idempotencyKeySchema = z.string().min(1).max(255).regex(/^[\x21-\x7e]+$/, "printable ASCII only");

/** zod issues as `{ path, message }` for 400 bodies. */
export function describeIssues(error: z.ZodError, prefix: string[] = []): Array<{ path: string; message: string }> {
  return error.issues.map((i) => ({
    path: [...prefix, ...i.path.map(String)].join(".") || "(body)",
    message: i.message,
  }));
}
