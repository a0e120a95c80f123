import { describe, expect, it } from 'vitest';
import { FormatError, InputError } from '@mcp-medsam/core/common';
import { CachedImageFeatures, cropKey, pixelsPerImage, type ImageFeatureProvider } from '../src/index.js';

const SIZE = 2;
const PER = pixelsPerImage(SIZE); // 12 values per crop
const DIM = 3;

/** A deterministic fake tower that records how many crops each call received. */
class FakeVision implements ImageFeatureProvider {
  readonly dim = DIM;
  readonly imageSize = SIZE;
  calls: number[] = [];
  seen: number[] = [];
  closed = false;
  gate: Promise<void> | null = null;
  fail: Error | null = null;

  static features(crop: Float32Array): number[] {
    let s = 0;
    let w = 0;
    for (let i = 0; i < crop.length; i++) {
      s += crop[i];
      w += crop[i] * (i + 1);
    }
    return [s, w, crop[0]];
  }

  async embed(pixels: Float32Array, n: number): Promise<Float32Array> {
    this.calls.push(n);
    if (this.gate) await this.gate;
    if (this.fail) throw this.fail;
    const out = new Float32Array(n * DIM);
    for (let i = 0; i < n; i++) {
      const crop = pixels.subarray(i * PER, (i + 1) * PER);
      this.seen.push(crop[0]);
      out.set(FakeVision.features(crop), i * DIM);
    }
    return out;
  }

  async close(): Promise<void> {
    this.closed = true;
  }
}

/** Crops whose first value is their id, so a crop is recognisable in `seen`. */
function crops(ids: number[]): Float32Array {
  const out = new Float32Array(ids.length * PER);
  ids.forEach((id, r) => {
    for (let k = 0; k < PER; k++) out[r * PER + k] = k === 0 ? id : (id * 31 + k) % 7;
  });
  return out;
}

async function uncached(ids: number[]): Promise<number[]> {
  return Array.from(await new FakeVision().embed(crops(ids), ids.length));
}

