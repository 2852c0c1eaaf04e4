/**
 * The driver guard against the real database: postgres.js 3.4.9 drops the promise of its internal array-types query
 * (porsager/postgres#1192, #1223), so a new connection terminated while it fetches its types raised an unhandled
 * rejection that ended the isolate (the fault benchmark's stack died of it). The guard keeps the isolate alive and
 * says so; other rejections are not its business. The type query is held on a lock of pg_type, then terminated.
 */
import assert from "node:assert/strict";
import postgres from "postgres";
import { installDriverGuard, isNullSocketWrite, isTypeFetchFailure, onDriverFault } from "./driver_guard.ts";

const DB_URL = Deno.env.get("SUPABASE_DB_URL");

Deno.test("isTypeFetchFailure() knows postgres.js's type query and nothing else", () => {
  const typeQuery = Object.assign(new Error("terminating connection due to administrator command"), {
    query: `
      select b.oid, b.typarray
      from pg_catalog.pg_type a
      left join pg_catalog.pg_type b on b.oid = a.typelem
      where a.typcategory = 'A'
      group by b.oid, b.typarray
      order by b.oid
    `,
  });
  assert.equal(isTypeFetchFailure(typeQuery), true);
  assert.equal(isTypeFetchFailure(Object.assign(new Error("x"), { query: "select 1" })), false);
  assert.equal(isTypeFetchFailure(new Error("select b.oid, b.typarray from pg_catalog.pg_type a")), false);
  assert.equal(isTypeFetchFailure("select b.oid"), false);
});

/**
 * A TCP proxy to Postgres that holds back the client's first statement containing `hold` until `onHold` (given the
 * backend's pid) has run: the test terminates that backend meanwhile, so the statement is in flight when it dies.
 */
function holdingProxy(pgUrl: string, hold: string, onHold: (pid: number) => Promise<void>) {
  const target = new URL(pgUrl);
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const decoder = new TextDecoder();
  let held = false;
  const conns: Deno.Conn[] = [];
  (async () => {
    for await (const client of listener) {
      const server = await Deno.connect({ hostname: target.hostname, port: Number(target.port) });
      conns.push(client, server);
      let pid = 0;
      // Server to client, as it comes; BackendKeyData ('K', length 12) names the backend's pid.
      server.readable.pipeThrough(
        new TransformStream<Uint8Array, Uint8Array>({
          transform(chunk, out) {
            for (let i = 0; i + 9 <= chunk.length; i++) {
              if (chunk[i] === 0x4b && new DataView(chunk.buffer, chunk.byteOffset + i + 1, 4).getInt32(0) === 12) {
                pid = new DataView(chunk.buffer, chunk.byteOffset + i + 5, 4).getInt32(0);
                break;
              }
            }
            out.enqueue(chunk);
          },
        }),
      ).pipeTo(client.writable).catch(() => "the connection was closed");
      client.readable.pipeThrough(
        new TransformStream<Uint8Array, Uint8Array>({
          async transform(chunk, out) {
            if (!held && decoder.decode(chunk).includes(hold)) {
              held = true;
              await onHold(pid);
            }
            out.enqueue(chunk);
          },
        }),
      ).pipeTo(server.writable).catch(() => "the connection was closed");
    }
  })().catch(() => "the listener was closed");
  const port = (listener.addr as Deno.NetAddr).port;
  const url = new URL(pgUrl);
  url.hostname = "127.0.0.1";
  url.port = String(port);
  return {
    url: url.toString(),
    get held() {
      return held;
    },
    close() {
      listener.close();
      for (const c of conns) {
        try {
          c.close();
        } catch (err) {
          if (!(err instanceof Deno.errors.BadResource)) throw err;
        }
      }
    },
  };
}

Deno.test({
  name: "installDriverGuard() keeps the isolate alive when a new connection is terminated while it fetches its types",
  ignore: DB_URL === undefined,
  async fn() {
    const lines: string[] = [];
    installDriverGuard((m) => lines.push(m));
    const admin = postgres(DB_URL!, { prepare: false, max: 1, onnotice: () => {} });
    const proxy = holdingProxy(DB_URL!, "b.typarray", async (pid) => {
      await admin`select pg_terminate_backend(${pid}::int)`;
      await new Promise((r) => setTimeout(r, 200)); // the FATAL reaches the client before its query goes out
    });
    const client = postgres(proxy.url, { prepare: false, max: 1, onnotice: () => {} });
    try {
      // The client's first query opens a connection, whose type query is held while its backend is terminated.
      const first = await client`select 1 as one`.then(() => "answered", (err: Error) => `failed: ${err.message}`);
      assert.ok(proxy.held, "the type query went through the proxy");
      for (let i = 0; i < 100 && !lines.some((l) => /type fetch/.test(l)); i++) {
        await new Promise((r) => setTimeout(r, 20));
      }
      assert.ok(
        lines.some((l) => /type fetch on a new connection failed .*57P01/.test(l)),
        `the guard did not report the rejection (the first query ${first}): ${lines.join(" | ")}`,
      );
      // The client goes on with a new connection.
      assert.deepEqual([...await client`select 1 as one`], [{ one: 1 }]);
    } finally {
      await client.end({ timeout: 1 });
      await admin.end();
      proxy.close();
    }
  },
});

Deno.test("installDriverGuard() keeps the isolate alive when the null-socket write surfaces as an unhandled rejection", async () => {
  installDriverGuard(() => {});
  let replaced = 0;
  const unregister = onDriverFault(() => replaced++);
  try {
    // The shape the fault benchmark's stack died of: write() → nextWrite() inside a transaction's query job.
    const error = new TypeError("Cannot read properties of null (reading 'write')");
    Object.defineProperty(error, "stack", {
      value: `TypeError: Cannot read properties of null (reading 'write')
    at nextWrite (file:///root/.cache/deno/npm/registry.npmjs.org/postgres/3.4.9/src/connection.js:255:22)
    at write (file:///root/.cache/deno/npm/registry.npmjs.org/postgres/3.4.9/src/connection.js:249:14)
    at Object.execute (file:///root/.cache/deno/npm/registry.npmjs.org/postgres/3.4.9/src/connection.js:179:28)
    at Query.handler (file:///root/.cache/deno/npm/registry.npmjs.org/postgres/3.4.9/src/index.js:295:15)`,
    });
    assert.equal(isNullSocketWrite(error), true);
    Promise.reject(error); // nobody handles it: without the guard, the test process ends here
    for (let i = 0; i < 50 && replaced === 0; i++) await new Promise((r) => setTimeout(r, 10));
    assert.equal(replaced, 1, "the clients were told to replace their connections");
  } finally {
    unregister();
  }
});
