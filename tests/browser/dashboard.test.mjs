// The live dashboard in headless Chromium against the running stack: a token in the address is ignored (not used,
// not stored, taken out of the address bar); signed in through the form it lists the user's messages with
// per-provider figures, shows a new message arrive and complete without a reload (Realtime in the browser), and
// fetches a payload in the browser and verifies its SHA-256 (the SDK's WebCrypto path); the token is kept in
// memory only.
import { test } from "node:test";
import assert from "node:assert/strict";
import { createHmac, randomUUID } from "node:crypto";
import { chromium } from "playwright-core";

const API = process.env.SUPABASE_URL;
const SECRET = process.env.JWT_SECRET;
assert.ok(API && SECRET, "SUPABASE_URL and JWT_SECRET come from the test runner (npm test)");

const b64url = (v) => Buffer.from(typeof v === "string" ? v : JSON.stringify(v)).toString("base64url");
function userToken(sub) {
  const now = Math.floor(Date.now() / 1000);
  const head = `${b64url({ alg: "HS256", typ: "JWT" })}.${b64url({ role: "authenticated", aud: "authenticated", sub, iat: now, exp: now + 3600 })}`;
  return `${head}.${createHmac("sha256", SECRET).update(head).digest("base64url")}`;
}

async function invoke(token, content, mode = "sync") {
  const res = await fetch(`${API}/functions/v1/tool-invoke`, {
    method: "POST",
    headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
    body: JSON.stringify({ tool: "chat", provider: "kimi", mode, input: { messages: [{ role: "user", content }] } }),
  });
  const body = await res.json();
  assert.equal(res.status, mode === "sync" ? 200 : 202, JSON.stringify(body));
  return body;
}

test("the dashboard shows messages live and verifies a payload in the browser", { timeout: 120_000 }, async () => {
  const token = userToken(randomUUID());
  const first = await invoke(token, 'dashboard test #standin {"finish_reason": "length", "bytes": 5000}');
  const browser = await chromium.launch({
    executablePath: "/usr/bin/chromium",
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
      "--disable-component-update", "--no-first-run"],
  });
  const pageErrors = [];
  try {
    const page = await browser.newPage();
    page.on("pageerror", (err) => pageErrors.push(err.message));
    const apiRequests = [];
    page.on("request", (req) => {
      const path = new URL(req.url()).pathname;
      if (path.startsWith("/functions/") || path.startsWith("/realtime/")) apiRequests.push(req.url());
    });
    const storage = () =>
      page.evaluate(() => ({ local: localStorage.length, session: sessionStorage.length, cookies: document.cookie }));

    // A token in the query string is not used and not kept: no API call, nothing stored, gone from the address.
    await page.goto(`${API}/dashboard/?token=${token}`);
    await page.locator('[data-testid="error"]', { hasText: "a token in the address is ignored" }).waitFor({
      timeout: 20_000,
    });
    assert.equal(new URL(page.url()).search, "", "the token is taken out of the address bar");
    assert.equal(await page.locator("#live.on").count(), 0, "not signed in");
    assert.equal(await page.locator('[data-testid="count"]').textContent(), "0");
    assert.deepEqual(apiRequests, [], "no API request was made with the token from the address");
    assert.deepEqual(await storage(), { local: 0, session: 0, cookies: "" });

    // A refused token says why and leaves the form for another try.
    await page.locator("#token").fill("not-a-valid-token");
    await page.locator('#auth button[type="submit"]').click();
    await page.waitForFunction(() => {
      const error = document.getElementById("error").textContent;
      return error !== "" && !error.includes("address") && !document.getElementById("auth").hidden;
    }, null, { timeout: 20_000 });

    // Signing in through the form.
    await page.locator("#token").fill(token);
    await page.locator('#auth button[type="submit"]').click();
    const firstRow = page.locator(`tr[data-id="${first.transaction_id}"]`);
    await firstRow.waitFor({ timeout: 60_000 });
    assert.equal(await firstRow.getAttribute("data-status"), "completed");
    await page.locator("#live.on").waitFor({ timeout: 20_000 });

    const kimi = page.locator('tr[data-provider="kimi"] td');
    assert.equal(await kimi.nth(1).textContent(), "1", "one kimi message");
    assert.equal(await kimi.nth(6).textContent(), "100.0 %", "its finish_reason length counts as truncated");

    // A message created after the page loaded arrives over Realtime and completes, without a reload.
    const second = await invoke(token, 'live #standin {"latency_ms": 1500}', "async");
    const secondRow = page.locator(`tr[data-id="${second.transaction_id}"]`);
    await secondRow.waitFor({ timeout: 20_000 });
    await page.locator(`tr[data-id="${second.transaction_id}"][data-status="completed"]`).waitFor({ timeout: 20_000 });
    assert.equal(await page.locator('[data-testid="count"]').textContent(), "2");

    // Fetch and verify in the browser.
    await firstRow.locator("button").click();
    const integrity = firstRow.locator("td.integrity.verified");
    await integrity.waitFor({ timeout: 20_000 });
    const text = await integrity.textContent();
    assert.ok(text.startsWith(`verified ${first.checksum.slice(0, 19)}`), text);
    assert.ok(text.includes(`(${first.payload_size_bytes} bytes)`), text);

    // The token lives in the page's memory only.
    assert.deepEqual(await storage(), { local: 0, session: 0, cookies: "" });
    assert.equal(await page.locator("#token").inputValue(), "", "not left in the form");
    assert.ok(!page.url().includes(token));

    await page.screenshot({ path: new URL("../../.devstack/dashboard.png", import.meta.url).pathname, fullPage: true });
    assert.deepEqual(pageErrors, []);
  } finally {
    await browser.close();
  }
});
