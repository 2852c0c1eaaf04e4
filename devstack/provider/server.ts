import { createProviderStandin, type ProviderStandin, type StandinStats } from "./standin.ts";

export { createProviderStandin };
export type { ProviderStandin, StandinOptions, StandinStats } from "./standin.ts";

/** Options for {@link serveProviderStandin}. */
export interface ServeOptions {
  /** Default "127.0.0.1". */
  hostname?: string;
  /** Default 0: any free port. */
  port?: number;
  log?: (message: string) => void;
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
  /** Ends pending waits and stops listening; resolves once the server has shut down. Idempotent. */
  close(): Promise<void>;
}

/**
 * Serves a provider stand-in over HTTP.
 *
 * @example
 * ```ts
 * const served = serveProviderStandin({ hostname: "127.0.0.1", port: 0 });
 * const client = new OpenAI({ apiKey: "standin", baseURL: served.baseURL, maxRetries: 0 });
 * await served.close();
 * ```
 */
export function serveProviderStandin(options: ServeOptions = {}): ServedStandin {
  const closing = new AbortController();
  const standin = createProviderStandin({ log: options.log, signal: closing.signal });
  const server = Deno.serve(
    { hostname: options.hostname ?? "127.0.0.1", port: options.port ?? 0, onListen: () => {} },
    (req) => standin.fetch(req),
  );
  const { hostname, port } = server.addr;
  const url = `http://${hostname}:${port}`;
  let closed: Promise<void> | undefined;
  return {
    url,
    baseURL: `${url}/v1`,
    port,
    standin,
    stats: () => standin.stats(),
    close() {
      closing.abort();
      closed ??= server.shutdown();
      return closed;
    },
  };
}

if (import.meta.main) {
  // Run alone (e.g. for a benchmark): `deno run -A devstack/provider/server.ts`, on PROVIDER_STANDIN_PORT.
  const { loadStackSettings } = await import("../settings.ts");
  const port = loadStackSettings().PROVIDER_STANDIN_PORT;
  const served = serveProviderStandin({ port, log: (m) => console.log(m) });
  console.log(`Provider stand-in listening on ${served.baseURL}`);
}