describe('CachedImageFeatures', () => {
  it('embeds each distinct crop once and counts hits and misses', async () => {
    const inner = new FakeVision();
    const cache = new CachedImageFeatures(inner);
    expect(cache.dim).toBe(DIM);
    expect(cache.imageSize).toBe(SIZE);
    expect(Array.from(await cache.embed(crops([1, 2, 3]), 3))).toEqual(await uncached([1, 2, 3]));
    expect(cache.stats).toEqual({ hits: 0, misses: 3, evictions: 0, entries: 3, maxEntries: 4096 });
    expect(Array.from(await cache.embed(crops([3, 1]), 2))).toEqual(await uncached([3, 1]));
    expect(cache.stats).toMatchObject({ hits: 2, misses: 3, entries: 3 });
    expect(inner.calls).toEqual([3]);
  });

  it('sends only the misses, once each, and keeps the caller order', async () => {
    const inner = new FakeVision();
    const cache = new CachedImageFeatures(inner);
    await cache.embed(crops([10, 20]), 2);
    const ids = [30, 10, 40, 30, 20, 50, 40];
    expect(Array.from(await cache.embed(crops(ids), ids.length))).toEqual(await uncached(ids));
    expect(inner.calls).toEqual([2, 3]);
    expect(inner.seen).toEqual([10, 20, 30, 40, 50]);
    // 10 and 20 cached, the second 30 and 40 repeat a miss of the same batch.
    expect(cache.stats).toMatchObject({ hits: 4, misses: 5, entries: 5 });
  });

  it('results are identical to the uncached provider for many random batches', async () => {
    const inner = new FakeVision();
    const cache = new CachedImageFeatures(inner, { maxEntries: 5 });
    let seed = 7;
    const rand = () => (seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
    for (let round = 0; round < 40; round++) {
      const ids = Array.from({ length: 1 + Math.floor(rand() * 6) }, () => Math.floor(rand() * 9));
      expect(Array.from(await cache.embed(crops(ids), ids.length))).toEqual(await uncached(ids));
      expect(cache.stats.entries).toBeLessThanOrEqual(5);
    }
    const s = cache.stats;
    expect(s.misses).toBe(inner.seen.length);
    expect(s.hits + s.misses).toBeGreaterThan(s.misses);
  });

  it('evicts the least recently used entry', async () => {
    const inner = new FakeVision();
    const cache = new CachedImageFeatures(inner, { maxEntries: 2 });
    await cache.embed(crops([1]), 1);
    await cache.embed(crops([2]), 1);
    await cache.embed(crops([1]), 1); // 1 is now more recent than 2
    await cache.embed(crops([3]), 1); // evicts 2
    expect(cache.stats).toMatchObject({ hits: 1, misses: 3, evictions: 1, entries: 2 });
    inner.seen = [];
    await cache.embed(crops([1, 3]), 2);
    expect(inner.seen).toEqual([]);
    await cache.embed(crops([2]), 1);
    expect(inner.seen).toEqual([2]);
    expect(cache.stats).toMatchObject({ hits: 3, misses: 4, evictions: 2, entries: 2 });
  });

  it('maxEntries 0 caches nothing but still de-duplicates a batch', async () => {
    const inner = new FakeVision();
    const cache = new CachedImageFeatures(inner, { maxEntries: 0 });
    expect(Array.from(await cache.embed(crops([4, 4, 5]), 3))).toEqual(await uncached([4, 4, 5]));
    await cache.embed(crops([4]), 1);
    expect(inner.calls).toEqual([2, 1]);
    expect(cache.stats).toMatchObject({ hits: 1, misses: 3, entries: 0 });
  });

  it('a crop another call is embedding is waited for, not embedded twice', async () => {
    const inner = new FakeVision();
    let open!: () => void;
    inner.gate = new Promise((r) => (open = r));
    const cache = new CachedImageFeatures(inner);
    const a = cache.embed(crops([1, 2]), 2);
    const b = cache.embed(crops([2, 3]), 2);
    open();
    expect(Array.from(await a)).toEqual(await uncached([1, 2]));
    expect(Array.from(await b)).toEqual(await uncached([2, 3]));
    expect(inner.calls).toEqual([2, 1]);
    expect(cache.stats).toMatchObject({ hits: 1, misses: 3 });
  });

  it('an inner failure reaches every waiter and is not cached', async () => {
    const inner = new FakeVision();
    inner.fail = new Error('boom');
    const cache = new CachedImageFeatures(inner);
    const a = cache.embed(crops([1, 2]), 2);
    const b = cache.embed(crops([2]), 1);
    await expect(a).rejects.toThrow('boom');
    await expect(b).rejects.toThrow('boom');
    inner.fail = null;
    expect(Array.from(await cache.embed(crops([2]), 1))).toEqual(await uncached([2]));
    expect(cache.stats.entries).toBe(1);
  });

  it('an inner provider returning the wrong length gives a FormatError', async () => {
    const inner = new FakeVision();
    inner.embed = async () => new Float32Array(1);
    await expect(new CachedImageFeatures(inner).embed(crops([1]), 1)).rejects.toBeInstanceOf(FormatError);
  });

  it('checks the pixel count and options; an empty batch is fine', async () => {
    const cache = new CachedImageFeatures(new FakeVision());
    await expect(cache.embed(new Float32Array(PER + 1), 1)).rejects.toBeInstanceOf(InputError);
    await expect(cache.embed(crops([1]), 2)).rejects.toThrow(/expected 2 x 3 x 2 x 2 = 24 values, got 12/);
    expect((await cache.embed(new Float32Array(0), 0)).length).toBe(0);
    expect(() => new CachedImageFeatures(new FakeVision(), { maxEntries: -1 })).toThrow(InputError);
  });

  it('clear drops entries, close closes the inner provider', async () => {
    const inner = new FakeVision();
    const cache = new CachedImageFeatures(inner);
    await cache.embed(crops([1]), 1);
    cache.clear();
    await cache.embed(crops([1]), 1);
    expect(inner.calls).toEqual([1, 1]);
    await cache.close();
    expect(inner.closed).toBe(true);
    expect(cache.stats.entries).toBe(0);
  });

  it('keys crops by their bytes', () => {
    const a = crops([1, 2]);
    expect(cropKey(a.subarray(0, PER))).toBe(cropKey(crops([1])));
    expect(cropKey(a.subarray(PER))).not.toBe(cropKey(crops([1])));
    expect(cropKey(Float32Array.of(0))).not.toBe(cropKey(Float32Array.of(-0)));
  });
});
