/**
 * An OpenAI Chat Completions request as a bus message (CONTRACT.md §10): the body is the chat tool's input plus
 * `model` (`<provider>/<model>`, `<provider>` or a bare model name), `stream` and the bus's own `fallbacks`; the bus
 * options OpenAI has no field for come as headers. The request is recorded as the invoke it amounts to (so replay
 * and audit read one format), with the caller's members passed on byte for byte.
 */
import { z } from "zod";
import type { Settings } from "../_shared/env.ts";
import { pgText } from "../_shared/door/validate.ts";
import type { MemberRange } from "../_shared/door/json_scan.ts";
import { parseRouteRef } from "../_shared/providers/config.ts";
import { chatInputSchema } from "../_shared/tools/chat.ts";
import { idempotencyKeySchema, type InvokeBody, invokeBodyLimits } from "../_shared/invoke/request.ts";

/** Members of the body that are the bus's, not the provider's: they are taken out of the forwarded input. */
const BUS_MEMBERS = ["model", "stream", "fallbacks"];

/** The body: OpenAI's request (unknown members pass through to the provider) with the bus's `fallbacks`. */
export function completionBodySchema(s: Settings) {
  const names = [...s.providers.keys()];
  return chatInputSchema.extend({
    model: z.string().min(1, "model is required").max(300),
    stream: z.boolean().optional(),
    /** Tried in order when the requested route fails or its circuit is open (CONTRACT.md §4, §9). */
    fallbacks: z.array(
      z.string().min(1).max(300).refine(
        (text) => s.providers.has(parseRouteRef(text).provider) && parseRouteRef(text).model !== "",
        `must be a provider (${names.join(", ")}) or provider/model`,
      ),
    ).max(8).optional(),
  });
}
export type CompletionBody = z.output<ReturnType<typeof completionBodySchema>>;

/** The door's limits: the invoke's, with the prompt (`messages`) checked but not decoded when long. */
export function completionBodyLimits(s: Settings) {
  return { ...invokeBodyLimits(s), elideUnder: new Set(["messages", "tools"]) };
}

/** The bus options as headers. */
export function completionHeadersSchema(s: Settings) {
  return z.looseObject({
    "idempotency-key": idempotencyKeySchema.optional(),
    "x-bus-session-id": pgText(200).min(1).optional(),
    "x-bus-ttl-seconds": z.string().regex(/^\d{1,9}$/, "must be a whole number of seconds").transform(Number).pipe(
      z.number().min(s.MESSAGE_BUS_MIN_TTL_SECONDS).max(s.MESSAGE_BUS_MAX_TTL_SECONDS),
    ).optional(),
  });
}
export type CompletionHeaders = z.output<ReturnType<typeof completionHeadersSchema>>;

/**
 * `model` as a route: `<provider>/<model>` or `<provider>` (its default model) when the part before the first `/`
 * is a configured provider; otherwise the whole string is a model of the default provider.
 */
export function resolveModel(model: string, s: Settings): { provider: string; model: string } {
  const slash = model.indexOf("/");
  const head = slash < 0 ? model : model.slice(0, slash);
  const provider = s.providers.get(head);
  if (provider) {
    const rest = slash < 0 ? "" : model.slice(slash + 1);
    return { provider: provider.name, model: rest || provider.defaultModel };
  }
  return { provider: s.MESSAGE_BUS_DEFAULT_PROVIDER, model };
}

const encoder = new TextEncoder();

/**
 * The invoke this request amounts to: its JSON text (the caller's members other than the bus's, byte for byte, as
 * `input`), the parsed body the invoke path reads, and the byte ranges of its members.
 */
export function asInvoke(
  raw: { bytes: Uint8Array; members: Map<string, MemberRange> },
  body: CompletionBody,
  headers: CompletionHeaders,
  s: Settings,
): { request: Uint8Array; body: InvokeBody; members: Map<string, MemberRange> } {
  const route = resolveModel(body.model, s);
  const envelope: Record<string, unknown> = {
    tool: "chat",
    provider: route.provider,
    model: route.model,
    mode: "sync",
  };
  if (headers["x-bus-session-id"] !== undefined) envelope.session_id = headers["x-bus-session-id"];
  if (headers["x-bus-ttl-seconds"] !== undefined) envelope.ttl_seconds = headers["x-bus-ttl-seconds"];
  if (body.fallbacks) envelope.fallbacks = body.fallbacks;

  const head = encoder.encode(`${JSON.stringify(envelope).slice(0, -1)},"input":{`);
  const parts: Uint8Array[] = [];
  let first = true;
  for (const [key, range] of raw.members) {
    if (BUS_MEMBERS.includes(key)) continue;
    parts.push(
      encoder.encode(`${first ? "" : ","}${JSON.stringify(key)}:`),
      raw.bytes.subarray(range.start, range.end),
    );
    first = false;
  }
  const size = head.length + parts.reduce((n, p) => n + p.length, 0) + 2;
  const request = new Uint8Array(size);
  request.set(head, 0);
  let at = head.length;
  const inputStart = at - 1; // the input object's "{"
  for (const p of parts) {
    request.set(p, at);
    at += p.length;
  }
  request.set(encoder.encode("}}"), at);
  const inputEnd = at + 1;

  const { model: _model, stream: _stream, fallbacks, ...input } = body;
  const members = new Map<string, MemberRange>([["input", { start: inputStart, end: inputEnd }]]);
  return {
    request,
    body: {
      tool: "chat",
      provider: route.provider,
      model: route.model,
      mode: "sync",
      input,
      fallbacks,
      session_id: headers["x-bus-session-id"],
      ttl_seconds: headers["x-bus-ttl-seconds"],
    },
    members,
  };
}
