/**
 * The message path every caller shares (tool-invoke, the MCP server, replays): an invoke request that passed the
 * door is recorded with its request bytes before the provider is called, then run now (`sync`) or in the
 * background (`async`). Functions map the outcome to their protocol; failures are thrown as BusError with
 * `transaction_id` (CONTRACT.md §4).
 */
import type { Caller } from "../auth.ts";
import { BusError, invalidRequest } from "../errors.ts";
import type { Sql } from "../db.ts";
import type { Settings } from "../env.ts";
import { checkJson } from "../door/validate.ts";
import type { MemberRange } from "../door/json_scan.ts";
import { providerConfig } from "../providers/openai_compatible.ts";
import { toolNamed } from "../tools/registry.ts";
import { getMessage } from "../message/lifecycle.ts";
import type { MessageRow } from "../message/row.ts";
import { type InvokeBody, invokeBodyLimits, invokeBodySchema } from "./request.ts";
import { type RateStanding, recordMessage } from "./record.ts";
import { type Route, runMessage } from "./run.ts";
import { parseRouteRef, type ProviderConfig } from "../providers/config.ts";
import { failureError } from "./answers.ts";
import { callUnstored, type Unstored } from "./unstored.ts";
import { isDatabaseUnreachable } from "../db_errors.ts";
import { resolveFiles } from "../files/resolve.ts";
import type { StreamRelay } from "../stream/relay.ts";

/** The service role's messages belong to this owner unless the body names one. */
export const SERVICE_OWNER = "00000000-0000-0000-0000-000000000000";

export interface SubmitDeps {
  settings: Settings;
  sql: Sql;
  /** Background work (EdgeRuntime.waitUntil on the platform). */
  waitUntil: (p: Promise<unknown>) => void;
  /** Provider HTTP, injectable for tests. */
  fetch?: typeof fetch;
}

/** An invoke request that passed the door. */
export interface Submission {
  caller: Caller;
  body: InvokeBody;
  /** The request exactly as received (stored with the message). */
  request: Uint8Array;
  /** Byte ranges of the request's top-level members (`input` goes to the provider as received). */
  members: Map<string, MemberRange>;
  idempotencyKey?: string;
  replayOf?: string;
  /** Who owns the new message when not the caller (a replay keeps the original owner). */
  owner?: string;
  /**
   * Whether the caller can take an unstored answer (degraded mode, MESSAGE_BUS_INLINE_FALLBACK): tool-invoke can
   * answer the provider's bytes inline; a caller that cannot gets 503 bus_unavailable instead.
   */
  allowUnstored?: boolean;
  /** Called once the request's bytes are no longer needed (after the answer for sync, after the run for async). */
  release?: () => void;
  /**
   * Stream the answer (the openai endpoint, CONTRACT.md §10): the provider is asked for a stream, relayed to
   * `relay` and stored as relayed. Sync only.
   */
  stream?: { relay: StreamRelay };
}

export type Submitted =
  & (
    | { status: "completed"; row: MessageRow; timing: { validatedMs: number; recordedMs: number } }
    | { status: "pending"; transactionId: string }
    /** Degraded mode: the database was unreachable; the answer went out unstored (unstored.ts). */
    | { status: "unstored"; unstored: Unstored }
    /**
     * A stream under way: `run` settles when the message is finished (rejecting with the recorded failure);
     * `relay.opened` resolves once its first event arrived. Whichever comes first decides the answer.
     */
    | { status: "streaming"; transactionId: string; run: Promise<MessageRow> }
  )
  & { rate: RateStanding | null };

/**
 * Checks an invoke request that did not come through an HTTP door (an MCP tool call, a stored request run again):
 * the same checks and the same 400 as tool-invoke's door.
 * @throws BusError 400 naming every problem.
 */
export function checkInvokeRequest(
  request: Uint8Array,
  s: Settings,
): { body: InvokeBody; members: Map<string, MemberRange> } {
  const { value, members } = checkJson(request, invokeBodySchema(s), invokeBodyLimits(s));
  return { body: value, members };
}

/**
 * Records and runs one invoke. An idempotent repeat answers the first message's state (202 while it is pending,
 * its failure once failed) and calls nothing.
 * @throws BusError: 400, 503 `provider_not_configured`, or the message's failure with `transaction_id`.
 */
