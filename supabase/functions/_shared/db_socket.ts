/**
 * The database connections' sockets, with Nagle's algorithm off (TCP_NODELAY), which postgres.js does not set.
 * With it on, a small write that follows a write not yet acknowledged waits for the acknowledgement, and the server
 * delays that by up to 40 ms: every `COPY … FROM STDIN` (the CopyDone after the data) took 45-90 ms for a chunk of
 * 1 KiB or 1 MiB alike; with it off, 1 MiB took 4.5-6.6 ms (copy_chunk.ts; bench/RESULTS.md "Files").
 *
 * postgres.js calls this for every new connection and treats what it gets as its socket: it attaches its error and
 * close handlers and writes the startup message, which the socket holds until it is connected (as any net.Socket
 * does). The socket is handed over at once, still connecting: a factory that waits for the connection and rejects
 * when it fails leaves postgres.js with no socket to get `close` from, so that connection never reconnects and the
 * pool hangs after the database restarts (found here: health stayed down after a Postgres restart). `setNoDelay`
 * before the connection is kept and applied when it connects (measured: a 1 KiB COPY 0.4 ms with it, 88 ms without).
 * postgres.js still negotiates TLS on it when the URL asks for it (`sslmode`); its connect_timeout covers the
 * connection. Only the first host of a multi-host URL is used (Supabase URLs name one).
 */
import net from "node:net";

/** postgres.js's `socket` option: a TCP (or Unix) socket with TCP_NODELAY, connecting. */
export function noDelaySocket(options: { host: string[]; port: number[]; path?: string }): net.Socket {
  if (options.path) return net.connect(options.path);
  return net.connect(options.port[0], options.host[0]).setNoDelay(true);
}
