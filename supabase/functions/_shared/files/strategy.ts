/**
 * How a provider is sent the files of a chat (CONTRACT.md §3, §13): `extract` uploads each file to the provider's
 * files API once and sends the provider's extraction as a system message (Moonshot's way: POST /files with purpose
 * `file-extract`, then GET /files/{id}/content, gateways-streaming-mcp.md §4); `inline` sends the file's own text as
 * a system message (Z.ai's files API serves its Agents API, not chat, §4, so inline is the default for every
 * provider but kimi).
 */
import type { Settings } from "../env.ts";

export type FilesStrategy = "extract" | "inline";

/** Providers whose files API extracts text for chat, when `<NAME>_FILES` is not set. */
const EXTRACT_BY_DEFAULT = new Set(["kimi"]);

/**
 * The strategy of provider `name`: its `<NAME>_FILES` setting (`<NAME>` is the name upper-cased, `-` → `_`), else
 * `extract` for kimi and `inline` for every other provider.
 * @example filesStrategy("kimi", settings()) // "extract" unless KIMI_FILES=inline
 */
export function filesStrategy(name: string, s: Settings): FilesStrategy {
  return s.providers.get(name)?.files ?? (EXTRACT_BY_DEFAULT.has(name) ? "extract" : "inline");
}
