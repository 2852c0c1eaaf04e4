/** The start-up banner: where everything is, the keys, and which providers are real (issue: foundation). */
import type { StackKeys } from "./keys.ts";

export interface BannerInfo {
  apiUrl: string;
  dbUrl: string;
  keys: StackKeys;
  functions: Array<{ name: string; verifyJwt: boolean; bootError?: string }>;
  providers: { kimi: boolean; glm: boolean };
  standinUrl?: string;
}

/** Renders the banner printed by `npm start`. */
export function renderBanner(info: BannerInfo): string {
  const provider = (name: string, real: boolean) =>
    `  ${name.padEnd(5)} ${real ? "real provider (API key set)" : `local stand-in at ${info.standinUrl}`}`;
  const lines = [
    "",
    "Local Supabase message bus is running.",
    "",
    `         API URL: ${info.apiUrl}`,
    `       Functions: ${info.apiUrl}/functions/v1/<name>`,
    `        Realtime: ${info.apiUrl.replace(/^http/, "ws")}/realtime/v1/websocket`,
    `       Dashboard: ${info.apiUrl}/dashboard/?token=<user JWT>`,
    `  Ops dashboard: ${info.apiUrl}/ops-dashboard/ (sign in with the service role key)`,
    `          DB URL: ${info.dbUrl}`,
    `        anon key: ${info.keys.anon}`,
    `service_role key: ${info.keys.serviceRole}`,
    "",
    "Functions:",
    ...info.functions.map((f) =>
      `  ${f.name.padEnd(14)} verify_jwt=${f.verifyJwt}${f.bootError ? `  BOOT ERROR: ${f.bootError}` : ""}`
    ),
    "",
    "Providers:",
    provider("kimi", info.providers.kimi),
    provider("glm", info.providers.glm),
    "",
    "Press Ctrl-C to stop.",
  ];
  return lines.join("\n");
}
