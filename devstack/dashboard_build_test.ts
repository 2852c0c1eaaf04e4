/** The static dashboard build fixes the API URL in the bundle and copies the page. */
import assert from "node:assert/strict";
import { buildDashboard } from "./dashboard_build.ts";

Deno.test("buildDashboard() bundles the page with the API URL fixed in app.js", async () => {
  const out = await Deno.makeTempDir();
  try {
    await buildDashboard("https://abcdefgh.supabase.co/", `${out}/site`);
    const app = await Deno.readTextFile(`${out}/site/app.js`);
    assert.ok(app.includes('mountDashboard("https://abcdefgh.supabase.co")'), "the entry fixes the URL");
    const page = await Deno.readTextFile(`${out}/site/index.html`);
    assert.ok(page.includes('<script type="module" src="./app.js"></script>'));
    assert.ok(page.includes('<meta name="referrer" content="no-referrer">'));
  } finally {
    await Deno.remove(out, { recursive: true });
  }
});

Deno.test("buildDashboard() refuses a URL that is not plain http(s)", async () => {
  for (const url of ["ftp://example.test", "https://example.test/?token=x", "https://example.test/#x"]) {
    await assert.rejects(buildDashboard(url, "/nonexistent/never-written"), /must be an http\(s\) URL/, url);
  }
});
