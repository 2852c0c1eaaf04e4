import { concatBytes } from "./bytes.ts";

/** Re-cuts a byte stream into blocks of exactly `size` bytes (the last may be shorter). */
export class Chunker {
  #parts: Uint8Array[] = [];
  #length = 0;

  constructor(readonly size: number) {}

  /** Adds bytes; returns the full blocks now available. */
  push(bytes: Uint8Array): Uint8Array[] {
    const out: Uint8Array[] = [];
    let offset = 0;
    while (offset < bytes.length) {
      const take = Math.min(this.size - this.#length, bytes.length - offset);
      this.#parts.push(bytes.subarray(offset, offset + take));
      this.#length += take;
      offset += take;
      if (this.#length === this.size) out.push(this.#take());
    }
    return out;
  }

  /** The remaining bytes, if any. */
  flush(): Uint8Array | undefined {
    return this.#length > 0 ? this.#take() : undefined;
  }

  #take(): Uint8Array {
    const block = this.#parts.length === 1 ? this.#parts[0].slice() : concatBytes(this.#parts);
    this.#parts = [];
    this.#length = 0;
    return block;
  }
}
