import http from "node:http";
import { Readable } from "node:stream";
import { ConnectionReset } from "./errors.ts";
import { createProviderStandin, type ProviderStandin, type StandinOptions, type StandinStats } from "./standin.ts";

export { createProviderStandin };
export type { ProviderStandin, StandinOptions, StandinStats } from "./standin.ts";

/** Options for {@link serveProviderStandin}. */
export interface ServeOptions {
  /** Default "127.0.0.1". */
  hostname?: string;
  /** Default 0: any free port. */
  port?: number;
  log?: (message: string) => void;
  /** Bounds of the files API's store (see `files.ts`). */
  files?: StandinOptions["files"];
}

/** A stand-in listening on a port. */
export interface ServedStandin {
  /** `http://<hostname>:<port>`, no trailing slash. */
  url: string;
  /** `url + "/v1"`: the `baseURL` for the `openai` SDK (`KIMI_BASE_URL`, `GLM_BASE_URL`). */
  baseURL: string;
  port: number;
  standin: ProviderStandin;
  stats(): StandinStats;
  /** Resolves once the server accepts connections (it binds within a tick of being created). */
  ready: Promise<void>;
  /** Ends pending waits, drops open connections and stops listening; resolves once shut down. Idempotent. */
  close(): Promise<void>;
}

/**
 * Serves a provider stand-in over HTTP/1.1 on `node:http` rather than `Deno.serve`: the faults it plays need
 * the socket itself (`reset` closes a connection without any answer, `cut_after_bytes` drops it mid-body), and
 * `Deno.serve` always sends a status line first. Measured on this machine, both answer a small POST in
 * ~0.26 ms. The port is taken synchronously with `Deno.listen` (so the caller learns it at once and a busy
 * port throws here), released and bound again by `node:http` in the same tick.
 *
 * @example
 * ```ts
 * const served = serveProviderStandin({ hostname: "127.0.0.1", port: 0 });
 * const client = new OpenAI({ apiKey: "standin", baseURL: served.baseURL, maxRetries: 0 });
 * await served.close();
 * ```
 */
export function serveProviderStandin(options: ServeOptions = {}): ServedStandin {
  const hostname = options.hostname ?? "127.0.0.1";
  const log = options.log ?? (() => {});
  const probe = Deno.listen({ hostname, port: options.port ?? 0 });
  const { port } = probe.addr as Deno.NetAddr;
  probe.close();

  const closing = new AbortController();
  const standin = createProviderStandin({ log, signal: closing.signal, files: options.files });
  const url = `http://${hostname}:${port}`;
  const pending = new Set<Promise<void>>();
  const server = http.createServer((req, res) => {
    const handled = handle(standin, url, req, res, log);
    pending.add(handled);
    handled.finally(() => pending.delete(handled));
  });
  const ready = new Promise<void>((resolve, reject) => {
    server.once("listening", resolve);
    server.once("error", reject);
  });
  ready.catch((error) => log(`standin could not listen on ${url}: ${error}`));
  server.listen(port, hostname);
  let closed: Promise<void> | undefined;
  return {
    url,
    baseURL: `${url}/v1`,
    port,
    standin,
    stats: () => standin.stats(),
    ready,
    close() {
      closed ??= (async () => {
        closing.abort();
        await Promise.allSettled([...pending]);
        await new Promise<void>((resolve) => {
          server.close(() => resolve());
          server.closeAllConnections();
        });
      })();
      return closed;
    },
  };
}

/** Bridges one node request to the fetch handler and writes its answer with backpressure. */
async function handle(
  standin: ProviderStandin,
  origin: string,
  req: http.IncomingMessage,
  res: http.ServerResponse,
  log: (message: string) => void,
): Promise<void> {
  const left = new AbortController();
  // "close" before the response finished means the client went away: end the request's waits.
  res.on("close", () => {
    if (!res.writableFinished) left.abort();
  });
  const headers = new Headers();
  for (let i = 0; i < req.rawHeaders.length; i += 2) headers.append(req.rawHeaders[i], req.rawHeaders[i + 1]);
  const hasBody = req.method !== "GET" && req.method !== "HEAD";
  const request = new Request(origin + req.url, {
    method: req.method,
    headers,
    body: hasBody ? Readable.toWeb(req) as ReadableStream<Uint8Array> : undefined,
    signal: left.signal,
  });
  let response: Response;
  try {
    response = await standin.fetch(request);
  } catch (error) {
    if (!(error instanceof ConnectionReset)) log(`standin ${req.method} ${req.url} failed: ${error}`);
    // A TCP reset (RST), as a provider's crashed load balancer sends. Note that Deno's fetch sends the request
    // again, once, on any connection closed without an answer: a Deno client makes two calls here.
    req.socket.resetAndDestroy();
    return;
  }
  if (res.destroyed) return void (await response.body?.cancel());
  res.writeHead(response.status, Object.fromEntries(response.headers));
  // Headers go out at once, before the first body byte (first_event_ms and slow_body rely on it).
  res.flushHeaders();
  if (!response.body) return void res.end();
  const reader = response.body.getReader();
  // Resolves once the last write has been handed to the socket: a cut must not drop bytes sent before it.
  let written = Promise.resolve();
  try {
    while (true) {
      const { value, done } = await reader.read();
      if (done) break;
      if (res.destroyed) return void (await reader.cancel());
      let full = false;
      written = new Promise<void>((resolve) => full = !res.write(value, () => resolve()));
      if (full) await drained(res);
    }
    res.end();
  } catch (error) {
    // A steered cut, a stall ended by the client leaving or by close(): drop the connection mid-body, so the
    // client sees an incomplete body rather than a clean end.
    if (!(error instanceof TypeError || error instanceof DOMException)) {
      log(`standin ${req.method} ${req.url} body failed: ${error}`);
    }
    await Promise.race([written, new Promise((resolve) => setTimeout(resolve, 1_000))]);
    res.destroy();
  }
}

/** Resolves when `res` can take more data or has closed. */
function drained(res: http.ServerResponse): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      res.off("drain", done);
      res.off("close", done);
      resolve();
    };
    res.on("drain", done);
    res.on("close", done);
  });
}

if (import.meta.main) {
  // Run alone (e.g. for a benchmark): `deno run -A devstack/provider/server.ts`, on PROVIDER_STANDIN_PORT.
  const { loadStackSettings } = await import("../settings.ts");
  const port = loadStackSettings().PROVIDER_STANDIN_PORT;
  const served = serveProviderStandin({ port, log: (m) => console.log(m) });
  await served.ready;
  console.log(`Provider stand-in listening on ${served.baseURL}`);
}
