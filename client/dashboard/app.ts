/// <reference lib="dom" />
/// <reference lib="dom.iterable" />
/**
 * The live dashboard: the signed-in user's messages and per-provider figures, updated as Realtime pushes status
 * changes and watcher observations, with a button that fetches a payload in the browser and verifies its
 * SHA-256. Runs on the SDK (client/mod.ts); bundled for browsers with `deno bundle --platform browser` from an
 * entry that fixes the API origin: main.ts (this origin, for the copy the local stack serves) or the entry
 * devstack/dashboard_build.ts writes for a static deployment.
 *
 * Nothing is taken from the address: a token or API URL in the query string would leak into server logs, browser
 * history and Referer headers. The token is typed into the form and kept in memory only (gone on reload; never in
 * localStorage or sessionStorage).
 */
import { createBusClient } from "../mod.ts";
import type { MessageMeta } from "../types.ts";
import { providerFigures } from "./metrics.ts";

const messages = new Map<string, MessageMeta>();
const verification = new Map<string, { ok: boolean; text: string }>();

const $ = (id: string) => document.getElementById(id)!;
const pct = (v: number | null) => (v === null ? "–" : `${(v * 100).toFixed(1)} %`);
const bytes = (n: number | null) =>
  n === null
    ? "–"
    : n < 1024
    ? `${n} B`
    : n < 1048576
    ? `${(n / 1024).toFixed(1)} KB`
    : `${(n / 1048576).toFixed(1)} MB`;

function cell(text: string, className = ""): HTMLTableCellElement {
  const td = document.createElement("td");
  td.textContent = text;
  if (className) td.className = className;
  return td;
}

/** Why a failed message failed (its meta `error`: code and message), in full; empty otherwise. */
function failureText(m: MessageMeta): string {
  if (m.status !== "failed" || !m.error) return "";
  const { code, message } = m.error as { code?: unknown; message?: unknown };
  return [code, message].filter((v) => typeof v === "string" && v).join(": ");
}

function render(bus: ReturnType<typeof createBusClient>): void {
  $("count").textContent = String(messages.size);
  const providers = $("providers");
  providers.replaceChildren(
    ...providerFigures(messages.values()).map((f) => {
      const tr = document.createElement("tr");
      tr.dataset.provider = f.provider;
      tr.append(
        cell(f.provider),
        cell(String(f.total)),
        cell(String(f.pending)),
        cell(String(f.completed)),
        cell(String(f.failed)),
        cell(pct(f.errorRate)),
        cell(pct(f.truncationRate)),
        cell(String(f.flagged)),
        cell(f.medianProviderMs === null ? "–" : `${f.medianProviderMs} ms`),
        cell(bytes(f.payloadBytes)),
      );
      return tr;
    }),
  );
  const rows = [...messages.values()].sort((a, b) => b.transaction_id.localeCompare(a.transaction_id));
  $("messages").replaceChildren(...rows.map((m) => {
    const tr = document.createElement("tr");
    tr.dataset.id = m.transaction_id;
    tr.dataset.status = m.status;
    const v = verification.get(m.transaction_id);
    const integrity = document.createElement("td");
    integrity.className = "integrity";
    if (v) {
      integrity.textContent = v.text;
      integrity.classList.add(v.ok ? "verified" : "mismatch");
    } else if (m.status === "completed") {
      const button = document.createElement("button");
      button.textContent = "fetch & verify";
      button.onclick = () => verify(bus, m.transaction_id);
      integrity.append(button);
    }
    tr.append(
      cell(m.transaction_id, "id"),
      cell(m.status, `status status-${m.status}`),
      cell(m.tool),
      cell(m.provider ?? "–"),
      cell(m.model ?? "–"),
      cell(bytes(m.payload_size_bytes)),
      cell(m.finish_reason ?? "–"),
      cell(
        m.watcher
          ? `${m.watcher.verdict}${
            m.watcher.findings.length ? `: ${m.watcher.findings.map((f) => f.code).join(", ")}` : ""
          }`
          : "–",
        `watcher verdict-${m.watcher?.verdict ?? "none"}`,
      ),
      cell(failureText(m), "why"),
      cell(new Date(m.updated_at).toLocaleTimeString()),
      integrity,
    );
    return tr;
  }));
}

async function verify(bus: ReturnType<typeof createBusClient>, id: string): Promise<void> {
  const { data, error } = await bus.fetch(id);
  verification.set(
    id,
    error
      ? { ok: false, text: `${error.code}: ${error.message}` }
      : { ok: true, text: `verified ${data.checksum.slice(0, 19)}… (${data.size} bytes)` },
  );
  render(bus);
}

async function refresh(bus: ReturnType<typeof createBusClient>, id: string): Promise<void> {
  const { data, error } = await bus.meta(id);
  if (error) $("error").textContent = `${error.code}: ${error.message}`;
  else messages.set(id, data);
}

/** Signs in with `token`: lists the user's messages, then follows them live. False when the token is refused. */
async function start(url: string, token: string): Promise<boolean> {
  const bus = createBusClient({ url, accessToken: token });
  const { data, error } = await bus.list({ limit: 1000 });
  if (error) {
    $("error").textContent = `${error.code}: ${error.message}`;
    await bus.close();
    return false;
  }
  for (const m of data) messages.set(m.transaction_id, m);
  render(bus);
  follow(bus);
  return true;
}

async function follow(bus: ReturnType<typeof createBusClient>): Promise<void> {
  $("live").classList.add("on");
  $("live-text").textContent = "live";
  try {
    for await (const event of bus.subscribe()) {
      await refresh(bus, event.transaction_id);
      render(bus);
    }
  } catch (err) {
    $("error").textContent = `live updates stopped: ${err instanceof Error ? err.message : err}`;
    $("live").classList.remove("on");
    $("live-text").textContent = "disconnected";
  }
}

/**
 * Wires the page to the bus at `apiOrigin` (e.g. `location.origin`, or `https://<ref>.supabase.co`): the sign-in
 * form starts the live view with the token typed into it.
 */
export function mountDashboard(apiOrigin: string): void {
  if (new URLSearchParams(location.search).has("token")) {
    // An old link with ?token=: not used, and taken out of the address bar and this history entry.
    history.replaceState(null, "", location.pathname + location.hash);
    $("error").textContent = "a token in the address is ignored: enter it in the form";
  }
  const form = $("auth") as HTMLFormElement;
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const input = $("token") as HTMLInputElement;
    const token = input.value.trim();
    input.value = ""; // held by the client only, not left in the page's form
    if (!token) return;
    $("error").textContent = "";
    form.hidden = true;
    if (!(await start(apiOrigin, token))) form.hidden = false; // refused: let the user try another token
  });
}
