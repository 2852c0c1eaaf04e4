/**
 * `phx_join` on `realtime:<sub>` (supabase-platform.md §3.2, §3.6, §8.3; server `realtime_channel.ex` join/3).
 */
import { type Claims, TokenError, verifyToken } from "./auth.ts";
import { probeRead, type ReadPolicies } from "./authorization.ts";
import { Channel, DB_UNAVAILABLE, type Transport, unauthorizedMessage } from "./channel.ts";
import type { Context } from "./hub.ts";
import { isRecord, type Message } from "./serializer.ts";

/**
 * Handles `phx_join` (§3.6, §8.3): picks the token (join `access_token`, else the connect token; `sb_` tokens are
 * ignored), verifies it, runs the read probe for private channels. Returns the channel (not yet active) or the
 * error reason for the reply.
 */
export async function joinChannel(
  ctx: Context,
  transport: Transport,
  msg: Message,
): Promise<{ channel: Channel } | { reason: string }> {
  const subTopic = msg.topic.slice("realtime:".length);
  if (subTopic === "") return { reason: "TopicNameRequired: You must provide a topic name" };
  const payload = isRecord(msg.payload) ? msg.payload : {};
  const config = isRecord(payload.config) ? payload.config : {};
  const broadcast = isRecord(config.broadcast) ? config.broadcast : {};
  const presence = isRecord(config.presence) ? config.presence : {};
  const flags = {
    private: config.private === true,
    self: broadcast.self === true,
    ack: broadcast.ack === true,
    presence: presence.enabled === true,
  };
  const offered = payload.access_token ?? payload.user_token;
  const token = typeof offered === "string" && !offered.startsWith("sb_") ? offered : transport.connectToken;
  let claims: Claims;
  try {
    claims = await verifyToken(token, ctx.secret);
  } catch (err) {
    if (err instanceof TokenError) return { reason: err.reason };
    throw err;
  }
  let read: ReadPolicies | null = null;
  if (flags.private) {
    try {
      read = await probeRead(ctx.sql, { topic: subTopic, claims, headers: transport.headers }, {
        presence: flags.presence,
        log: ctx.log,
      });
    } catch (err) {
      ctx.log(`UnableToSetPolicies on ${msg.topic}: ${(err as Error).message}`);
      return { reason: DB_UNAVAILABLE };
    }
    if (!read.broadcast && !read.presence) return { reason: `Unauthorized: ${unauthorizedMessage(subTopic)}` };
  }
  return { channel: new Channel(ctx, transport, msg.topic, msg.joinRef, flags, token, claims, read) };
}
