/**
 * Serves the live dashboards on the local gateway: the user dashboard (client/dashboard/, entry main.ts: the API is
 * the origin that served the page) at `/dashboard/` and the operator dashboard (client/ops-dashboard/) at
 * `/ops-dashboard/`. Hosted Supabase rewrites HTML answers of functions to text/plain (supabase-platform.md §1.7), so
 * in production each is a static site (`npm run dashboard:build` for the user dashboard, dashboard_build.ts; `deno
 * bundle --platform browser -o app.js client/ops-dashboard/app.ts` plus index.html for the operator's). Locally each
 * bundle is built on its first request and kept in memory.
 */
/** Each dashboard's folder and the module its bundle starts from. */
const SITES: Record<string, { dir: URL; entry: string }> = {
  "/dashboard": { dir: new URL("../client/dashboard/", import.meta.url), entry: "main.ts" },
  "/ops-dashboard": { dir: new URL("../client/ops-dashboard/", import.meta.url), entry: "app.ts" },
};

/** The site prefix `path` falls under (`/dashboard`, `/ops-dashboard`), if any. */
export function dashboardPrefix(path: string): string | undefined {
  return Object.keys(SITES).find((p) => path === p || path.startsWith(`${p}/`));
}

/** A handler for `<prefix>`, `<prefix>/` and `<prefix>/app.js` of every dashboard. */
export function createDashboard(log: (m: string) => void): (req: Request) => Promise<Response> {
  const bundles = new Map<string, Promise<Uint8Array<ArrayBuffer>>>();
  const build = async ({ dir, entry }: { dir: URL; entry: string }) => {
    const out = await new Deno.Command(Deno.execPath(), {
      args: ["bundle", "--platform", "browser", new URL(entry, dir).pathname],
      stdout: "piped",
      stderr: "piped",
    }).output();
    if (!out.success) throw new Error(`bundling ${dir.pathname} failed:\n${new TextDecoder().decode(out.stderr)}`);
    log(`${dir.pathname} bundled (${out.stdout.length} bytes)`);
    return out.stdout;
  };
  return async (req) => {
    const path = new URL(req.url).pathname;
    const prefix = dashboardPrefix(path);
    if (!prefix) return new Response("Not found", { status: 404 });
    const site = SITES[prefix];
    const dir = site.dir;
    if (path === prefix) return Response.redirect(new URL(`${prefix}/`, req.url), 301);
    if (path === `${prefix}/` || path === `${prefix}/index.html`) {
      return new Response(await Deno.readFile(new URL("index.html", dir)), {
        headers: { "content-type": "text/html; charset=utf-8" },
      });
    }
    if (path === `${prefix}/app.js`) {
      if (!bundles.has(prefix)) bundles.set(prefix, build(site));
      try {
        return new Response(await bundles.get(prefix)!, {
          headers: { "content-type": "text/javascript; charset=utf-8" },
        });
      } catch (err) {
        bundles.delete(prefix); // try again on the next request
        log(String(err));
        return new Response(String(err), { status: 500, headers: { "content-type": "text/plain" } });
      }
    }
    return new Response("Not found", { status: 404 });
  };
}
