/** What a tool is: an input schema and a call that returns the provider's raw response. */
import type { z } from "zod";
import type OpenAI from "openai";

export interface ToolCall<I> {
  client: OpenAI;
  model: string;
  input: I;
  signal?: AbortSignal;
}

export interface Tool<I = Record<string, unknown>> {
  name: string;
  inputSchema: z.ZodType<I>;
  /** Calls the provider; resolves with its raw 2xx response. */
  call(call: ToolCall<I>): Promise<Response>;
  /** Whether the request asked for JSON output (the watcher then checks the content parses). */
  wantsJson(input: I): boolean;
}
