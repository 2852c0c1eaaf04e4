/**
 * What the claim-check stack tests share: plain-fetch calls of tool-invoke and message-fetch (CONTRACT.md §4-5),
 * the provider stand-in called directly (for the bytes a response must equal), a raw HTTP GET that leaves
 * `Content-Encoding: gzip` undecoded (Deno's fetch decodes it silently), and streaming SHA-256.
 */
import { createHash } from "node:crypto";
import http from "node:http";
import { testStack } from "../devstack/testing/env.ts";

export const MODEL = "claim-check-test-model";

/** A fresh tag, unique per call (stand-in call counters and prompts must never collide across tests). */
export function uniqueTag(prefix: string): string {
  return `${prefix}-${crypto.randomUUID()}`;
}

/** A chat invoke body whose last user message carries `#standin {directive}`; the prompt makes it unique. */
export function chatBody(directive: Record<string, unknown>, extra: Record<string, unknown> = {}) {
  return {
    tool: "chat",
    model: MODEL,
    input: {
      messages: [{ role: "user", content: `claim check ${crypto.randomUUID()} #standin ${JSON.stringify(directive)}` }],
    },
    ...extra,
  };
}

export interface JsonAnswer {
  status: number;
  headers: Headers;
  // deno-lint-ignore no-explicit-any
  json: any;
}

async function asJson(res: Response): Promise<JsonAnswer> {
  const text = await res.text();
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    throw new Error(`expected JSON from ${res.url} (${res.status}), got ${JSON.stringify(text.slice(0, 200))}: ${err}`);
  }
  return { status: res.status, headers: res.headers, json };
}

/** POST /functions/v1/tool-invoke with `token`; `body` is JSON-encoded unless it is a string. */
export async function invoke(
  token: string,
  body: unknown,
  headers: Record<string, string> = {},
): Promise<JsonAnswer> {
  const res = await fetch(`${testStack().functionsUrl}/tool-invoke`, {
    method: "POST",
    headers: { authorization: `Bearer ${token}`, "content-type": "application/json", ...headers },
    body: typeof body === "string" ? body : JSON.stringify(body),
  });
  return await asJson(res);
}

/** GET /functions/v1/message-fetch/<path> as JSON (meta, list, or any error answer). */
export async function fetchJson(
  token: string,
  path: string,
  headers: Record<string, string> = {},
): Promise<JsonAnswer> {
  const res = await fetch(`${testStack().functionsUrl}/message-fetch${path}`, {
    headers: { authorization: `Bearer ${token}`, ...headers },
  });
  return await asJson(res);
}

/** The stand-in's answer to the request the bus sends for `body` (same JSON, so the same bytes come back). */
export async function standinDirect(body: ReturnType<typeof chatBody>): Promise<Response> {
  const res = await fetch(`${testStack().standinUrl}/chat/completions`, {
    method: "POST",
    headers: { authorization: "Bearer any-key", "content-type": "application/json" },
    // What the openai SDK sends: the tool input, then model, then stream (tools/chat.ts, openai_compatible.ts).
    body: JSON.stringify({ ...body.input, model: body.model, stream: false }),
  });
  if (res.status !== 200) throw new Error(`stand-in answered ${res.status}: ${await res.text()}`);
  return res;
}

/** How many chat calls the stand-in has seen with `tag`. */
export async function standinCalls(tag: string): Promise<number> {
  const root = testStack().standinUrl.replace(/\/v1\/?$/, "");
  const res = await fetch(`${root}/__standin/calls?tag=${encodeURIComponent(tag)}`);
  if (res.status !== 200) throw new Error(`stand-in calls answered ${res.status}: ${await res.text()}`);
  return (await res.json()).count;
}

export interface RawResponse {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: ReadableStream<Uint8Array>;
}

/**
 * A GET whose body arrives exactly as sent (node:http does not decode `Content-Encoding`). The body must be
 * consumed or cancelled.
 */
export function rawGet(url: string, headers: Record<string, string>): Promise<RawResponse> {
  return new Promise((resolve, reject) => {
    const req = http.get(url, { headers }, (res) => {
      const body = new ReadableStream<Uint8Array>({
        start(controller) {
          res.on("data", (chunk: Uint8Array) => controller.enqueue(new Uint8Array(chunk)));
          res.on("end", () => controller.close());
          res.on("error", (err) => controller.error(err));
        },
        cancel() {
          res.destroy();
        },
      });
      resolve({ status: res.statusCode ?? 0, headers: res.headers, body });
    });
    req.on("error", reject);
    req.setTimeout(120_000, () => req.destroy(new Error(`GET ${url} timed out`)));
  });
}

/** SHA-256 (hex) and size of a stream, without holding it in memory. */
export async function sha256Stream(stream: ReadableStream<Uint8Array>): Promise<{ hex: string; size: number }> {
  const hash = createHash("sha256");
  let size = 0;
  for await (const chunk of stream) {
    hash.update(chunk);
    size += chunk.length;
  }
  return { hex: hash.digest("hex"), size };
}

/** The gzip-decoded form of `stream`. */
export function gunzip(stream: ReadableStream<Uint8Array>): ReadableStream<Uint8Array> {
  return stream.pipeThrough(new DecompressionStream("gzip") as unknown as TransformStream<Uint8Array, Uint8Array>);
}

export function sha256Hex(bytes: Uint8Array): string {
  return createHash("sha256").update(bytes).digest("hex");
}

/** base64 of the raw digest for a hex SHA-256 (the form of `Repr-Digest`, RFC 9530). */
export function hexToBase64(hex: string): string {
  return btoa(String.fromCharCode(...hex.match(/../g)!.map((h) => parseInt(h, 16))));
}
