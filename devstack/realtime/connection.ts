/**
 * One WebSocket of the Realtime stand-in: decodes frames in arrival order, answers heartbeats, routes channel events
 * (supabase-platform.md §3.5, §3.6). A malformed frame or a failing handler is logged and never ends the socket.
 */
import type { Channel, Transport } from "./channel.ts";
import { joinChannel } from "./join.ts";
import type { Context } from "./hub.ts";
import { decode, encode, isRecord, type Message, type Outbound, type Vsn } from "./serializer.ts";

/** A client socket. */
export class Connection implements Transport {
  #channels = new Map<string, Channel>();
  #queue: Promise<void> = Promise.resolve();

  constructor(
    private readonly ctx: Context,
    private readonly ws: WebSocket,
    readonly vsn: Vsn,
    readonly connectToken: string,
    readonly headers: Record<string, string>,
    onClose: () => void,
  ) {
    ws.binaryType = "arraybuffer";
    ws.onmessage = (e: MessageEvent) => this.#enqueue(e.data);
    ws.onerror = (e) => ctx.log(`socket error: ${e instanceof ErrorEvent ? e.message : e.type}`);
    ws.onclose = () => {
      this.dispose();
      onClose();
    };
  }

  /** Encodes and sends; pushes a vsn 1 socket cannot represent are skipped (§3.7). */
  send(out: Outbound): void {
    if (this.ws.readyState !== WebSocket.OPEN) return;
    try {
      const frame = encode(this.vsn, out);
      if (frame !== null) this.ws.send(frame);
    } catch (err) {
      this.ctx.log(`Unable to send to a client: ${(err as Error).message}`);
    }
  }

  forget(channel: Channel): void {
    if (this.#channels.get(channel.topic) === channel) this.#channels.delete(channel.topic);
  }

  /** Drops all channels without telling the client. */
  dispose(): void {
    for (const channel of [...this.#channels.values()]) channel.dispose();
  }

  /** Closes the socket (server shutdown). */
  close(code = 1001, reason = "server shutting down"): void {
    this.dispose();
    if (this.ws.readyState === WebSocket.OPEN || this.ws.readyState === WebSocket.CONNECTING) {
      this.ws.close(code, reason);
    }
  }

  /** Waits for frames received so far to be handled (for tests and shutdown). */
  idle(): Promise<void> {
    return this.#queue;
  }

  #enqueue(data: unknown): void {
    // Phoenix handles a socket's frames one at a time (a join blocks later frames), so do the same.
    this.#queue = this.#queue.then(() => this.#handle(data)).catch((err) => {
      this.ctx.log(`Error handling a client frame: ${err instanceof Error ? err.stack : err}`);
    });
  }

  async #handle(data: unknown): Promise<void> {
    if (typeof data !== "string" && !(data instanceof ArrayBuffer)) {
      return this.ctx.log(`Ignoring a frame of unexpected type ${typeof data}`);
    }
    let inbound;
    try {
      inbound = decode(this.vsn, data);
    } catch (err) {
      return this.ctx.log(`Ignoring a malformed client frame (vsn ${this.vsn}): ${(err as Error).message}`);
    }
    if (inbound.type === "user_broadcast") {
      const { joinRef, ref, broadcast } = inbound;
      const channel = this.#member(broadcast.topic, joinRef);
      if (!channel) return this.#reply({ joinRef, ref, topic: broadcast.topic }, "error", unmatched());
      return await channel.broadcast(broadcast, ref);
    }
    await this.#route(inbound.msg);
  }

  async #route(msg: Message): Promise<void> {
    const { topic, event, payload, ref } = msg;
    if (topic === "phoenix" && event === "heartbeat") return this.#reply(msg, "ok", {});
    if (event === "phx_join") return await this.#join(msg);
    const channel = this.#member(topic, msg.joinRef);
    if (!channel) {
      return this.#reply(msg, event === "phx_leave" ? "ok" : "error", event === "phx_leave" ? {} : unmatched());
    }
    switch (event) {
      case "phx_leave":
        return channel.leave(ref);
      case "access_token":
        return await channel.refreshToken(isRecord(payload) ? payload.access_token : undefined);
      case "broadcast":
        if (!isRecord(payload)) return this.ctx.log(`Ignoring a broadcast with a non-object payload on ${topic}`);
        return await channel.broadcast(payload, ref);
      default:
        // Presence and postgres_changes are not served by the stand-in; the server ignores unknown events.
        this.ctx.log(`Unexpected message from client of type \`${event}\` on ${topic}`);
    }
  }

  async #join(msg: Message): Promise<void> {
    if (!msg.topic.startsWith("realtime:")) return this.#reply(msg, "error", unmatched());
    // Phoenix closes an existing channel on a duplicate join of the same topic.
    this.#channels.get(msg.topic)?.dispose();
    const config = isRecord(msg.payload) && isRecord(msg.payload.config) ? msg.payload.config : {};
    if (Array.isArray(config.postgres_changes) && config.postgres_changes.length > 0) {
      this.ctx.log(`${msg.topic}: postgres_changes are not served by the local stand-in (Broadcast only)`);
    }
    const result = await joinChannel(this.ctx, this, msg);
    if ("reason" in result) return this.#reply(msg, "error", { reason: result.reason });
    this.#channels.set(msg.topic, result.channel);
    // §3.6: realtime's join/3 answers {:ok, %{postgres_changes: [...]}}.
    this.#reply(msg, "ok", { postgres_changes: [] });
    result.channel.activate();
  }

  #member(topic: string, joinRef: string | null): Channel | undefined {
    const channel = this.#channels.get(topic);
    // Phoenix routes by topic and treats a push with another join_ref as stale.
    return channel && (joinRef === null || channel.joinRef === null || channel.joinRef === joinRef)
      ? channel
      : undefined;
  }

  #reply(to: Pick<Message, "joinRef" | "ref" | "topic">, status: "ok" | "error", response: unknown): void {
    const msg = {
      joinRef: to.joinRef,
      ref: to.ref,
      topic: to.topic,
      event: "phx_reply",
      payload: { status, response },
    };
    this.send({ type: "message", msg });
  }
}

function unmatched(): { reason: string } {
  return { reason: "unmatched topic" };
}
