/**
 * One joined `realtime:<sub>` channel of a socket: client broadcasts with the write probe, access-token refresh,
 * token expiry, leave (supabase-platform.md §3.2, §3.6, §3.7; server `realtime_channel.ex`).
 */
import { type Claims, msUntilExpiry, TokenError, verifyToken } from "./auth.ts";
import { probeRead, probeWrite, type ReadPolicies } from "./authorization.ts";
import type { Context, Subscriber } from "./hub.ts";
import type { Message, Outbound, UserBroadcast } from "./serializer.ts";

/** The socket side a channel talks through. */
export interface Transport {
  /** The connect-time apikey token, already mapped from `sb_` keys to a JWT (§3.4). */
  readonly connectToken: string;
  /** `x-*` request headers, passed to policies as request.headers (§3.2). */
  readonly headers: Record<string, string>;
  send(out: Outbound): void;
  /** Called when the channel ends, so the socket forgets it. */
  forget(channel: Channel): void;
}

/** The server re-confirms a token at `exp`, but at least this often (§3.6 says 5 min; the server caps at 1 h). */
const CONFIRM_TOKEN_MAX_MS = 5 * 60_000;
/** The reason given when the database cannot be reached for a policy check. */
export const DB_UNAVAILABLE = "Realtime was unable to connect to the project database";

/** A joined channel; `joinChannel` in join.ts creates it. */
export class Channel implements Subscriber {
  #write: boolean | null = null;
  #timer: ReturnType<typeof setTimeout> | undefined;
  #closed = false;

  constructor(
    private readonly ctx: Context,
    private readonly transport: Transport,
    readonly topic: string,
    readonly joinRef: string | null,
    readonly config: { private: boolean; self: boolean; ack: boolean; presence: boolean },
    private token: string,
    private claims: Claims,
    private read: ReadPolicies | null,
  ) {}

  get subTopic(): string {
    return this.topic.slice("realtime:".length);
  }
  get private(): boolean {
    return this.config.private;
  }

  /** Starts receiving broadcasts and watching token expiry; call after the join reply was sent. */
  activate(): void {
    this.ctx.hub.add(this);
    this.#scheduleConfirm();
  }

  /** §3.7: a private subscriber gets broadcasts only if its probe allowed broadcast read. */
  canReadBroadcast(): boolean {
    return !this.config.private || this.read?.broadcast === true;
  }

  push(out: Outbound): void {
    if (!this.#closed) this.transport.send(out);
  }

  /**
   * A client broadcast (§3.7): a v1 JSON payload `{type, event, payload}` or a v2 kind-3 user broadcast. Private
   * channels need the write probe (§3.2); without it the message is dropped silently, with no ack.
   */
  async broadcast(body: UserBroadcast | Record<string, unknown>, ref: string | null): Promise<void> {
    if (this.config.private && !(await this.#canWrite())) return;
    const out = (topic: string): Outbound =>
      "bytes" in body && body.bytes instanceof Uint8Array
        ? { type: "user_broadcast", broadcast: { ...(body as UserBroadcast), topic, meta: null } }
        : { type: "message", msg: { joinRef: null, ref: null, topic, event: "broadcast", payload: body } };
    this.ctx.hub.dispatch(this.subTopic, this.config.private, out, this.config.self ? undefined : this);
    if (this.config.ack) this.reply(ref, "ok", {});
  }

  /** The `access_token` message (§3.6): re-verify and re-probe; on failure send the system error and close. */
  async refreshToken(token: unknown): Promise<void> {
    if (typeof token !== "string" || token.startsWith("sb_") || token === this.token) return;
    const previous = this.read;
    this.token = token;
    this.#write = null;
    try {
      this.claims = await verifyToken(token, this.ctx.secret);
    } catch (err) {
      if (err instanceof TokenError) return this.shutdown(err.message);
      throw err;
    }
    if (this.config.private) {
      let read: ReadPolicies;
      try {
        read = await probeRead(this.ctx.sql, this.#authContext(), {
          presence: this.config.presence,
          log: this.ctx.log,
        });
      } catch (err) {
        this.ctx.log(`UnableToSetPolicies on ${this.topic}: ${(err as Error).message}`);
        return this.shutdown(DB_UNAVAILABLE);
      }
      if (!read.broadcast && !read.presence) return this.shutdown(unauthorizedMessage(this.subTopic));
      if ((previous?.broadcast && !read.broadcast) || (previous?.presence && !read.presence)) {
        return this.shutdown(`You no longer have permission to read from this Channel topic: ${this.subTopic}`);
      }
      this.read = read;
    }
    this.#scheduleConfirm();
  }

  /** `phx_leave`: reply ok, then `phx_close` (§3.6). */
  leave(ref: string | null): void {
    this.reply(ref, "ok", {});
    this.#close();
  }

  /** Ends the channel with `event:"system"` `{extension:"system", status:"error", message}` (§3.6). */
  shutdown(message: string): void {
    if (this.#closed) return;
    this.ctx.log(`ChannelShutdown ${this.topic}: ${message}`);
    this.push(this.#message(null, "system", { extension: "system", status: "error", message, channel: this.subTopic }));
    this.#close();
  }

  /** Sends `phx_reply` to the push with `ref`. */
  reply(ref: string | null, status: "ok" | "error", response: unknown): void {
    this.push(this.#message(ref, "phx_reply", { status, response }));
  }

  /** Forgets the channel without telling the client (socket closed, duplicate join). */
  dispose(): void {
    if (this.#closed) return;
    this.#closed = true;
    clearTimeout(this.#timer);
    this.ctx.hub.remove(this);
    this.transport.forget(this);
  }

  #close(): void {
    // Phoenix pushes [join_ref, join_ref, topic, "phx_close", {}] when a channel ends normally (§3.6).
    this.push(this.#message(this.joinRef, "phx_close", {}));
    this.dispose();
  }

  #message(ref: string | null, event: string, payload: unknown): Outbound {
    const msg: Message = { joinRef: this.joinRef, ref, topic: this.topic, event, payload };
    return { type: "message", msg };
  }

  async #canWrite(): Promise<boolean> {
    if (this.#write === null) {
      try {
        this.#write = await probeWrite(this.ctx.sql, this.#authContext());
      } catch (err) {
        this.ctx.log(`UnableToSetPolicies for a broadcast on ${this.topic}: ${(err as Error).message}`);
        return false;
      }
    }
    return this.#write;
  }

  #authContext() {
    return { topic: this.subTopic, claims: this.claims, headers: this.transport.headers };
  }

  #scheduleConfirm(): void {
    clearTimeout(this.#timer);
    if (this.#closed) return;
    const delay = Math.min(msUntilExpiry(this.claims), CONFIRM_TOKEN_MAX_MS);
    this.#timer = setTimeout(() => {
      verifyToken(this.token, this.ctx.secret).then(() => this.#scheduleConfirm(), (err) => {
        if (err instanceof TokenError) return this.shutdown(err.message);
        this.ctx.log(`Token re-check on ${this.topic} failed: ${err}`);
        this.#scheduleConfirm();
      });
    }, delay);
  }
}

/** The join error reason for a denied private channel (§3.2). */
export function unauthorizedMessage(subTopic: string): string {
  return `You do not have permissions to read from this Channel topic: ${subTopic}`;
}
