/**
 * Serves the live dashboard (client/dashboard/) at `/dashboard/` on the local gateway, bundled from
 * client/dashboard/main.ts (the API is the origin that served the page). Hosted Supabase rewrites HTML answers of
 * functions to text/plain (supabase-platform.md §1.7), so in production the dashboard is a static site built with
 * `npm run dashboard:build` (dashboard_build.ts). Locally the bundle is built on first request and kept in memory.
 */
const DASHBOARD = new URL("../client/dashboard/", import.meta.url);

/** A handler for `/dashboard`, `/dashboard/` and `/dashboard/app.js`. */
export function createDashboard(log: (m: string) => void): (req: Request) => Promise<Response> {
  let bundle: Promise<Uint8Array<ArrayBuffer>> | undefined;
  const build = async () => {
    const out = await new Deno.Command(Deno.execPath(), {
      args: ["bundle", "--platform", "browser", new URL("main.ts", DASHBOARD).pathname],
      stdout: "piped",
      stderr: "piped",
    }).output();
    if (!out.success) throw new Error(`bundling the dashboard failed:\n${new TextDecoder().decode(out.stderr)}`);
    log(`dashboard bundled (${out.stdout.length} bytes)`);
    return out.stdout;
  };
  return async (req) => {
    const path = new URL(req.url).pathname;
    if (path === "/dashboard") return Response.redirect(new URL("/dashboard/", req.url), 301);
    if (path === "/dashboard/" || path === "/dashboard/index.html") {
      return new Response(await Deno.readFile(new URL("index.html", DASHBOARD)), {
        headers: { "content-type": "text/html; charset=utf-8" },
      });
    }
    if (path === "/dashboard/app.js") {
      bundle ??= build();
      try {
        return new Response(await bundle, { headers: { "content-type": "text/javascript; charset=utf-8" } });
      } catch (err) {
        bundle = undefined; // try again on the next request
        log(String(err));
        return new Response(String(err), { status: 500, headers: { "content-type": "text/plain" } });
      }
    }
    return new Response("Not found", { status: 404 });
  };
}
