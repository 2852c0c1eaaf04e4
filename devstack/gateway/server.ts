/**
 * The local API gateway on `API_PORT`: Kong plus Edge Runtime's main service in one handler
 * (supabase-platform.md §1.9 and §8.1).
 *
 * - `/functions/v1/<name>/...` → the function, which sees the unchanged path `/<name>/...` (§1.4);
 *   unknown name → 404 `Function not found`; CORS preflight answered without auth (Kong's CORS plugin);
 *   `verify_jwt` → hosted 401 bodies; no response started within 150 s → 504 (§1.7).
 * - `/realtime/v1/...` → the Realtime stand-in, when one is attached.
 */
import { dashboardPrefix } from "../dashboard.ts";
import { type FunctionSpec } from "./functions_config.ts";
import { type FetchHandler, loadFunction } from "./function_host.ts";
import { rewriteAuthorization, verifyBearer } from "./auth.ts";
import type { StackKeys } from "../keys.ts";

export interface GatewayOptions {
  functions: FunctionSpec[];
  jwtSecret: string;
  keys: StackKeys;
  /** Handles `/realtime/v1/*`; 404 when absent. */
  realtime?: FetchHandler;
  /** Handles `/dashboard/*` and `/ops-dashboard/*` (local copies of the static dashboards); 404 when absent. */
  dashboard?: FetchHandler;
  /** Time to first byte before 504 (hosted: 150 s, §1.7). */
  requestTimeoutMs?: number;
  log?: (msg: string) => void;
}

interface LoadedFunction {
  spec: FunctionSpec;
  handler?: FetchHandler;
  bootError?: string;
}

const CORS_HEADERS = {
  "access-control-allow-origin": "*",
  "access-control-allow-headers":
    "authorization, x-client-info, apikey, content-type, idempotency-key, accept-encoding",
  "access-control-allow-methods": "GET, POST, PUT, PATCH, DELETE, OPTIONS",
  "access-control-max-age": "3600",
};

/** Boots every function (a boot failure is kept and answered as 503, §1.7) and returns the gateway handler. */
export async function createGateway(opts: GatewayOptions): Promise<{
  fetch: FetchHandler;
  bootErrors: Record<string, string>;
}> {
  const log = opts.log ?? (() => {});
  const secret = new TextEncoder().encode(opts.jwtSecret);
  const timeoutMs = opts.requestTimeoutMs ?? 150_000;
  const loaded = new Map<string, LoadedFunction>();
  for (const spec of opts.functions) {
    try {
      loaded.set(spec.name, { spec, handler: await loadFunction(spec.entrypoint) });
    } catch (err) {
      const message = err instanceof Error ? err.message : String(err);
      log(`function ${spec.name} failed to boot: ${message}`);
      loaded.set(spec.name, { spec, bootError: message });
    }
  }

  async function handleFunction(req: Request, url: URL): Promise<Response> {
    const rest = url.pathname.slice("/functions/v1".length); // "/<name>/..."
    const name = rest.split("/")[1] ?? "";
    const fn = loaded.get(name);
    if (!fn) return new Response("Function not found", { status: 404, headers: { "content-type": "text/plain" } });
    if (req.method === "OPTIONS") return new Response("ok", { status: 200, headers: CORS_HEADERS });

    const headers = rewriteAuthorization(req.headers, opts.keys);
    if (fn.spec.verifyJwt) {
      const failure = await verifyBearer(headers, secret);
      if (failure) return json(failure, 401);
    }
    if (!fn.handler) {
      return json({ code: "BOOT_ERROR", message: "Worker failed to boot (please check logs)" }, 503);
    }
    const forwarded = new Request(new URL(rest + url.search, url.origin), {
      method: req.method,
      headers,
      body: req.body,
    });
    return await withTimeout(fn.handler(forwarded), timeoutMs, name, log);
  }

  const fetch: FetchHandler = async (req) => {
    const url = new URL(req.url);
    try {
      if (url.pathname.startsWith("/functions/v1/")) return await handleFunction(req, url);
      if (url.pathname.startsWith("/realtime/v1/") && opts.realtime) return await opts.realtime(req);
      if (dashboardPrefix(url.pathname) && opts.dashboard) {
        return await opts.dashboard(req);
      }
      return json({ message: "no Route matched with those values" }, 404);
    } catch (err) {
      log(`gateway: ${req.method} ${url.pathname} failed: ${err instanceof Error ? err.stack : err}`);
      return json({ code: "WORKER_ERROR", message: "Function exited due to an error (please check logs)" }, 500);
    }
  };

  const bootErrors = Object.fromEntries(
    [...loaded.values()].filter((f) => f.bootError).map((f) => [f.spec.name, f.bootError!]),
  );
  return { fetch, bootErrors };
}

async function withTimeout(
  response: Response | Promise<Response>,
  ms: number,
  name: string,
  log: (m: string) => void,
): Promise<Response> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<Response>((resolve) => {
    timer = setTimeout(() => {
      log(`function ${name}: no response within ${ms} ms, answering 504`);
      resolve(json({ code: 504, message: "Request idle timeout" }, 504));
    }, ms);
  });
  try {
    // The response goes back as the function made it: hosted functions answer CORS themselves (§1.9).
    return await Promise.race([Promise.resolve(response), timeout]);
  } finally {
    clearTimeout(timer);
  }
}

function json(body: unknown, status: number): Response {
  return new Response(JSON.stringify(body), {
    status,
    headers: { "content-type": "application/json", ...CORS_HEADERS },
  });
}
