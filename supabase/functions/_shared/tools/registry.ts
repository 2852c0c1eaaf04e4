/** The tools the bus knows, by name. Adding a tool = an input schema and a provider request (see tool.ts). */
import type { Tool } from "./tool.ts";
import { chatTool } from "./chat.ts";

// A Map, not an object literal: a name such as "constructor" or "__proto__" must find nothing, not Object.prototype's.
const TOOLS = new Map<string, Tool<Record<string, unknown>>>([
  ["chat", chatTool as unknown as Tool<Record<string, unknown>>],
]);

/** The tool named `name`, or undefined. */
export function toolNamed(name: string): Tool<Record<string, unknown>> | undefined {
  return TOOLS.get(name);
}

/** Every tool's name, for error messages. */
export const TOOL_NAMES: readonly string[] = [...TOOLS.keys()];
