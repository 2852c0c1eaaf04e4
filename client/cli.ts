/**
 * The bus CLI, built on the SDK: `deno run -A client/cli.ts <command> [options]` (see {@link USAGE}).
 * Results go to stdout (JSON, or the payload's bytes); errors go to stderr as JSON. Exit codes: 0 success,
 * 1 the request failed (including a checksum mismatch), 2 bad usage.
 *
 * @module
 */
import { parseArgs } from "node:util";
import { createBusClient } from "./bus_client.ts";
import { isBusClientError } from "./errors.ts";
import { type CliContext, commands, UsageError } from "./cli_commands.ts";

/** The text of `--help`. */
export const USAGE = `Usage: deno run -A client/cli.ts <command> [options]

Commands:
  invoke            Start a tool call, wait for it, and print the answer as JSON (transaction_id, status, checksum,
                    payload_size_bytes, provider, model, finish_reason, expires_at). It is started asynchronously
                    and waited for (up to 10 min), so a long generation never meets the gateway's 150 s limit.
                      --prompt <text>         the user message (chat), or
                      --input-json <json>     the whole tool input, e.g. '{"messages":[...]}'
                      --tool <name>           default: chat
                      --provider <name>       e.g. kimi or glm; default: the server's default
                      --model <id>            sent to the provider as given
                      --session-id <id>  --ttl-seconds <n>
                      --fallback <p[/model]>  a provider tried after the requested one fails (repeatable)
                      --async                 answer at once with { transaction_id, status: "pending" }
                      --stream                stream the chat (needs --provider or --model): the answer's text goes
                                              to stdout as it arrives, reasoning to stderr; at the end one JSON line
                                              on stderr: transaction_id, "verified": true, checksum, size_bytes,
                                              finish_reason, usage (and tool_calls). A cut stream, a failed
                                              message or a checksum mismatch exits 1 with the error on stderr.
                      --idempotency-key <k>   the same key returns the same transaction
                      --file <file_id>        send an uploaded file with the chat (repeatable)
  fetch <id>        Download a payload, verify its SHA-256, and write it to stdout (or --out <file>).
                    Nothing is written when verification fails.
  upload <path>     Upload a file (streamed) and print its file_id, sha256, size and whether the same bytes were
                    uploaded before (deduplicated). --name <name> to store it under another name,
                    --content-type <type> to give its media type.
  files             Print your files as JSON (--since <ISO time>, --limit <n>).
  meta <id>         Print a message's metadata as JSON.
  list              Print the messages changed since --since <ISO time> (--limit <n>) as JSON.
  tail              Print live events of your channel as JSON lines (--since <ISO time> to replay from a time,
                    --count <n> to stop after n events). Reconnects and catches up by itself.

Settings (flags win over the environment):
  --url <url>       SUPABASE_URL          the project URL, e.g. http://127.0.0.1:54321
  --token <jwt>     BUS_ACCESS_TOKEN      your user access token
  --key <key>       SUPABASE_ANON_KEY     the anon / publishable key (default: the access token)

Exit codes: 0 success, 1 the request failed (error as JSON on stderr), 2 bad usage.
`;

const OPTIONS = {
  help: { type: "boolean", short: "h" },
  url: { type: "string" },
  token: { type: "string" },
  key: { type: "string" },
  tool: { type: "string" },
  provider: { type: "string" },
  model: { type: "string" },
  prompt: { type: "string" },
  "input-json": { type: "string" },
  "session-id": { type: "string" },
  "ttl-seconds": { type: "string" },
  async: { type: "boolean" },
  stream: { type: "boolean" },
  fallback: { type: "string", multiple: true },
  "idempotency-key": { type: "string" },
  out: { type: "string", short: "o" },
  since: { type: "string" },
  limit: { type: "string" },
  count: { type: "string" },
  file: { type: "string", multiple: true },
  name: { type: "string" },
  "content-type": { type: "string" },
} as const;

/** Runs the CLI with `args`; returns the exit code. */
export async function main(
  args: string[],
  env: (name: string) => string | undefined = (name) => Deno.env.get(name),
): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({ args, options: OPTIONS, allowPositionals: true, strict: true });
  } catch (err) {
    return usage(err instanceof Error ? err.message : String(err));
  }
  const { values, positionals } = parsed;
  const [name, ...rest] = positionals;
  if (values.help || name === "help") {
    await write(Deno.stdout, USAGE);
    return 0;
  }
  if (!name) return usage("Expected a command");
  const command = commands[name];
  if (!command) return usage(`Unknown command ${JSON.stringify(name)}`);
  const url = values.url ?? env("SUPABASE_URL");
  const token = values.token ?? env("BUS_ACCESS_TOKEN");
  if (!url) return usage("Expected --url or SUPABASE_URL");
  if (!token) return usage("Expected --token or BUS_ACCESS_TOKEN");
  const bus = createBusClient({ url, key: values.key ?? env("SUPABASE_ANON_KEY") ?? token, accessToken: token });
  const ctx: CliContext = { bus, values, positionals: rest, stdout: Deno.stdout, stderr: Deno.stderr };
  try {
    return await command(ctx);
  } catch (err) {
    if (err instanceof UsageError) return usage(err.message);
    if (!isBusClientError(err)) throw err;
    await write(Deno.stderr, `${JSON.stringify({ error: err.toJSON() })}\n`);
    return 1;
  } finally {
    await bus.close();
  }
}

async function usage(problem: string): Promise<number> {
  await write(Deno.stderr, `error: ${problem}\n\n${USAGE}`);
  return 2;
}

async function write(to: { write(p: Uint8Array): Promise<number> }, text: string): Promise<void> {
  const bytes = new TextEncoder().encode(text);
  for (let at = 0; at < bytes.length;) at += await to.write(bytes.subarray(at));
}

if (import.meta.main) Deno.exit(await main(Deno.args));