export function submitInvoke(
  deps: SubmitDeps,
  sub: Submission & { stream?: undefined },
): Promise<Exclude<Submitted, { status: "streaming" }>>;
export function submitInvoke(deps: SubmitDeps, sub: Submission): Promise<Submitted>;
export async function submitInvoke(deps: SubmitDeps, sub: Submission): Promise<Submitted> {
  const s = deps.settings;
  const started = performance.now();
  let released = false;
  const release = () => {
    if (!released) {
      released = true;
      sub.release?.();
    }
  };
  let background = false;
  try {
    const { body } = sub;
    const owner = sub.owner ?? ownerOf(sub.caller, body.owner_id);
    const tool = toolNamed(body.tool);
    if (!tool) {
      throw invalidRequest(`Unknown tool ${JSON.stringify(body.tool)}`, [{ path: "tool", message: "unknown" }]);
    }
    const config = providerConfig(body.provider ?? s.MESSAGE_BUS_DEFAULT_PROVIDER, s);
    if (!config.apiKey) {
      throw new BusError(503, "provider_not_configured", `Provider ${config.name} has no API key configured`);
    }
    const model = body.model ?? config.defaultModel;
    const routes = routesOf(config, model, body.fallbacks, s);
    // Files (issue #16): unknown, foreign or (inline) binary files are a 400 before anything is recorded.
    await resolveFiles(deps.sql, owner, body.input, config.name, s);
    const validatedMs = performance.now() - started;

    const input = sub.members.get("input");
    if (!input) throw new Error("an invoke request passed the door without an input member");
    const inputJson = sub.request.subarray(input.start, input.end);
    let recorded;
    try {
      recorded = await recordMessage(deps.sql, {
        owner,
        tool: tool.name,
        provider: config.name,
        model,
        sessionId: body.session_id,
        idempotencyKey: sub.idempotencyKey,
        ttlSeconds: body.ttl_seconds ?? s.MESSAGE_BUS_DEFAULT_TTL_SECONDS,
        metadata: body.metadata ?? {},
        mode: body.mode,
        stream: sub.stream !== undefined,
        replayOf: sub.replayOf,
        request: sub.request,
        leaseSeconds: s.MESSAGE_BUS_LEASE_SECS,
        maxRequestBytes: s.MESSAGE_BUS_MAX_PAYLOAD_MB * 1024 * 1024,
        defaultRpm: s.MESSAGE_BUS_USER_RPM,
        slot: config.maxConcurrency === undefined
          ? undefined
          : { max: config.maxConcurrency, leaseSeconds: s.PROVIDER_LEASE_SECS },
      });
    } catch (err) {
      if (!isDatabaseUnreachable(err)) throw err;
      console.error("[invoke] the database is unreachable:", err instanceof Error ? err.message : err);
      if (s.MESSAGE_BUS_INLINE_FALLBACK && body.mode === "sync" && sub.allowUnstored) {
        return { status: "unstored", unstored: await callUnstored(tool, inputJson, routes, s, deps.fetch), rate: null };
      }
      throw new BusError(
        503,
        "bus_unavailable",
        "The bus's database is unreachable; nothing was recorded, retry shortly",
        {},
        {},
        {
          "retry-after": "5",
        },
      );
    }
    if (recorded.status === "rate_limited") throw rateLimited(recorded.rate!);
    if (!recorded.created) return { ...(await existing(deps.sql, recorded.transactionId)), rate: recorded.rate };
    const recordedMs = performance.now() - started;

    const run = () =>
      runMessage({
        sql: deps.sql,
        transactionId: recorded.transactionId,
        run: 1,
        tool,
        input: body.input,
        inputJson,
        routes,
        primary: { state: recorded.routeState ?? "closed", openUntil: recorded.routeOpenUntil, slot: recorded.slot },
        settings: s,
        fetch: deps.fetch,
        stream: sub.stream !== undefined,
        relay: sub.stream?.relay,
      });
    if (sub.stream) {
      // The run outlives the answer (a client that leaves mid-stream loses nothing): it holds the request's bytes.
      background = true;
      const running = run().finally(release);
      deps.waitUntil(running.catch((err) => {
        console.error(
          `[invoke] stream ${recorded.transactionId} failed:`,
          err instanceof BusError ? err.toBody() : err,
        );
      }));
      return { status: "streaming", transactionId: recorded.transactionId, run: running, rate: recorded.rate };
    }
    if (body.mode === "async") {
      background = true;
      deps.waitUntil(
        run().catch((err) => {
          // Recorded on the message as failed (or, if even that failed, reaped when the lease runs out): a log line.
          console.error(
            `[invoke] async ${recorded.transactionId} failed:`,
            err instanceof BusError ? err.toBody() : err,
          );
        }).finally(release),
      );
      return { status: "pending", transactionId: recorded.transactionId, rate: recorded.rate };
    }
    // A sync run is background work too: past the gateway's 150 s idle limit the caller gets a 504 while the run
    // goes on to store the answer (an Idempotency-Key retry then returns it, CONTRACT.md §4); on the platform only
    // work registered with waitUntil is sure to outlive the request (supabase-platform.md §1.7, §1.8).
    const running = run();
    deps.waitUntil(running.then(
      () => undefined,
      (err) => {
        // Failures are answered to the caller (BusError); anything else is logged here as well as by the caller.
        if (!(err instanceof BusError)) console.error(`[invoke] sync ${recorded.transactionId} failed:`, err);
      },
    ));
    return { status: "completed", row: await running, timing: { validatedMs, recordedMs }, rate: recorded.rate };
  } finally {
    if (!background) release();
  }
}

