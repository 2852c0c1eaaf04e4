// The operator dashboard in headless Chromium against the running stack: after traffic its six charts have drawn
// lines (checked in the canvases' pixels and in a saved screenshot's pixels), the providers table and the open
// error groups are shown, a group is resolved with its button, and new traffic arrives live over the private
// Realtime topic `ops` (a fold broadcasts `rollup`) without a reload. The key is typed into the form, never put in
// the URL. Screenshot: .devstack/artifacts/ops-dashboard.png.
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdirSync, writeFileSync } from "node:fs";
import { randomUUID } from "node:crypto";
import { chromium } from "playwright-core";
import { countColour, decodePng } from "./png.mjs";

const API = process.env.SUPABASE_URL;
const SERVICE = process.env.SUPABASE_SERVICE_ROLE_KEY;
assert.ok(API && SERVICE, "SUPABASE_URL and SUPABASE_SERVICE_ROLE_KEY come from the test runner (npm test)");
const ARTIFACTS = new URL("../../.devstack/artifacts/", import.meta.url).pathname;

async function call(path, body) {
  const res = await fetch(`${API}/functions/v1/${path}`, {
    method: "POST",
    headers: { authorization: `Bearer ${SERVICE}`, "content-type": "application/json" },
    body: JSON.stringify(body),
  });
  return { status: res.status, json: await res.json() };
}

const invoke = (provider, directive) =>
  call("tool-invoke", {
    tool: "chat",
    provider,
    owner_id: randomUUID(),
    input: { messages: [{ role: "user", content: `ops dashboard ${randomUUID()} #standin ${JSON.stringify(directive)}` }] },
  });

/** The request colour of the "Requests per second" line (charts.ts). */
const RPS_BLUE = [0x1f, 0x6f, 0xeb];

test("the operator dashboard draws its charts after traffic, lists providers and errors, and updates live", {
  timeout: 180_000,
}, async () => {
  for (const bytes of [800, 4000, 20000, 1500]) assert.equal((await invoke("kimi", { bytes })).status, 200);
  const failed = await invoke("glm", { status: 400 });
  assert.equal(failed.status, 502);
  assert.equal((await call("ops/fold", { settle_seconds: 0 })).status, 200);

  const browser = await chromium.launch({
    executablePath: "/usr/bin/chromium",
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
      "--disable-component-update", "--no-first-run"],
  });
  const pageErrors = [];
  try {
    const page = await browser.newPage({ viewport: { width: 1300, height: 1000 } });
    page.on("pageerror", (err) => pageErrors.push(err.message));
    await page.goto(`${API}/ops-dashboard/`);
    await page.fill("#token", SERVICE);
    await page.click('#auth button[type="submit"]');
    await page.locator("body[data-loaded=true]").waitFor({ timeout: 60_000 });
    assert.equal(new URL(page.url()).search, "", "the key never goes into the URL");
    assert.equal(await page.locator("#auth").isHidden(), true);
    await page.locator("#live.on").waitFor({ timeout: 20_000 });
    // The screenshot first, so that a failing check below leaves it to look at; its pixels are checked further down.
    mkdirSync(ARTIFACTS, { recursive: true });
    const shot = await page.screenshot({ fullPage: true });
    writeFileSync(`${ARTIFACTS}ops-dashboard.png`, shot);

    // Six charts, each a uPlot canvas.
    assert.equal(await page.locator("#charts .chart canvas").count(), 6);
    const before = Number(await page.locator('[data-testid="requests"]').textContent());
    assert.ok(before >= 5, `requests in the last hour: ${before}`);

    // Drawn pixels, read from the requests chart's canvas: the line's colour is on it.
    const drawn = (chart, colour) =>
      page.locator(`.chart[data-chart="${chart}"] canvas`).evaluate((canvas, [r, g, b]) => {
        const { data } = canvas.getContext("2d").getImageData(0, 0, canvas.width, canvas.height);
        let n = 0;
        for (let i = 0; i < data.length; i += 4) {
          if (Math.abs(data[i] - r) < 40 && Math.abs(data[i + 1] - g) < 40 && Math.abs(data[i + 2] - b) < 40) n++;
        }
        return n;
      }, colour);
    const linePixels = await drawn("rps", RPS_BLUE);
    assert.ok(linePixels > 20, `line pixels on the requests chart: ${linePixels}`);
    const p50Pixels = (await drawn("provider", RPS_BLUE)) + (await drawn("provider", [0xbf, 0x87, 0x00]));
    assert.ok(p50Pixels > 10, `p50/p95 pixels on the provider time chart: ${p50Pixels}`);
    // p50 and p95 (drawn over it where they meet): either colour shows the chart has drawn.
    const overheadPixels = (await drawn("overhead", [0x1a, 0x7f, 0x37])) + (await drawn("overhead", [0x82, 0x50, 0xdf]));
    assert.ok(overheadPixels > 10, `p50/p95 pixels on the overhead chart: ${overheadPixels}`);

    // Providers and error groups.
    const kimi = page.locator('[data-testid="providers"] tr[data-provider="kimi"][data-model="(all)"] td');
    assert.equal(await kimi.nth(2).textContent(), "closed");
    assert.ok(Number(await kimi.nth(4).textContent()) >= 4);
    assert.match(await kimi.nth(6).textContent(), /^\d+(\.\d+)? ms$/, "p50 of the last 5 minutes");
    const groupRow = page.locator('[data-testid="errors"] tr', { hasText: "provider_error" }).filter({
      hasText: failed.json.transaction_id,
    });
    await groupRow.waitFor({ timeout: 20_000 });

    // The saved screenshot and the charts' own: drawn pixels, not only DOM nodes.
    const charts = decodePng(await page.locator("#charts").screenshot());
    const blue = countColour(charts, RPS_BLUE);
    assert.ok(blue > 20, `requests-line pixels in the charts' screenshot: ${blue}`);
    const whole = decodePng(shot);
    assert.ok(whole.width >= 1000 && whole.height >= 600, `${whole.width}x${whole.height}`);

    // Live: new traffic, then a fold (which broadcasts `rollup` on ops): the page updates without a reload.
    for (let i = 0; i < 3; i++) assert.equal((await invoke("kimi", { bytes: 300 })).status, 200);
    assert.equal((await call("ops/fold", { settle_seconds: 0 })).status, 200);
    await page.waitForFunction(
      (n) => Number(document.querySelector('[data-testid="requests"]').textContent) >= n + 3,
      before,
      { timeout: 20_000 },
    );
    assert.match(await page.locator("#last-event").textContent(), /rollup|error_group|alert/);

    // Resolve the failure's group with its button: it leaves the open list.
    await groupRow.locator("button").click();
    await groupRow.waitFor({ state: "detached", timeout: 20_000 });
    assert.deepEqual(pageErrors, []);
  } finally {
    await browser.close();
  }
});
