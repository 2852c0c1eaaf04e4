// The user dashboard shows why a failed message failed (meta.error: code and message, in full) and keeps long
// values on the page: they wrap instead of being cut off or pushed past the right edge.
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
  const head = `${b64url({ alg: "HS256", typ: "JWT" })}.${
    b64url({ role: "authenticated", aud: "authenticated", sub, iat: now, exp: now + 3600 })
  }`;
  return `${head}.${createHmac("sha256", SECRET).update(head).digest("base64url")}`;
}

test("the dashboard shows why a message failed, in full, and wraps long values", { timeout: 120_000 }, async () => {
  const token = userToken(randomUUID());
  const res = await fetch(`${API}/functions/v1/tool-invoke`, {
    method: "POST",
    headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
    body: JSON.stringify({
      tool: "chat",
      provider: "glm",
      input: { messages: [{ role: "user", content: `why ${randomUUID()} #standin {"status": 400}` }] },
    }),
  });
  const failed = await res.json();
  assert.equal(res.status, 502);
  const browser = await chromium.launch({
    executablePath: "/usr/bin/chromium",
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
      "--disable-component-update", "--no-first-run"],
  });
  try {
    const page = await browser.newPage({ viewport: { width: 900, height: 800 } });
    await page.goto(`${API}/dashboard/`);
    await page.fill("#token", token);
    await page.click('#auth button[type="submit"]');
    // The table is redrawn on every live event (the watcher's observation of the failure comes a moment later):
    // wait for that, then measure in one go inside the page.
    await page.locator(`tr[data-id="${failed.transaction_id}"] td.verdict-error`).waitFor({ timeout: 60_000 });
    const seen = await (await page.waitForFunction((id) => {
      const td = document.querySelector(`tr[data-id="${id}"] td.why`);
      if (!td) return null;
      const r = td.getBoundingClientRect();
      return {
        text: td.textContent,
        right: r.right,
        height: r.height,
        overflow: document.documentElement.scrollWidth - window.innerWidth,
      };
    }, failed.transaction_id)).jsonValue();
    assert.equal(seen.text, `${failed.error.code}: ${failed.error.message}`);
    assert.ok(seen.text.length > 80, "a long reason, shown whole");
    // Nothing runs past the right edge of the page: long values wrap.
    assert.ok(seen.overflow <= 0, `the page is ${seen.overflow} px wider than the window`);
    assert.ok(seen.right <= 900, "the reason stays inside the window");
    assert.ok(seen.height > 30, "and wraps onto more than one line");
  } finally {
    await browser.close();
  }
});
