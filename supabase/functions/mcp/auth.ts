/**
 * Who may use the MCP endpoint: a user or the service role with a bearer JWT, verified as every message route
 * verifies it (_shared/auth.ts). MCP clients read a 401's `WWW-Authenticate` header (RFC 6750 §3) to decide
 * that a token is needed or was refused, so the 401 carries one, with the body in the contract's shape.
 */
import type { Context } from "hono";
import type { AuthInfo } from "@modelcontextprotocol/server";
import { type Caller, messageCaller } from "../_shared/auth.ts";
import { BusError } from "../_shared/errors.ts";

const REALM = "message-bus";

/**
 * The caller of an MCP request.
 * @throws BusError 401 with `WWW-Authenticate` when the token is missing, invalid, expired or anon.
 */
export async function mcpCaller(c: Context): Promise<Caller> {
  try {
    return await messageCaller(c);
  } catch (err) {
    if (!(err instanceof BusError) || err.status !== 401) throw err;
    // No credentials: a bare challenge; refused credentials: error="invalid_token" with the reason (§3.1).
    const challenge = c.req.header("authorization") === undefined
      ? `Bearer realm="${REALM}"`
      : `Bearer realm="${REALM}", error="invalid_token", error_description="${quoted(err.message)}"`;
    throw new BusError(401, err.code, err.message, err.details, err.extra, { "www-authenticate": challenge });
  }
}

/** The SDK's view of the caller: handed to the server factory and to every handler as `authInfo`. */
export function authInfoOf(caller: Caller, c: Context): AuthInfo {
  const token = /^Bearer\s+(\S+)$/i.exec(c.req.header("authorization") ?? "")?.[1] ?? "";
  const exp = caller.claims.exp;
  return {
    token,
    clientId: caller.sub ?? caller.role,
    scopes: [],
    expiresAt: typeof exp === "number" ? exp : undefined,
    extra: { caller },
  };
}

/** A quoted-string's content (RFC 9110 §5.6.4): no quotes or backslashes, printable ASCII only. */
function quoted(text: string): string {
  return text.replace(/[^\x20-\x7e]|["\\]/g, "'");
}
