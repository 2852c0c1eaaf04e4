/**
 * A provider with no generation cost, for the relay's own ceiling: answers every `POST …/chat/completions` with the
 * same recorded event stream (a stand-in stream saved to a file), served from memory one event per write, as the
 * stand-in writes them. Its own process, like the stand-in. Usage: deno run -A bench/replay_provider.ts <port> <file>
 */
const [port, file] = Deno.args;
const bytes = await Deno.readFile(file);
/** The event boundaries (after each blank line), so each write is one event. */
const ends: number[] = [];
for (let at = 0; at < bytes.length - 1; at++) if (bytes[at] === 10 && bytes[at + 1] === 10) ends.push(at + 2);
if (ends.at(-1) !== bytes.length) ends.push(bytes.length);

Deno.serve(
  { hostname: "127.0.0.1", port: Number(port), onListen: () => console.log("ready") },
  async (req) => {
    if (req.method !== "POST" || !new URL(req.url).pathname.endsWith("/chat/completions")) {
      return new Response("not found", { status: 404 });
    }
    await req.body?.cancel();
    let i = 0;
    const body = new ReadableStream<Uint8Array>({
      pull(controller) {
        if (i >= ends.length) return controller.close();
        controller.enqueue(bytes.subarray(i ? ends[i - 1] : 0, ends[i]));
        i++;
      },
    }, { highWaterMark: 0 });
    return new Response(body, { headers: { "content-type": "text/event-stream", "cache-control": "no-cache" } });
  },
);
