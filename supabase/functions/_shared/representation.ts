/** What the functions that serve stored bytes (message-fetch, files) share about the representation they send. */

/** Whether an `Accept-Encoding` header accepts gzip (RFC 9110 §12.5.3: `gzip` or `*`, with q > 0). */
export function acceptsGzip(header: string | undefined): boolean {
  if (!header) return false;
  return header.split(",").some((part) => {
    const [coding, ...params] = part.trim().toLowerCase().split(";");
    const q = params.map((p) => p.trim()).find((p) => p.startsWith("q="));
    return (coding === "gzip" || coding === "*") && (!q || Number(q.slice(2)) > 0);
  });
}

/** base64 of the bytes of a hex digest (the form of `Repr-Digest`, RFC 9530). */
export function hexToBase64(hex: string): string {
  const bytes = new Uint8Array(hex.length / 2);
  for (let i = 0; i < bytes.length; i++) bytes[i] = parseInt(hex.slice(i * 2, i * 2 + 2), 16);
  return btoa(String.fromCharCode(...bytes));
}
