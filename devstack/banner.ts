/** The start-up banner: where everything is, the keys, and which providers are real (issue: foundation). */
import type { StackKeys } from "./keys.ts";

export interface BannerInfo {
  apiUrl: string;
  dbUrl: string;
  keys: StackKeys;
  functions: Array<{ name: string; verifyJwt: boolean; bootError?: string }>;
  /** Each provider, with the stand-in URL it was pointed at when it has no API key. */
  providers: Array<{ name: string; standinUrl?: string }>;
}

/** Renders the banner printed by `npm start`. */
export function renderBanner(info: BannerInfo): string {
  const provider = (p: BannerInfo["providers"][number]) =>
    `  ${p.name.padEnd(5)} ${p.standinUrl ? `local stand-in at ${p.standinUrl}` : "real provider (API key set)"}`;
  const lines = [
    "",
    "Local Supabase message bus is running.",
    "",
    `         API URL: ${info.apiUrl}`,
    `       Functions: ${info.apiUrl}/functions/v1/<name>`,
    `        Realtime: ${info.apiUrl.replace(/^http/, "ws")}/realtime/v1/websocket`,
    `       Dashboard: ${info.apiUrl}/dashboard/  (sign in with a user token: npm run -s token)`,
    `  Ops dashboard: ${info.apiUrl}/ops-dashboard/  (sign in with the service role key)`,
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
    ...info.providers.map(provider),
    "",
    "Press Ctrl-C to stop.",
  ];
  return lines.join("\n");
}
