/** What a tool is: an input schema and how its input becomes the provider request. */
import type { z } from "zod";

/** The HTTP request a tool sends to its provider (POST `{baseURL}{path}`, JSON). */
export interface ProviderRequest {
  path: string;
  /** The JSON body, made anew for every attempt (a stream can be sent once only). */
  body(): Uint8Array | ReadableStream<Uint8Array>;
  /** Its size in bytes (a lower bound when a part streams: the JSON escapes of a file's text are not counted). */
  size: number;
}

/**
 * A piece of a request body: bytes, or bytes streamed anew for every attempt (a stream can be sent once only), with
 * their size before JSON escaping. Used for the system messages that carry a chat's files (CONTRACT.md §13).
 */
export type BodyPart = Uint8Array | { size: number; stream(): AsyncIterable<Uint8Array> };

export interface Tool<I = Record<string, unknown>> {
  name: string;
  /** For people and models choosing a tool (the MCP server shows it too). */
  description: string;
  inputSchema: z.ZodType<I>;
  /**
   * The provider request for an input whose JSON text, exactly as received, is `inputJson` (the door has validated
   * it against `inputSchema`), for `model`. The input is passed on as received, never re-serialised. `messages`,
   * when given, are JSON messages put first in the input's `messages` (the chat's files, CONTRACT.md §13).
   * With `opts.stream` the provider is asked for a stream (the openai endpoint, CONTRACT.md §10).
   */
  providerRequest(
    inputJson: Uint8Array,
    model: string,
    messages?: BodyPart[],
    opts?: { stream?: boolean },
  ): ProviderRequest;
  /** Whether the request asked for JSON output (the watcher then checks the content parses). */
  wantsJson(input: I): boolean;
}
