/**
 * The baseline for upload rates: a plain loopback HTTP server (its own process, like the stack) that reads a
 * request body to its end and answers its size. Usage: deno run -A bench/loopback_upload_server.ts <port>
 */
const [port] = Deno.args;
Deno.serve({ hostname: "127.0.0.1", port: Number(port), onListen: () => console.log("ready") }, async (req) => {
  let size = 0;
  for await (const piece of req.body ?? ReadableStream.from<Uint8Array>([])) size += piece.length;
  return Response.json({ size });
});
