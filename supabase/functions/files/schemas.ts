/** What the files routes accept (the door, CONTRACT.md §13): path, query and headers, each checked with zod. */
import { z } from "zod";
import { isoTime, pgText } from "../_shared/door/validate.ts";

/**
 * A file's name: 1-255 characters, no control characters, no `/` or `\` (a name, not a path). In `x-filename` a
 * name is percent-decoded when it decodes (HTTP header values are Latin-1: the SDK percent-encodes UTF-8 names).
 */
export const fileName = pgText(255).min(1, "must not be empty")
  .refine(
    (s) => ![...s].some((ch) => ch.charCodeAt(0) < 0x20 || ch === "\u007f"),
    "must not contain control characters",
  )
  .refine((s) => !/[/\\]/.test(s), "must be a name, not a path (no / or \\)");

const headerName = z.string().transform((raw, ctx) => {
  let name = raw;
  try {
    name = decodeURIComponent(raw);
  } catch (err) {
    if (!(err instanceof URIError)) throw err; // not percent-encoded (e.g. "100%.txt"): taken as it is
  }
  const parsed = fileName.safeParse(name);
  if (!parsed.success) {
    for (const issue of parsed.error.issues) ctx.addIssue({ code: "custom", message: issue.message });
    return z.NEVER;
  }
  return parsed.data;
});

/** A media type as sent in Content-Type (kept with the file, served back with it). */
const mediaType = z.string().max(255).regex(/^[\x20-\x7e]+$/, "must be printable ASCII");

/** The headers an upload reads. */
export const uploadHeadersSchema = z.looseObject({
  "x-filename": headerName.optional(),
  "content-type": mediaType.optional(),
  "content-length": z.string().regex(/^\d{1,15}$/, "must be a whole number").transform(Number).optional(),
  /** Only for the service role: whose file it is. */
  "x-owner-id": z.uuid().optional(),
});
export type UploadHeaders = z.output<typeof uploadHeadersSchema>;

/** The headers the list reads. */
export const ownerHeadersSchema = z.looseObject({ "x-owner-id": z.uuid().optional() });

/** `/<file_id>`. */
export const fileIdParam = z.object({
  file_id: z.string().trim().pipe(z.uuid({ error: "must be a UUID file id" })).transform((s) => s.toLowerCase()),
});

/** `GET /files?since&limit`. */
export const listQuery = z.strictObject({
  since: isoTime().default("1970-01-01T00:00:00Z"),
  limit: z.string().regex(/^\d{1,4}$/, "must be a whole number from 1 to 1000").transform(Number).pipe(
    z.number().min(1, "must be at least 1").max(1000, "must be at most 1000"),
  ).default(100),
});

export const noQuery = z.strictObject({});
