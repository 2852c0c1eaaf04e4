/// <reference lib="dom" />
/// <reference lib="dom.iterable" />
/**
 * The operator dashboard: charts over time (requests/s, error rate, p50/p95 of provider time, bus overhead and time to
 * first token, payload bytes), the providers with their circuits, open error groups with resolve buttons and the
 * alerts firing, live over the private Realtime topic `ops` (events `rollup`, `alert`, `error_group`; service role
 * only). The service role key is typed into the form and kept in sessionStorage for this tab, never read from the
 * URL. `?url=` names the project (default: this origin). Bundled for browsers with `deno bundle --platform browser`.
 */
import { createClient, type SupabaseClient } from "@supabase/supabase-js";
import { createCharts } from "./charts.ts";
import { type ErrorGroup, type FiringAlert, OpsApi, type ProviderFigures } from "./ops_api.ts";

const KEY = "bus-ops-token";
const MINUTES = 60;
const url = new URLSearchParams(location.search).get("url") ?? location.origin;
const $ = (id: string) => document.getElementById(id)!;

const pct = (v: number | null | undefined) => (v === null || v === undefined ? "–" : `${(v * 100).toFixed(1)} %`);
const ms = (v: number | null | undefined) => (v === null || v === undefined ? "–" : `${v} ms`);

function cell(text: string, className = ""): HTMLTableCellElement {
  const td = document.createElement("td");
  td.textContent = text;
  if (className) td.className = className;
  return td;
}

function renderProviders(providers: ProviderFigures[]): void {
  $("providers").replaceChildren(
    ...providers.flatMap((p) =>
      [{ model: "(all)", circuit: p.circuit, windows: p.windows }, ...p.routes].map((r) => {
        const tr = document.createElement("tr");
        tr.dataset.provider = p.provider;
        tr.dataset.model = r.model;
        const w5 = r.windows["5m"], w60 = r.windows["60m"];
        tr.append(
          cell(p.provider),
          cell(r.model),
          cell(r.circuit, `circuit circuit-${r.circuit}`),
          cell(String(p.in_flight)),
          cell(String(w5?.requests ?? 0)),
          cell(pct(w5?.error_rate)),
          cell(ms(w5?.p50_ms)),
          cell(ms(w5?.p95_ms)),
          cell(String(w60?.requests ?? 0)),
          cell(pct(w60?.error_rate)),
          cell(ms(w60?.p50_ms)),
          cell(ms(w60?.p95_ms)),
        );
        return tr;
      })
    ),
  );
}

function renderErrors(api: OpsApi, groups: ErrorGroup[], refresh: () => void): void {
  $("error-count").textContent = String(groups.length);
  $("errors").replaceChildren(...groups.map((g) => {
    const tr = document.createElement("tr");
    tr.dataset.fingerprint = g.fingerprint;
    const action = document.createElement("td");
    const button = document.createElement("button");
    button.textContent = "resolve";
    button.onclick = async () => {
      button.disabled = true;
      try {
        await api.resolve(g.fingerprint);
      } catch (err) {
        $("error").textContent = String(err);
      }
      refresh();
    };
    action.append(button);
    const why = g.investigation?.summary
      ? `${g.message}\n→ ${g.investigation.summary}${
        g.investigation.suggested_fix ? `\nfix: ${g.investigation.suggested_fix}` : ""
      }`
      : g.message;
    tr.append(
      cell(g.code, "code"),
      cell(g.provider || "–"),
      cell(why, "long"),
      cell(String(g.count)),
      cell(new Date(g.first_seen).toLocaleString()),
      cell(new Date(g.last_seen).toLocaleString()),
      cell(g.sample_transaction_ids.join("\n"), "long id"),
      action,
    );
    return tr;
  }));
}

function renderAlerts(firing: FiringAlert[]): void {
  $("alert-count").textContent = String(firing.length);
  $("alerts").replaceChildren(...firing.map((a) => {
    const tr = document.createElement("tr");
    tr.dataset.alert = a.alert;
    tr.append(
      cell(a.alert, "code"),
      cell(Object.entries(a.labels).map(([k, v]) => `${k}=${v}`).join(", ") || "–"),
      cell(a.summary, "long"),
      cell(new Date(a.started_at).toLocaleString()),
    );
    return tr;
  }));
}

let realtime: SupabaseClient | undefined;

async function start(token: string): Promise<void> {
  const api = new OpsApi(url, token);
  $("auth").hidden = true;
  $("signed-in").hidden = false;
  const draw = createCharts($("charts"));
  let pending: ReturnType<typeof setTimeout> | undefined;
  const refresh = async () => {
    try {
      const [series, providers, errors, alerts] = await Promise.all([
        api.series(MINUTES),
        api.providers(),
        api.errors(),
        api.alerts(),
      ]);
      draw(series.points);
      const total = series.points.reduce((n, p) => n + p.requests, 0);
      $("requests").textContent = String(total);
      renderProviders(providers.providers);
      renderErrors(api, errors.groups, schedule);
      renderAlerts(alerts.firing);
      $("updated").textContent = new Date().toLocaleTimeString();
      $("error").textContent = "";
      document.body.dataset.loaded = "true";
    } catch (err) {
      $("error").textContent = String(err);
    }
  };
  // Realtime events come in bursts (a fold, then its error groups): one refresh per burst.
  const schedule = () => {
    clearTimeout(pending);
    pending = setTimeout(refresh, 250);
  };
  await refresh();
  setInterval(refresh, 30_000); // a fallback when Realtime is down

  realtime = createClient(url, token, { auth: { persistSession: false, autoRefreshToken: false } });
  await realtime.realtime.setAuth(token);
  const channel = realtime.channel("ops", { config: { private: true } });
  for (const event of ["rollup", "alert", "error_group"]) {
    channel.on("broadcast", { event }, (m) => {
      $("last-event").textContent = `${event} ${new Date().toLocaleTimeString()}`;
      if (event === "alert") {
        const a = m.payload as { alert: string; status: string; summary: string };
        $("last-event").textContent = `alert ${a.alert} ${a.status}: ${a.summary}`;
      }
      schedule();
    });
  }
  channel.subscribe((status, err) => {
    const on = status === "SUBSCRIBED";
    $("live").classList.toggle("on", on);
    $("live-text").textContent = on ? "live" : `not live (${status}${err ? `: ${err.message}` : ""})`;
  });
}

$("auth").addEventListener("submit", (ev) => {
  ev.preventDefault();
  const input = $("token") as HTMLInputElement;
  const token = input.value.trim();
  input.value = "";
  if (!token) return;
  sessionStorage.setItem(KEY, token);
  start(token);
});
$("sign-out").addEventListener("click", async () => {
  sessionStorage.removeItem(KEY);
  await realtime?.removeAllChannels();
  location.reload();
});
const kept = sessionStorage.getItem(KEY);
if (kept) start(kept);
