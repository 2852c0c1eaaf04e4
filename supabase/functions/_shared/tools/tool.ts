/** What a tool is: an input schema and how its input becomes the provider request. */
import type { z } from "zod";

/** The HTTP request a tool sends to its provider (POST `{baseURL}{path}`, JSON). */
export interface ProviderRequest {
  path: string;
  /** The JSON body, made anew for every attempt (a stream can be sent once only). */
  body(): Uint8Array | ReadableStream<Uint8Array>;
  /** Its size in bytes. */
  size: number;
}

export interface Tool<I = Record<string, unknown>> {
  name: string;
  /** For people and models choosing a tool (the MCP server shows it too). */
  description: string;
  inputSchema: z.ZodType<I>;
  /**
   * The provider request for an input whose JSON text, exactly as received, is `inputJson` (the door has validated
   * it against `inputSchema`), for `model`. The input is passed on as received, never re-serialised.
   */
  providerRequest(inputJson: Uint8Array, model: string): ProviderRequest;
  /** Whether the request asked for JSON output (the watcher then checks the content parses). */
  wantsJson(input: I): boolean;
}
