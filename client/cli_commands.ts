/** The commands of the bus CLI (cli.ts). Each returns an exit code and throws BusClientErrors or UsageErrors. */
import { type CliContext, int, invokeRequest, oneId, str, time, UsageError, writeAll } from "./cli_input.ts";
import { streamInvoke } from "./cli_stream.ts";

export { type CliContext, UsageError } from "./cli_input.ts";

/**
 * How long `invoke` waits for the outcome of a call (it invokes asynchronously and waits, so that a long generation
 * never meets the gateway's 150 s idle limit): past any worker's wall clock (400 s on paid plans,
 * supabase-platform.md §1.7), by when a message has completed, failed or been reaped.
 */
export const INVOKE_WAIT_MS = 600_000;

type Command = (ctx: CliContext) => Promise<number>;

const utf8 = new TextEncoder();

const printJson = (ctx: CliContext, value: unknown) =>
  writeAll(ctx.stdout, utf8.encode(`${JSON.stringify(value, null, 2)}\n`));

/** The commands by name. */
export const commands: Record<string, Command> = {
  async invoke(ctx) {
    if (ctx.positionals.length) throw new UsageError("invoke takes no positional arguments");
    if (ctx.values.stream) return await streamInvoke(ctx);
    const req = invokeRequest(ctx);
    const files = Array.isArray(ctx.values.file) ? ctx.values.file : undefined;
    const idempotencyKey = str(ctx, "idempotency-key");
    const bus = ctx.bus.throwOnError();
    // Without --async: invoked asynchronously and waited for (never a request open while the provider works, so never
    // the gateway's 504 for a long generation), answered with what a sync invoke's 200 carries.
    const { data } = req.mode === "async"
      ? await bus.invoke(req, { idempotencyKey, files })
      : await bus.invokeAndWait(req, { idempotencyKey, files, timeoutMs: INVOKE_WAIT_MS });
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