/** Who owns the message: the caller, or for the service role the body's `owner_id`. */
function ownerOf(caller: Caller, ownerId: string | undefined): string {
  if (caller.role === "service_role") return ownerId ?? SERVICE_OWNER;
  if (ownerId && ownerId !== caller.sub) {
    throw invalidRequest("owner_id may only be set by the service role", [
      { path: "owner_id", message: "not allowed for user tokens" },
    ]);
  }
  return caller.sub!;
}

/**
 * The requested route, then the fallbacks (the request's, else the provider's `<NAME>_FALLBACKS`), without repeats;
 * a fallback naming only a provider takes that provider's default model.
 */
export function routesOf(
  primary: ProviderConfig,
  model: string,
  fallbacks: string[] | undefined,
  s: Settings,
): Route[] {
  const refs = fallbacks?.map(parseRouteRef) ?? primary.fallbacks;
  const routes: Route[] = [{ provider: primary, model }];
  for (const ref of refs) {
    const provider = s.providers.get(ref.provider);
    if (!provider) continue; // the door and the settings check names; a provider removed since is skipped
    const route = { provider, model: ref.model ?? provider.defaultModel };
    if (!routes.some((r) => r.provider.name === route.provider.name && r.model === route.model)) routes.push(route);
  }
  return routes;
}

/**
 * 429 `rate_limited` with Retry-After and the IETF RateLimit headers (draft-ietf-httpapi-ratelimit-headers:
 * `RateLimit-Policy: "user";q=<limit>;w=60`, `RateLimit: "user";r=<remaining>;t=<seconds to reset>`).
 */
function rateLimited(rate: RateStanding): BusError {
  return new BusError(
    429,
    "rate_limited",
    `Past your limit of ${rate.limit} requests per minute; retry after ${rate.resetSeconds} s`,
    { limit: rate.limit, retry_after_seconds: rate.resetSeconds },
    {},
    { "retry-after": String(rate.resetSeconds), ...rateLimitHeaders(rate) },
  );
}

/** The IETF RateLimit headers of a standing. */
export function rateLimitHeaders(rate: RateStanding): Record<string, string> {
  return {
    "ratelimit-policy": `"user";q=${rate.limit};w=60`,
    ratelimit: `"user";r=${rate.remaining};t=${rate.resetSeconds}`,
  };
}

/** An idempotent repeat: the same transaction, answered by its current state (CONTRACT.md §4). */
async function existing(
  sql: Sql,
  transactionId: string,
): Promise<
  | { status: "completed"; row: MessageRow; timing: { validatedMs: number; recordedMs: number } }
  | { status: "pending"; transactionId: string }
> {
  const row = await getMessage(sql, transactionId);
  if (!row) throw new Error(`message ${transactionId} vanished`);
  if (row.status === "pending") return { status: "pending", transactionId };
  if (row.status === "failed") throw failureError(row.transaction_id, row.error ?? {});
  return { status: "completed", row, timing: { validatedMs: 0, recordedMs: 0 } };
}
