/**
 * The baseline for fetch rates: a plain loopback HTTP server (its own process, like the stack) that serves the
 * bytes of a file from memory. Usage: deno run -A bench/loopback_server.ts <port> <file>
 */
const [port, file] = Deno.args;
const bytes = await Deno.readFile(file);
Deno.serve(
  { hostname: "127.0.0.1", port: Number(port), onListen: () => console.log("ready") },
  () => new Response(bytes, { headers: { "content-type": "application/json", "cache-control": "no-transform" } }),
);
