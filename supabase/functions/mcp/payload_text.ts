/**
 * Payload bytes as MCP text. MCP text is a JSON string, so only valid UTF-8 survives the trip byte for byte; other
 * bytes go as base64, and the answer says which (`encoding`, or `blob` instead of `text` for a resource).
 */
// fatal: invalid UTF-8 is detected, not replaced with U+FFFD; ignoreBOM: a leading BOM is part of the payload.
const strictUtf8 = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });

/** `bytes` as text when they are UTF-8, else as base64. */
export function payloadText(bytes: Uint8Array): { encoding: "utf-8" | "base64"; text: string } {
  try {
    return { encoding: "utf-8", text: strictUtf8.decode(bytes) };
  } catch (err) {
    if (!(err instanceof TypeError)) throw err; // TextDecoder's error for bytes that are not UTF-8
    return { encoding: "base64", text: bytes.toBase64() };
  }
}
