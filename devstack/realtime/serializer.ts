/**
 * The two wire formats of Supabase Realtime (supabase-platform.md §3.5, §3.7):
 * vsn 1.0.0 sends JSON objects; vsn 2.0.0 sends JSON arrays in text frames, user broadcasts from the client as
 * binary kind 3 and user broadcasts to the client as binary kind 4.
 */

/** A protocol version the server speaks (§3.4). */
export type Vsn = "1.0.0" | "2.0.0";

/** A Phoenix message with a JSON payload. */
export interface Message {
  joinRef: string | null;
  ref: string | null;
  topic: string;
  event: string;
  payload: unknown;
}

/** A user broadcast: the user event and its payload, JSON text (`json: true`, already validated) or raw bytes. */
export interface UserBroadcast {
  topic: string;
  event: string;
  json: boolean;
  bytes: Uint8Array;
  /** Sent as the kind-4 meta, e.g. `{"id": "<uuid>"}` for database broadcasts (§3.7); null sends none. */
  meta: Record<string, unknown> | null;
}

/** A decoded client frame: a plain message, or a kind-3 user broadcast push with its refs. */
export type Inbound =
  | { type: "message"; msg: Message }
  | { type: "user_broadcast"; joinRef: string | null; ref: string | null; broadcast: UserBroadcast };

/** What the server pushes: a plain message or a user broadcast. */
export type Outbound = { type: "message"; msg: Message } | { type: "user_broadcast"; broadcast: UserBroadcast };

/** Thrown for a frame that does not follow the negotiated protocol. */
export class FrameError extends Error {
  override name = "FrameError";
}

const KIND_USER_BROADCAST_PUSH = 3;
const KIND_USER_BROADCAST = 4;
const utf8 = new TextEncoder();
const fromUtf8 = new TextDecoder("utf-8", { fatal: true });

/** Picks the serializer for the `vsn` query parameter; the server default is 1.0.0 (§3.5, §9.3). Null if unknown. */
export function parseVsn(vsn: string | null): Vsn | null {
  if (vsn === null || vsn === "" || vsn.startsWith("1.")) return "1.0.0";
  if (vsn.startsWith("2.")) return "2.0.0";
  return null;
}

/** Decodes one client frame. Throws {@link FrameError} when it is malformed. */
export function decode(vsn: Vsn, data: string | ArrayBuffer): Inbound {
  if (typeof data !== "string") {
    if (vsn === "1.0.0") throw new FrameError("Expected a text frame for vsn 1.0.0, got a binary frame");
    return decodeUserBroadcastPush(new Uint8Array(data));
  }
  const parsed = parseJson(data);
  if (vsn === "2.0.0") {
    if (!Array.isArray(parsed) || parsed.length < 5) throw new FrameError("Expected a V2 array of 5 elements");
    const [joinRef, ref, topic, event, payload] = parsed;
    return { type: "message", msg: checked({ joinRef, ref, topic, event, payload }) };
  }
  if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) {
    throw new FrameError("Expected a V1 JSON object");
  }
  const o = parsed as Record<string, unknown>;
  return {
    type: "message",
    msg: checked({
      joinRef: o.join_ref ?? null,
      ref: o.ref ?? null,
      topic: o.topic,
      event: o.event,
      payload: o.payload,
    }),
  };
}

/**
 * Encodes a push for a socket of version `vsn`. Returns null when vsn 1.0.0 cannot carry it (a binary user payload,
 * which the V1 JSON serializer cannot represent, §3.7).
 */
