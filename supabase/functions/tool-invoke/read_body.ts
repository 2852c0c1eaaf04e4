/** Reads a JSON request body with a size cap: 413 past the cap, 400 for bad JSON (never a 500 for bad input). */
import type { Context } from "hono";
import { badRequest, payloadTooLarge } from "../_shared/errors.ts";
import { concatBytes } from "../_shared/bytes.ts";

/** Parses the body of `c` as JSON, refusing more than `maxBytes`. */
export async function readJsonBody(c: Context, maxBytes: number): Promise<unknown> {
  const limitMb = Math.round(maxBytes / 1024 / 1024);
  const declared = Number(c.req.header("content-length") ?? NaN);
  if (declared > maxBytes) {
    throw payloadTooLarge(`The request body exceeds the ${limitMb} MB limit`, { limit_bytes: maxBytes });
  }
  const body = c.req.raw.body;
  if (!body) throw badRequest("The request body must be a JSON object");
  const parts: Uint8Array[] = [];
  let size = 0;
  for await (const chunk of body) {
    size += chunk.length;
    if (size > maxBytes) {
      throw payloadTooLarge(`The request body exceeds the ${limitMb} MB limit`, { limit_bytes: maxBytes });
    }
    parts.push(chunk);
  }
  const bytes = concatBytes(parts);
  let text: string;
  try {
    text = new TextDecoder("utf-8", { fatal: true }).decode(bytes);
  } catch (err) {
    throw badRequest(`The request body is not valid UTF-8: ${err instanceof Error ? err.message : err}`);
  }
  try {
    return JSON.parse(text);
  } catch (err) {
    throw badRequest(`The request body is not valid JSON: ${err instanceof Error ? err.message : err}`);
  }
}
