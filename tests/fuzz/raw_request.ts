/**
 * One HTTP request with the path sent exactly as given (fetch refuses or rewrites some of what a hostile client
 * sends, such as percent-encoded bytes that are not UTF-8), over node:http with a keep-alive agent.
 */
import http from "node:http";

const agent = new http.Agent({ keepAlive: true, maxSockets: 4 });

export interface RawAnswer {
  status: number;
  contentType: string;
  body: string;
}

/** Sends `method path` to `baseUrl` with `headers` and `body`; resolves with the status and the whole body. */
export function rawRequest(
  baseUrl: string,
  method: string,
  path: string,
  headers: Record<string, string>,
  body?: Uint8Array,
): Promise<RawAnswer> {
  const url = new URL(baseUrl);
  return new Promise((resolve, reject) => {
    const req = http.request({
      host: url.hostname,
      port: Number(url.port),
      method,
      path,
      headers: body ? { ...headers, "content-length": String(body.length) } : headers,
      agent,
      timeout: 30_000,
    }, (res) => {
      const parts: Uint8Array[] = [];
      res.on("data", (d: Uint8Array) => parts.push(d));
      res.on("end", () =>
        resolve({
          status: res.statusCode ?? 0,
          contentType: String(res.headers["content-type"] ?? ""),
          body: new TextDecoder().decode(Uint8Array.from(parts.flatMap((p) => [...p]))),
        }));
      res.on("error", reject);
    });
    req.on("timeout", () => req.destroy(new Error(`no answer to ${method} ${path.slice(0, 80)} within 30 s`)));
    req.on("error", reject);
    if (body && method !== "GET" && method !== "HEAD") req.end(body);
    else req.end();
  });
}

/** Closes the kept-alive sockets (at the end of the test, so no resource is left open). */
export function closeRawRequests(): void {
  agent.destroy();
}
