/**
 * `POST /realtime/v1/api/broadcast` (supabase-platform.md §3.8): `{"messages":[{topic, event, payload, private}]}`,
 * answered 202. Private messages need the write probe of §3.2 for the caller's token; denied ones are dropped.
 */
import { type Claims, type RealtimeKeys, resolveApiKey, TokenError, verifyToken } from "./auth.ts";
import { probeWrite } from "./authorization.ts";
import type { Context } from "./hub.ts";
import { isRecord } from "./serializer.ts";

interface RestMessage {
  topic: string;
  event: string;
  payload: Record<string, unknown>;
  private: boolean;
}

/** Handles the batch broadcast endpoint. */
export async function handleBroadcastRequest(ctx: Context, keys: RealtimeKeys, req: Request): Promise<Response> {
  const apikey = req.headers.get("apikey") ?? new URL(req.url).searchParams.get("apikey");
  if (!apikey) return json({ error: "API key missing" }, 401);
  const bearer = req.headers.get("authorization")?.match(/^Bearer\s+(.+)$/i)?.[1];
  const token = bearer && !bearer.startsWith("sb_") ? bearer : resolveApiKey(apikey, keys);
  let claims: Claims;
  try {
    claims = await verifyToken(token, ctx.secret);
  } catch (err) {
    if (err instanceof TokenError) return json({ error: err.message }, 401);
    throw err;
  }
  let body: unknown;
  try {
    body = await req.json();
  } catch (err) {
    return json({ error: `Expected a JSON body: ${(err as Error).message}` }, 422);
  }
  const messages = parseMessages(body);
  if (typeof messages === "string") return json({ error: messages }, 422);

  const writable = new Map<string, boolean>();
  for (const m of messages) {
    if (m.private) {
      if (!writable.has(m.topic)) writable.set(m.topic, await canWrite(ctx, m.topic, claims, req.headers));
      if (!writable.get(m.topic)) continue;
    }
    // The controller broadcasts a Phoenix.Socket.Broadcast with {"payload","event","type":"broadcast"}.
    const payload = { type: "broadcast", event: m.event, payload: m.payload };
    ctx.hub.dispatch(m.topic, m.private, (topic) => ({
      type: "message",
      msg: { joinRef: null, ref: null, topic, event: "broadcast", payload },
    }));
  }
  return new Response(null, { status: 202 });
}

async function canWrite(ctx: Context, topic: string, claims: Claims, headers: Headers): Promise<boolean> {
  const xHeaders = Object.fromEntries([...headers].filter(([name]) => name.startsWith("x-")));
  try {
    return await probeWrite(ctx.sql, { topic, claims, headers: xHeaders });
  } catch (err) {
    ctx.log(`UnableToSetPolicies for REST broadcast on ${topic}: ${(err as Error).message}`);
    return false;
  }
}

function parseMessages(body: unknown): RestMessage[] | string {
  if (!isRecord(body) || !Array.isArray(body.messages)) return 'Expected a body {"messages": [...]}';
  const out: RestMessage[] = [];
  for (const [i, m] of body.messages.entries()) {
    if (!isRecord(m) || typeof m.topic !== "string" || typeof m.event !== "string" || !isRecord(m.payload)) {
      return `Expected messages[${i}] to have string topic and event and an object payload`;
    }
    if (m.private !== undefined && typeof m.private !== "boolean") return `Expected messages[${i}].private boolean`;
    out.push({ topic: m.topic, event: m.event, payload: m.payload, private: m.private === true });
  }
  return out;
}

function json(body: unknown, status: number): Response {
  return Response.json(body, { status });
}
