/**
 * The database connections' sockets, with Nagle's algorithm off (TCP_NODELAY), which postgres.js does not set.
 * With it on, a small write that follows a write not yet acknowledged waits for the acknowledgement, and the server
 * delays that by up to 40 ms: every `COPY … FROM STDIN` (the CopyDone after the data) took 45-90 ms for a chunk of
 * 1 KiB or 1 MiB alike; with it off, 1 MiB took 4.5-6.6 ms (copy_chunk.ts; bench/RESULTS.md "Files").
 *
 * postgres.js calls this for every new connection and treats the socket as connected; it still negotiates TLS on it
 * when the URL asks for it (`sslmode`). Only the first host of a multi-host URL is used (Supabase URLs name one).
 */
import net from "node:net";

/**
 * postgres.js's `socket` option: a connected TCP (or Unix) socket with TCP_NODELAY, within the connection's
 * `connect_timeout` (seconds; postgres.js starts its own timer only once the socket is handed over).
 */
export function noDelaySocket(
  options: { host: string[]; port: number[]; path?: string; connect_timeout?: number },
): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const socket = options.path ? net.connect(options.path) : net.connect(options.port[0], options.host[0]);
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`connecting to the database took longer than ${options.connect_timeout ?? 30} s`));
    }, (options.connect_timeout ?? 30) * 1000);
    socket.once("connect", () => {
      clearTimeout(timer);
      socket.off("error", failed);
      if (!options.path) socket.setNoDelay(true);
      resolve(socket);
    });
    const failed = (err: Error) => {
      clearTimeout(timer);
      reject(err);
    };
    socket.once("error", failed);
  });
}
