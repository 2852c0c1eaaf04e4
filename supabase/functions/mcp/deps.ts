/** What the MCP server's tools need from outside, injected so that tests can run them in-process. */
import type { Caller } from "../_shared/auth.ts";
import type { Sql } from "../_shared/db.ts";
import type { Settings } from "../_shared/env.ts";
import type { DecodeCursors } from "../_shared/decode_cursor.ts";

export interface McpDeps {
  settings: Settings;
  /** The database client (called per use: the shared pool is created on first use). */
  sql: () => Sql;
  /** Background work after the answer (EdgeRuntime.waitUntil), for async chats. */
  waitUntil: (p: Promise<unknown>) => void;
  /** Gzip decoders paused between fetch_message pages (one set per instance). */
  cursors: DecodeCursors;
  /** Provider HTTP, injectable for tests. */
  fetch?: typeof fetch;
}

/** One request's view: the deps and the authenticated caller. */
export interface ToolContext extends McpDeps {
  caller: Caller;
}
