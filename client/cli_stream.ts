/**
 * `invoke --stream` (cli_commands.ts): the chat streamed through the bus's OpenAI-compatible endpoint with the SDK's
 * `stream()`. The answer's content goes to stdout as it arrives (nothing else, so it can be piped); reasoning
 * (`reasoning_content`) goes to stderr as it arrives; at the end one JSON line on stderr names the transaction and
 * the verification (`"verified": true`, the checksum, the size, the finish reason, usage and any tool calls). A cut
 * stream, a failed message or a checksum mismatch is an error (JSON on stderr, exit code 1) naming the transaction.
 */
import { type CliContext, invokeRequest, str, UsageError, writeAll } from "./cli_input.ts";
import { ToolCallAssembler } from "./stream_parts.ts";

const utf8 = new TextEncoder();

/** Runs `invoke --stream`; returns the exit code, throws BusClientErrors and UsageErrors. */
export async function streamInvoke(ctx: CliContext): Promise<number> {
  if (ctx.values.async) throw new UsageError("--stream and --async exclude each other");
  const req = invokeRequest(ctx);
  if (req.tool !== "chat") throw new UsageError("--stream works with the chat tool only");
  if (req.provider === undefined && req.model === undefined) {
    throw new UsageError("--stream needs --provider or --model (the streaming endpoint names the model)");
  }
  const stream = ctx.bus.stream(req, {
    idempotencyKey: str(ctx, "idempotency-key"),
    files: Array.isArray(ctx.values.file) ? ctx.values.file : undefined,
  });
  const tools = new ToolCallAssembler();
  // Whether the terminal's current line holds text: stdout and stderr usually share it.
  let midLine = false;
  const text = async (to: CliContext["stdout"], t: string) => {
    await writeAll(to, utf8.encode(t));
    midLine = !t.endsWith("\n");
  };
  const endLine = async () => {
    if (midLine) await text(ctx.stderr, "\n");
  };
  try {
    for await (const part of stream) {
      if (part.type === "content") await text(ctx.stdout, part.text);
      else if (part.type === "reasoning") await text(ctx.stderr, part.text);
      else if (part.type === "tool_call") tools.add(part);
      else if (part.type === "verified") {
        await endLine();
        const { type: _type, ...result } = part;
        const calls = tools.calls;
        await text(
          ctx.stderr,
          `${JSON.stringify({ ...result, verified: true, ...(calls.length ? { tool_calls: calls } : {}) })}\n`,
        );
      }
    }
  } catch (err) {
    await endLine(); // the error's JSON line starts on a line of its own
    throw err;
  }
  return 0;
}
