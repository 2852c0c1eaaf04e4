/** The commands of the bus CLI (cli.ts). Each returns an exit code and throws BusClientErrors or UsageErrors. */
import type { BusClient } from "./bus_client.ts";
import type { InvokeRequest } from "./types.ts";

/** What a command gets: the client, the parsed flags, the arguments after the command name, and stdout. */
export interface CliContext {
  bus: BusClient;
  values: Record<string, string | boolean | string[] | undefined>;
  positionals: string[];
  stdout: { write(p: Uint8Array): Promise<number> };
}

/** Bad command-line usage (exit code 2). */
export class UsageError extends Error {
  override name = "UsageError";
}

type Command = (ctx: CliContext) => Promise<number>;

const utf8 = new TextEncoder();

async function writeAll(to: CliContext["stdout"], bytes: Uint8Array): Promise<void> {
  for (let at = 0; at < bytes.length;) at += await to.write(bytes.subarray(at));
}

const printJson = (ctx: CliContext, value: unknown) =>
  writeAll(ctx.stdout, utf8.encode(`${JSON.stringify(value, null, 2)}\n`));

function str(ctx: CliContext, name: string): string | undefined {
  const v = ctx.values[name];
  return typeof v === "string" ? v : undefined;
}

function int(ctx: CliContext, name: string): number | undefined {
  const v = str(ctx, name);
  if (v === undefined) return undefined;
  if (!/^\d+$/.test(v)) throw new UsageError(`--${name} must be a whole number, got ${JSON.stringify(v)}`);
  return Number(v);
}

function oneId(ctx: CliContext, command: string): string {
  if (ctx.positionals.length !== 1) throw new UsageError(`${command} expects exactly one transaction id`);
  return ctx.positionals[0];
}

function time(ctx: CliContext, name: string): string | undefined {
  const v = str(ctx, name);
  if (v !== undefined && Number.isNaN(Date.parse(v))) throw new UsageError(`--${name} must be an ISO 8601 time`);
  return v;
}

function invokeRequest(ctx: CliContext): InvokeRequest {
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
    if (provider !== "kimi" && provider !== "glm") throw new UsageError("--provider must be kimi or glm");
    req.provider = provider;
  }
  if (str(ctx, "model") !== undefined) req.model = str(ctx, "model");
  if (str(ctx, "session-id") !== undefined) req.session_id = str(ctx, "session-id");
  if (int(ctx, "ttl-seconds") !== undefined) req.ttl_seconds = int(ctx, "ttl-seconds");
  return req;
}

/** The commands by name. */
export const commands: Record<string, Command> = {
  async invoke(ctx) {
    if (ctx.positionals.length) throw new UsageError("invoke takes no positional arguments");
    const req = invokeRequest(ctx);
    const files = ctx.values.file;
    const { data } = await ctx.bus.throwOnError().invoke(req, {
      idempotencyKey: str(ctx, "idempotency-key"),
      files: Array.isArray(files) ? files : undefined,
    });
    await printJson(ctx, data);
    return 0;
  },

  async fetch(ctx) {
    const id = oneId(ctx, "fetch");
    const out = str(ctx, "out");
    const bus = ctx.bus.throwOnError();
    if (out === undefined) {
      // stdout cannot be taken back: write only bytes that were verified.
      const { data } = await bus.fetch(id);
      await writeAll(ctx.stdout, data.bytes);
      return 0;
    }
    // A file is written as <out>.partial while streaming and renamed only once the checksum matched.
    const partial = `${out}.partial`;
    const file = await Deno.open(partial, { write: true, create: true, truncate: true });
    try {
      await bus.fetch(id, { onChunk: (chunk) => writeAll(file, chunk) });
    } catch (err) {
      file.close();
      await Deno.remove(partial);
      throw err;
    }
    file.close();
    await Deno.rename(partial, out);
    return 0;
  },

  async upload(ctx) {
    if (ctx.positionals.length !== 1) throw new UsageError("upload expects exactly one path");
    const path = ctx.positionals[0];
    let file: Deno.FsFile;
    try {
      file = await Deno.open(path, { read: true });
    } catch (err) {
      throw new UsageError(`cannot read ${path}: ${err instanceof Error ? err.message : err}`);
    }
    // Streamed from disk: a large file is never read into memory. The upload closes the file when it ends.
    const name = str(ctx, "name") ?? path.split(/[\\/]/).pop()!;
    const { data } = await ctx.bus.throwOnError().uploadFile(file.readable, {
      filename: name,
      contentType: str(ctx, "content-type"),
    });
    await printJson(ctx, data);
    return 0;
  },

  async files(ctx) {
    if (ctx.positionals.length) throw new UsageError("files takes no positional arguments");
    const { data } = await ctx.bus.throwOnError().listFiles({ since: time(ctx, "since"), limit: int(ctx, "limit") });
    await printJson(ctx, { files: data });
    return 0;
  },

  async meta(ctx) {
    const { data } = await ctx.bus.throwOnError().meta(oneId(ctx, "meta"));
    await printJson(ctx, data);
    return 0;
  },

  async list(ctx) {
    if (ctx.positionals.length) throw new UsageError("list takes no positional arguments");
    const { data } = await ctx.bus.throwOnError().list({ since: time(ctx, "since"), limit: int(ctx, "limit") });
    await printJson(ctx, { messages: data });
    return 0;
  },

  async tail(ctx) {
    if (ctx.positionals.length) throw new UsageError("tail takes no positional arguments");
    const count = int(ctx, "count");
    const stop = new AbortController();
    const onSignal = () => stop.abort();
    Deno.addSignalListener("SIGINT", onSignal);
    Deno.addSignalListener("SIGTERM", onSignal);
    try {
      const sub = ctx.bus.subscribe({ signal: stop.signal, since: time(ctx, "since") });
      await sub.ready;
      // On stderr, so that stdout stays pure JSON lines; scripts may wait for this line.
      console.error("tail: listening (Ctrl-C to stop)");
      let seen = 0;
      for await (const event of sub) {
        await writeAll(ctx.stdout, utf8.encode(`${JSON.stringify(event)}\n`));
        if (count !== undefined && ++seen >= count) break;
      }
      return 0;
    } finally {
      Deno.removeSignalListener("SIGINT", onSignal);
      Deno.removeSignalListener("SIGTERM", onSignal);
    }
  },
};
