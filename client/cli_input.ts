/** The CLI's context and flag reading, shared by the commands (cli_commands.ts, cli_stream.ts). */
import type { BusClient } from "./bus_client.ts";
import type { InvokeRequest } from "./types.ts";

/** What a command gets: the client, the parsed flags, the arguments after the command name, stdout and stderr. */
export interface CliContext {
  bus: BusClient;
  values: Record<string, string | boolean | string[] | undefined>;
  positionals: string[];
  stdout: { write(p: Uint8Array): Promise<number> };
  stderr: { write(p: Uint8Array): Promise<number> };
}

/** Bad command-line usage (exit code 2). */
export class UsageError extends Error {
  override name = "UsageError";
}

/** Writes every byte (a single write may take fewer). */
export async function writeAll(to: CliContext["stdout"], bytes: Uint8Array): Promise<void> {
  for (let at = 0; at < bytes.length;) at += await to.write(bytes.subarray(at));
}

/** A string flag. */
export function str(ctx: CliContext, name: string): string | undefined {
  const v = ctx.values[name];
  return typeof v === "string" ? v : undefined;
}

/** A whole-number flag. */
export function int(ctx: CliContext, name: string): number | undefined {
  const v = str(ctx, name);
  if (v === undefined) return undefined;
  if (!/^\d+$/.test(v)) throw new UsageError(`--${name} must be a whole number, got ${JSON.stringify(v)}`);
  return Number(v);
}

/** The one positional transaction id. */
export function oneId(ctx: CliContext, command: string): string {
  if (ctx.positionals.length !== 1) throw new UsageError(`${command} expects exactly one transaction id`);
  return ctx.positionals[0];
}

/** An ISO 8601 time flag. */
export function time(ctx: CliContext, name: string): string | undefined {
  const v = str(ctx, name);
  if (v !== undefined && Number.isNaN(Date.parse(v))) throw new UsageError(`--${name} must be an ISO 8601 time`);
  return v;
}

/** The invoke request the flags describe. */
export function invokeRequest(ctx: CliContext): InvokeRequest {
  const prompt = str(ctx, "prompt");
  const inputJson = str(ctx, "input-json");
  if ((prompt === undefined) === (inputJson === undefined)) {
    throw new UsageError("invoke expects exactly one of --prompt and --input-json");
  }
  let input: Record<string, unknown>;
  if (prompt !== undefined) input = { messages: [{ role: "user", content: prompt }] };
  else {
    try {
      input = JSON.parse(inputJson!);
    } catch (err) {
      throw new UsageError(`--input-json is not valid JSON: ${err instanceof Error ? err.message : err}`);
    }
    if (typeof input !== "object" || input === null || Array.isArray(input)) {
      throw new UsageError("--input-json must be a JSON object");
    }
  }
  const req: InvokeRequest = { tool: str(ctx, "tool") ?? "chat", input, mode: ctx.values.async ? "async" : "sync" };
  const provider = str(ctx, "provider");
  if (provider !== undefined) {
    // Providers come from the server's settings (CONTRACT.md §3); the server says which are configured.
    if (!/^[a-z0-9][a-z0-9-]{0,39}$/.test(provider)) {
      throw new UsageError("--provider must be a provider name (lowercase letters, digits and -)");
    }
    req.provider = provider;
  }
  if (str(ctx, "model") !== undefined) req.model = str(ctx, "model");
  if (str(ctx, "session-id") !== undefined) req.session_id = str(ctx, "session-id");
  if (int(ctx, "ttl-seconds") !== undefined) req.ttl_seconds = int(ctx, "ttl-seconds");
  const fallbacks = ctx.values.fallback;
  if (Array.isArray(fallbacks) && fallbacks.length) req.fallbacks = fallbacks;
  return req;
}
