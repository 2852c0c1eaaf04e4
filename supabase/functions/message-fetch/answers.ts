/** Pieces of message-fetch's answers shared by the payload and the completion routes. */
import { BusError } from "../_shared/errors.ts";
import { decodeProven, type StoredMeta, storedMetaOf } from "../_shared/payload_read.ts";
import type { FetchRow } from "../_shared/message/read.ts";
import { metaBody } from "../_shared/message/meta.ts";

/** The stored-payload description of a row, with whether the watcher proved its decode (see decodeProven). */
export function storedMeta(meta: FetchRow): StoredMeta {
  return { ...storedMetaOf(meta), decode_proven: decodeProven(meta.watcher) };
}

/** 410 `expired`, with the metadata (CONTRACT.md §5). */
export function gone(meta: FetchRow): BusError {
  return new BusError(
    410,
    "expired",
    `Message ${meta.transaction_id} expired at ${new Date(meta.expires_at).toISOString()}`,
    {},
    {
      transaction_id: meta.transaction_id,
      status: "expired",
      meta: metaBody(meta),
    },
  );
}

/** Whether `If-None-Match` names `etag` (weak comparison, RFC 9110 §13.1.2). */
export function matchesEtag(header: string | undefined, etag: string): boolean {
  if (!header) return false;
  const opaque = (tag: string) => tag.trim().replace(/^W\//, "");
  return header.split(",").some((t) => t.trim() === "*" || opaque(t) === opaque(etag));
}
