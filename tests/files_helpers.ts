/**
 * What the files stack tests share (CONTRACT.md §13): the files function called with plain fetch, the provider
 * stand-in's files API read directly (what the bus uploaded there), and the stand-in's completion id, which is a
 * digest of the exact request body it received (devstack/provider/chat.ts), so a test can prove which bytes went.
 */
import { createHash } from "node:crypto";
import { testStack } from "../devstack/testing/env.ts";

export interface Answer {
  status: number;
  headers: Headers;
  // deno-lint-ignore no-explicit-any
  json: any;
}

async function answer(res: Response): Promise<Answer> {
  const text = await res.text();
  try {
    return { status: res.status, headers: res.headers, json: text ? JSON.parse(text) : null };
  } catch (err) {
    throw new Error(`expected JSON from ${res.url} (${res.status}), got ${JSON.stringify(text.slice(0, 200))}: ${err}`);
  }
}

const filesUrl = (path = "") => `${testStack().functionsUrl}/files${path}`;

/** POST /files with the bytes as the raw body; `name` goes in x-filename (none when null). */
export async function upload(
  token: string,
  bytes: Uint8Array | string,
  name: string | null,
  headers: Record<string, string> = {},
): Promise<Answer> {
  const h: Record<string, string> = { authorization: `Bearer ${token}`, ...headers };
  if (name !== null) h["x-filename"] = name;
  return await answer(await fetch(filesUrl(), { method: "POST", headers: h, body: bytes as BodyInit }));
}

/** POST /files with a multipart body (FormData). */
export async function uploadForm(token: string, form: FormData): Promise<Answer> {
  return await answer(
    await fetch(filesUrl(), { method: "POST", headers: { authorization: `Bearer ${token}` }, body: form }),
  );
}

/** GET /files/<id>: the raw response (the caller reads or cancels its body). */
export function getFile(token: string, id: string, headers: Record<string, string> = {}): Promise<Response> {
  return fetch(filesUrl(`/${id}`), { headers: { authorization: `Bearer ${token}`, ...headers } });
}

/** GET /files (list) or any other files route answered in JSON. */
export async function filesJson(token: string, path = "", init: RequestInit = {}): Promise<Answer> {
  return await answer(
    await fetch(filesUrl(path), { ...init, headers: { authorization: `Bearer ${token}`, ...init.headers } }),
  );
}

/** DELETE /files/<id>: its status. */
export async function deleteFile(token: string, id: string): Promise<number> {
  const res = await fetch(filesUrl(`/${id}`), { method: "DELETE", headers: { authorization: `Bearer ${token}` } });
  await res.body?.cancel();
  return res.status;
}

export interface StandinFile {
  id: string;
  filename: string;
  bytes: number;
  purpose: string;
}

/** The files the stand-in holds under the providers' base path (`GET {base}/files`), optionally by name. */
export async function standinFiles(filename?: string): Promise<StandinFile[]> {
  const res = await fetch(`${kimiBase()}/files`, { headers: { authorization: "Bearer any" } });
  if (res.status !== 200) throw new Error(`stand-in files answered ${res.status}: ${await res.text()}`);
  const files = (await res.json()).data as StandinFile[];
  return filename === undefined ? files : files.filter((f) => f.filename === filename);
}

/** Where the local stack points kimi: the stand-in under a prefix of its own (devstack/stack.ts standinBaseUrl). */
export function kimiBase(): string {
  return `${new URL(testStack().standinUrl).origin}/kimi/v1`;
}

/** The stand-in's extraction of one of its files (`GET {base}/files/<id>/content`), as text. */
export async function standinContent(id: string): Promise<string> {
  const res = await fetch(`${kimiBase()}/files/${id}/content`, {
    headers: { authorization: "Bearer any" },
  });
  if (res.status !== 200) throw new Error(`stand-in content answered ${res.status}: ${await res.text()}`);
  return await res.text();
}

/** The stand-in's counters under the providers' base path. */
export async function standinPrefixStats(): Promise<{ uploads: number; deletes: number; content_reads: number }> {
  const root = testStack().standinUrl.replace(/\/v1\/?$/, "");
  const res = await fetch(`${root}/__standin/stats`);
  const stats = await res.json();
  return stats.prefixes["/kimi/v1"] ?? { uploads: 0, deletes: 0, content_reads: 0 };
}

/** Makes the stand-in forget every file it holds (a provider that lost them). */
export async function standinForgetFiles(): Promise<void> {
  const root = testStack().standinUrl.replace(/\/v1\/?$/, "");
  const res = await fetch(`${root}/__standin/files/forget`, { method: "POST", body: "{}" });
  if (res.status !== 200) throw new Error(`forget answered ${res.status}: ${await res.text()}`);
  await res.body?.cancel();
}

/** The id the stand-in gives a completion of exactly `requestBody` ("chatcmpl-" + 12 bytes of its SHA-256). */
export function standinCompletionId(requestBody: string): string {
  return "chatcmpl-" + createHash("sha256").update(requestBody).digest("hex").slice(0, 24);
}

/** `size` random bytes (crypto.getRandomValues gives at most 64 KiB a call). */
export function randomBytes(size: number): Uint8Array {
  const bytes = new Uint8Array(size);
  for (let i = 0; i < size; i += 65_536) crypto.getRandomValues(bytes.subarray(i, Math.min(size, i + 65_536)));
  return bytes;
}

/** Bytes that are not UTF-8 text (0xff never occurs in UTF-8), with `marker` inside. */
export function binaryWith(marker: string, size = 4096): Uint8Array {
  const bytes = randomBytes(size);
  bytes[0] = 0xff;
  bytes.set(new TextEncoder().encode(marker), 16);
  return bytes;
}
