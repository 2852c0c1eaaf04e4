/**
 * Performs one queued pg_net request with fetch and turns the outcome into a `net._http_response` row, the way
 * pg_net's curl worker does (../shared/reference/supabase-platform.md §2.3, §8.2).
 *
 * @module
 */

/** The pg_net version this stand-in copies (§0.1: supabase/pg_net EXTVERSION = 0.20.4). */
export const PG_NET_VERSION = "0.20.4";

/** §2.3: the worker adds `User-Agent: pg_net/<version>` to every request. */
export const PG_NET_USER_AGENT = `pg_net/${PG_NET_VERSION}`;

/** One row taken from `net.http_request_queue` (headers already flattened by `jsonb_each_text`, §2.3). */
export interface QueuedRequest {
  id: string;
  method: string;
  url: string;
  timeoutMs: number;
  headers: [string, string][];
  body: Uint8Array | null;
}

/** One row for `net._http_response`, columns named as in §2.2. */
export interface ResponseRow {
  id: string;
  status_code: number | null;
  content: string | null;
  headers: Record<string, string> | null;
  content_type: string | null;
  timed_out: boolean;
  error_msg: string | null;
}

/** An error whose message already is the curl_easy_strerror text pg_net would record. */
class CurlError extends Error {}

const decoder = new TextDecoder();

/**
 * Performs `req` and never throws: failures become rows with `error_msg` (§2.3 step 4).
 *
 * @param req the dequeued request
 * @param fetchFn the fetch to use (injected by tests)
 * @param log where to report the underlying error of a failed request
 * @example
 * const row = await performRequest({ id: "1", method: "GET", url: "http://127.0.0.1:8080/", timeoutMs: 5000,
 *   headers: [], body: null });
 */
export async function performRequest(
  req: QueuedRequest,
  fetchFn: typeof fetch = fetch,
  log: (msg: string) => void = () => {},
): Promise<ResponseRow> {
  const started = performance.now();
  // §2.3: CURLOPT_TIMEOUT_MS covers the whole transfer, body included; 0 means no timeout in curl. An own timer
  // instead of AbortSignal.timeout() so that it is cleared as soon as the request ends.
  const abort = new AbortController();
  const timer = req.timeoutMs > 0
    ? setTimeout(() => abort.abort(new DOMException("pg_net request timed out", "TimeoutError")), req.timeoutMs)
    : undefined;
  try {
    const res = await fetchFn(checkedUrl(req.url), {
      method: req.method.toUpperCase(),
      headers: requestHeaders(req.headers),
      body: req.body === null ? undefined : new Uint8Array(req.body),
      redirect: "follow", // §2.3: FOLLOWLOCATION = true
      signal: abort.signal,
    });
    const bytes = new Uint8Array(await res.arrayBuffer());
    // pg_net stores the body as a C string: it ends at the first NUL byte, and an empty body is NULL (§2.3).
    const end = bytes.indexOf(0);
    const content = decoder.decode(end >= 0 ? bytes.subarray(0, end) : bytes);
    return {
      id: req.id,
      status_code: res.status,
      content: content === "" ? null : content,
      headers: Object.fromEntries(res.headers),
      content_type: res.headers.get("content-type"),
      timed_out: false,
      error_msg: null,
    };
  } catch (err) {
    const failed = { id: req.id, status_code: null, content: null, headers: null, content_type: null };
    if (abort.signal.aborted) {
      return { ...failed, timed_out: true, error_msg: timeoutMessage(req.timeoutMs, performance.now() - started) };
    }
    const message = curlMessage(err);
    log(`request ${req.id} ${req.method} ${req.url} failed: ${message} (${describe(err)})`);
    return { ...failed, timed_out: false, error_msg: message };
  } finally {
    clearTimeout(timer);
  }
}

/**
 * The timeout text of pg_net's `src/errors.c` (§2.3). fetch exposes no per-phase timings, so the whole time is
 * reported as HTTP Request/Response time and the DNS and handshake times as 0.
 */
export function timeoutMessage(timeoutMs: number, totalMs: number): string {
  const f = (ms: number) => ms.toFixed(6);
  return `Timeout of ${timeoutMs} ms reached. Total time: ${f(totalMs)} ms (DNS time: ${f(0)} ms, ` +
    `TCP/SSL handshake time: ${f(0)} ms, HTTP Request/Response time: ${f(totalMs)} ms)`;
}

/** Maps a fetch failure to the curl_easy_strerror text pg_net records (§2.3); unknown errors keep their text. */
export function curlMessage(err: unknown): string {
  if (err instanceof CurlError) return err.message;
  const text = describe(err);
  const known: [RegExp, string][] = [
    [/connection refused|tcp connect error|network is unreachable|no route to host/i, "Couldn't connect to server"],
    [/dns error|failed to lookup address|name or service not known/i, "Couldn't resolve host name"],
    [/connection closed before message completed/i, "Server returned nothing (no headers, no status line)"],
    [/error reading a body/i, "Transferred a partial file"],
    [/connection reset|broken pipe/i, "Failure when receiving data from the peer"],
    [/certificate|tls|ssl/i, "SSL peer certificate or SSH remote key was not OK"],
    [/redirect/i, "Number of redirects hit maximum amount"],
    [/invalid url/i, "URL using bad/illegal format or missing URL"],
  ];
  return known.find(([pattern]) => pattern.test(text))?.[1] ?? text;
}

/** §2.3: protocols are limited to http and https (Deno's fetch would also read file: and data: URLs). */
function checkedUrl(raw: string): URL {
  let url: URL;
  try {
    url = new URL(raw);
  } catch (err) {
    throw new CurlError("URL using bad/illegal format or missing URL", { cause: err });
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") throw new CurlError("Unsupported protocol");
  return url;
}

function requestHeaders(pairs: [string, string][]): Headers {
  const headers = new Headers();
  for (const [name, value] of pairs) headers.append(name, value);
  // Appended after the caller's headers, like pg_net's curl_slist_append (§2.3).
  headers.append("User-Agent", PG_NET_USER_AGENT);
  return headers;
}

/** The message of an error including its cause chain, for logs and pattern matching. */
export function describe(err: unknown): string {
  if (!(err instanceof Error)) return String(err);
  return err.cause === undefined ? err.message : `${err.message}: ${describe(err.cause)}`;
}
