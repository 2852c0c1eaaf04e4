/**
 * The `mcp` function (CONTRACT.md §11): a Model Context Protocol server over Streamable HTTP at `/mcp`, served by
 * the official SDK's `createMcpHandler` (stateless: protocol 2026-07-28, and 2025-11-25 clients through the
 * SDK's legacy fallback). In front of it, in this order: CORS (preflights carry no token), the Origin check
 * (Streamable HTTP's DNS-rebinding defence; requests without Origin pass), the bearer JWT (401 with
 * `WWW-Authenticate`), then the door for the body (read once under a size limit and the instance's body budget,
 * checked by scanJson like every JSON body) before the SDK sees it, already parsed.
 */
import type { Context } from "hono";
import { createMcpHandler, validateOriginHeader } from "@modelcontextprotocol/server";
import { createApp } from "../_shared/http.ts";
import { addHealthRoute } from "../_shared/health.ts";
import { type Settings, settings } from "../_shared/env.ts";
import { db } from "../_shared/db.ts";
import { waitUntil } from "../_shared/background.ts";
import { BusError } from "../_shared/errors.ts";
import { BodyBudget, readBody } from "../_shared/door/body.ts";
import { DecodeCursors } from "../_shared/decode_cursor.ts";
import { checkJson } from "../_shared/door/validate.ts";
import { z } from "zod";
import { authInfoOf, mcpCaller } from "./auth.ts";
import type { McpDeps } from "./deps.ts";
import { createBusMcpServer } from "./server.ts";
import { rateLimitedLog } from "./rate_limited_log.ts";

/** Headers of Streamable HTTP that browsers must be allowed to send and read. */
const MCP_REQUEST_HEADERS = [
  "accept",
  "mcp-protocol-version",
  "mcp-session-id",
  "mcp-method",
  "mcp-name",
  "last-event-id",
];
const MCP_RESPONSE_HEADERS = ["mcp-session-id", "mcp-protocol-version", "www-authenticate"];

/** Builds the app; `deps` may be replaced by tests. */
export function createMcpApp(deps: McpDeps) {
  const s = deps.settings;
  const budget = new BodyBudget(s.MESSAGE_BUS_BODY_BUDGET_MB * 1024 * 1024);
  const allowedOrigins = [...s.MCP_ALLOWED_ORIGINS, new URL(s.SUPABASE_URL).hostname];
  const handler = createMcpHandler(({ authInfo }) => createBusMcpServer(authInfo, deps), {
    // The door below has bounded the body already; this is the SDK's own bound for what reaches it unparsed.
    maxRequestBodySize: s.MCP_MAX_BODY_MB * 1024 * 1024,
    // subscriptions/listen streams stay open (keep-alive every 15 s) and this server's tools and resource template
    // never change, so nothing would ever be sent on them: a few per instance, not the SDK's default 1024.
    maxSubscriptions: 8,
    // Reporting only: the SDK has answered the client already (a rejected envelope, a closed stream).
    onerror: rateLimitedLog("[mcp]", 20, 60_000),
  });

  const app = createApp("mcp", { allowHeaders: MCP_REQUEST_HEADERS, exposeHeaders: MCP_RESPONSE_HEADERS });
  addHealthRoute(app, "mcp");
  app.all("/", async (c) => {
    checkOrigin(c, allowedOrigins);
    const caller = await mcpCaller(c);
    const parsedBody = c.req.method === "POST" ? await readJsonBody(c, s, budget) : undefined;
    try {
      return await handler.fetch(c.req.raw, { authInfo: authInfoOf(caller, c), parsedBody: parsedBody?.value });
    } finally {
      parsedBody?.release();
    }
  });
  return app;
}

/**
 * Refuses a browser request from an origin that is not allowed (MCP Streamable HTTP: servers must validate
 * Origin). @throws BusError 403 `origin_not_allowed`.
 */
function checkOrigin(c: Context, allowed: string[]): void {
  const result = validateOriginHeader(c.req.header("origin"), allowed);
  if (!result.ok) throw new BusError(403, "origin_not_allowed", result.message);
}

/** The door for the JSON-RPC body: size, body budget, scanJson. @throws BusError 400, 413, 503. */
async function readJsonBody(c: Context, s: Settings, budget: BodyBudget) {
  const maxBytes = s.MCP_MAX_BODY_MB * 1024 * 1024;
  const held = await readBody(c.req.raw, { maxBytes, budget });
  try {
    // No string is too long to decode here: the SDK takes the parsed message (a prompt is decoded anyway).
    const { value } = checkJson(held.bytes, z.unknown(), {
      maxDepth: s.MESSAGE_BUS_MAX_JSON_DEPTH,
      longString: maxBytes + 1,
    });
    return { value, release: held.release };
  } catch (err) {
    held.release();
    throw err;
  }
}

/** The function's app with the process settings and the shared database pool. */
export function defaultMcpApp() {
  return createMcpApp({ settings: settings(), sql: db, waitUntil, cursors: new DecodeCursors() });
}