export function encode(vsn: Vsn, out: Outbound): string | Uint8Array | null {
  if (out.type === "message") {
    const { joinRef, ref, topic, event, payload } = out.msg;
    // §3.5: the V1 serializer emits topic, event, payload, ref and no join_ref.
    return vsn === "2.0.0"
      ? JSON.stringify([joinRef, ref, topic, event, payload])
      : JSON.stringify({ topic, event, payload, ref });
  }
  const b = out.broadcast;
  if (vsn === "2.0.0") return encodeUserBroadcast(b);
  if (!b.json) return null;
  // §3.7: vsn 1 gets {"topic","event":"broadcast","payload":{type,event,payload,meta},"ref":null}. The payload is
  // spliced in as validated JSON text so numbers keep their exact database representation.
  const head = `{"topic":${JSON.stringify(b.topic)},"event":"broadcast","payload":{"type":"broadcast","event":${
    JSON.stringify(b.event)
  },"payload":`;
  const meta = b.meta ? `,"meta":${JSON.stringify(b.meta)}` : "";
  return `${head}${fromUtf8.decode(b.bytes)}${meta}},"ref":null}`;
}

function encodeUserBroadcast(b: UserBroadcast): Uint8Array {
  const topic = short(b.topic, "topic");
  const event = short(b.event, "user event");
  const meta = short(b.meta ? JSON.stringify(b.meta) : "", "metadata");
  // §3.5 kind 4: u8 kind | u8 topicLen | u8 userEventLen | u8 metaLen | u8 encoding | topic | event | meta | payload
  const header = [KIND_USER_BROADCAST, topic.length, event.length, meta.length, b.json ? 1 : 0];
  const out = new Uint8Array(header.length + topic.length + event.length + meta.length + b.bytes.length);
  let at = 0;
  for (const part of [Uint8Array.from(header), topic, event, meta, b.bytes]) {
    out.set(part, at);
    at += part.length;
  }
  return out;
}

function decodeUserBroadcastPush(buf: Uint8Array): Inbound {
  // §3.5 kind 3: u8 kind | u8 joinRefLen | u8 refLen | u8 topicLen | u8 userEventLen | u8 metaLen | u8 encoding
  // | joinRef | ref | topic | userEvent | meta | payload
  if (buf.length < 7 || buf[0] !== KIND_USER_BROADCAST_PUSH) {
    throw new FrameError(`Expected a binary frame of kind 3, got kind ${buf[0]} (${buf.length} bytes)`);
  }
  const lengths = [buf[1], buf[2], buf[3], buf[4], buf[5]];
  const fields: string[] = [];
  let at = 7;
  for (const len of lengths) {
    if (at + len > buf.length) throw new FrameError("Binary frame is shorter than its header says");
    fields.push(text(buf.subarray(at, at + len)));
    at += len;
  }
  const [joinRef, ref, topic, event, metaText] = fields;
  const json = buf[6] === 1;
  const bytes = buf.slice(at);
  if (json) parseJson(text(bytes));
  const meta = metaText === "" ? null : parseJson(metaText);
  return {
    type: "user_broadcast",
    joinRef: joinRef || null,
    ref: ref || null,
    broadcast: { topic, event, json, bytes, meta: isRecord(meta) ? meta : null },
  };
}

function checked(m: Record<string, unknown>): Message {
  const { joinRef, ref, topic, event, payload } = m;
  if (typeof topic !== "string" || typeof event !== "string") {
    throw new FrameError("Expected string topic and event");
  }
  return { joinRef: refOf(joinRef), ref: refOf(ref), topic, event, payload: payload ?? {} };
}

function refOf(v: unknown): string | null {
  if (v === null || v === undefined) return null;
  if (typeof v === "string" || typeof v === "number") return String(v);
  throw new FrameError(`Expected a string ref, got ${typeof v}`);
}

function short(s: string, what: string): Uint8Array {
  const bytes = utf8.encode(s);
  if (bytes.length > 255) throw new RangeError(`Expected ${what} of at most 255 bytes, got ${bytes.length}`);
  return bytes;
}

function text(bytes: Uint8Array): string {
  try {
    return fromUtf8.decode(bytes);
  } catch (err) {
    throw new FrameError(`Expected UTF-8 text: ${(err as Error).message}`);
  }
}

function parseJson(s: string): unknown {
  try {
    return JSON.parse(s);
  } catch (err) {
    throw new FrameError(`Expected JSON: ${(err as Error).message}`);
  }
}

/** True for a plain JSON object. */
export function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}
