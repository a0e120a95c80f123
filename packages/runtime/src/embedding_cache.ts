/**
 * Slice embeddings kept between decoder calls. The original recomputes a slice's embedding for
 * every box that visits it; the embedding depends on the slice alone, so each slice is encoded
 * once while it stays in this byte-bounded LRU.
 */
export class EmbeddingCache {
  readonly maxBytes: number;
  // Map iteration order is insertion order: re-inserting on a hit makes the first key the LRU one.
  readonly #entries = new Map<number, Float32Array>();
  #bytes = 0;
  hits = 0;
  misses = 0;

  constructor(maxBytes: number) {
    this.maxBytes = maxBytes;
  }

  /** The embedding of slice `z`, computed by `encode` on a miss. */
  async get(z: number, encode: () => Promise<Float32Array>): Promise<Float32Array> {
    const hit = this.#entries.get(z);
    if (hit) {
      this.hits++;
      this.#entries.delete(z);
      this.#entries.set(z, hit);
      return hit;
    }
    this.misses++;
    const emb = await encode();
    // Always keep the newest entry, even over budget: the current slice is in use.
    for (const [key, v] of this.#entries) {
      if (this.#bytes + emb.byteLength <= this.maxBytes) break;
      this.#entries.delete(key);
      this.#bytes -= v.byteLength;
    }
    this.#entries.set(z, emb);
    this.#bytes += emb.byteLength;
    return emb;
  }
}
