/** The tools `tool-invoke` knows, by name. Adding a tool = an input schema and a call (see tool.ts). */
import type { Tool } from "./tool.ts";
import { chatTool } from "./chat.ts";

export const tools: Record<string, Tool<Record<string, unknown>>> = {
  chat: chatTool as unknown as Tool<Record<string, unknown>>,
};
