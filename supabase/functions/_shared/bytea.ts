/**
 * A faster `bytea` codec for postgres.js. Payload chunks travel as hex text (`\x…`); postgres.js converts with
 * `Buffer` hex, which in Deno took 25.5 ms per 3 MiB where `Uint8Array.fromHex` took 2.1 ms (measured here, Deno
 * 2.9). The native methods are used where the runtime has them, else `Buffer` (older runtimes).
 */
import { Buffer } from "node:buffer";

type HexUint8Array = typeof Uint8Array & { fromHex?: (hex: string) => Uint8Array };
type HexView = Uint8Array & { toHex?: () => string };

const fromHex = (Uint8Array as HexUint8Array).fromHex;
const hasToHex = typeof (new Uint8Array(0) as HexView).toHex === "function";

/** `\x<hex>` for a byte array. */
export function serializeBytea(bytes: Uint8Array): string {
  return "\\x" + (hasToHex ? (bytes as HexView).toHex!() : Buffer.from(bytes).toString("hex"));
}

/** The bytes of a `\x<hex>` value. */
export function parseBytea(text: string): Uint8Array {
  const hex = text.slice(2);
  return fromHex ? fromHex(hex) : new Uint8Array(Buffer.from(hex, "hex"));
}

/** The postgres.js `types` entry (oid 17). */
export const byteaType = { to: 17, from: [17], serialize: serializeBytea, parse: parseBytea };
