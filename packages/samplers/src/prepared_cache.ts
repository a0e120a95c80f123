/**
 * A least-recently-used, byte-bounded, in-memory cache of prepared slices (`PreparedSlice` of
 * @mcp-medsam/io): the resize and label scan of a slice are done once per worker, and every later
 * draw of the same slice only normalises, flips and crops. Entries are keyed by file and slice;
 * a file rewritten during a run is not noticed (the on-disk volume cache is keyed by size and
 * modification time instead).
 */
import type { PreparedSlice } from '@mcp-medsam/io';

export interface PreparedCacheStats {
  hits: number;
  misses: number;
  evictions: number;
  bytes: number;
}

export class PreparedSliceCache {
  readonly maxBytes: number;
  readonly stats: PreparedCacheStats = { hits: 0, misses: 0, evictions: 0, bytes: 0 };
  // A Map iterates in insertion order: re-inserting on a hit makes the first key the oldest.
  private readonly entries = new Map<string, PreparedSlice>();

  constructor(maxBytes: number) {
    this.maxBytes = maxBytes;
  }

  static key(file: string, slice: number): string {
    return `${file}\0${slice}`;
  }

  get(key: string): PreparedSlice | undefined {
    const e = this.entries.get(key);
    if (!e) {
      this.stats.misses++;
      return undefined;
    }
    this.stats.hits++;
    this.entries.delete(key);
    this.entries.set(key, e);
    return e;
  }

  /** Keep `value` (a slice larger than the whole budget is not kept). */
  set(key: string, value: PreparedSlice): void {
    if (this.maxBytes <= 0 || value.bytes > this.maxBytes) return;
    this.entries.delete(key);
    this.entries.set(key, value);
    this.recount();
    for (const k of this.entries.keys()) {
      if (this.stats.bytes <= this.maxBytes || k === key) break;
      this.entries.delete(k);
      this.stats.evictions++;
      this.recount();
    }
  }

  get size(): number {
    return this.entries.size;
  }

  // Entries grow as labels are prepared on demand, so sizes are summed afresh.
  private recount(): void {
    let b = 0;
    for (const e of this.entries.values()) b += e.bytes;
    this.stats.bytes = b;
  }
}
