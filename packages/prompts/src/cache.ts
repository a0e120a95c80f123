/**
 * A content-addressed cache in front of an image-feature provider. Training revisits the same
 * boxes epoch after epoch and 3D inference often repeats a crop slice to slice; CLIP is frozen, so
 * a crop's features never change and each distinct crop needs embedding once.
 */
import { createHash } from 'node:crypto';
import { FormatError, InputError } from '@mcp-medsam/core/common';
import { checkImageBatch, pixelsPerImage, type ImageFeatureProvider } from './provider.js';

/** Options of {@link CachedImageFeatures}. */
export interface CachedImageFeaturesOptions {
  /**
   * Most feature vectors kept (default 4096, about 8 MB at 512 floats); the least recently used
   * are evicted first. 0 keeps nothing, leaving only the de-duplication of concurrent requests.
   */
  maxEntries?: number;
}

/** Counters of a {@link CachedImageFeatures}. */
export interface ImageFeatureCacheStats {
  /** Crops answered without the inner provider: cached, already in flight, or repeated in a batch. */
  hits: number;
  /** Crops sent to the inner provider. */
  misses: number;
  /** Entries dropped to stay within `maxEntries`. */
  evictions: number;
  /** Entries held now. */
  entries: number;
  maxEntries: number;
}

/**
 * The cache key of one crop: SHA-256 of its float32 bytes. A cryptographic hash, so that two
 * different crops never share features by accident; at about 1.5 ms per 224 x 224 crop it is far
 * cheaper than the ViT it saves.
 */
export function cropKey(crop: Float32Array): string {
  return createHash('sha256')
    .update(new Uint8Array(crop.buffer, crop.byteOffset, crop.byteLength))
    .digest('base64');
}

/** A promise with its settle functions exposed, for requests other callers may join. */
interface Deferred {
  promise: Promise<Float32Array>;
  resolve: (v: Float32Array) => void;
  reject: (e: unknown) => void;
}

function deferred(): Deferred {
  let resolve!: (v: Float32Array) => void;
  let reject!: (e: unknown) => void;
  const promise = new Promise<Float32Array>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

/**
 * {@link ImageFeatureProvider} that embeds each distinct crop once. A batch is split into cached
 * crops and misses; only the distinct misses go to the inner provider, in one call, and the
 * answers are put back in the caller's order. A crop another call is already embedding is waited
 * for rather than embedded again.
 */
export class CachedImageFeatures implements ImageFeatureProvider {
  readonly inner: ImageFeatureProvider;
  readonly maxEntries: number;
  // Map iteration order is insertion order: re-inserting on every hit makes the first key the
  // least recently used one.
  readonly #entries = new Map<string, Float32Array>();
  readonly #pending = new Map<string, Promise<Float32Array>>();
  #hits = 0;
  #misses = 0;
  #evictions = 0;

  constructor(inner: ImageFeatureProvider, options: CachedImageFeaturesOptions = {}) {
    const maxEntries = options.maxEntries ?? 4096;
    if (!Number.isSafeInteger(maxEntries) || maxEntries < 0) {
      throw new InputError(
        `CachedImageFeatures: maxEntries must be a non-negative integer, got ${maxEntries}`,
      );
    }
    this.inner = inner;
    this.maxEntries = maxEntries;
  }

  get dim(): number {
    return this.inner.dim;
  }

  get imageSize(): number {
    return this.inner.imageSize;
  }

  /** A snapshot of the counters. */
  get stats(): ImageFeatureCacheStats {
    return {
      hits: this.#hits,
      misses: this.#misses,
      evictions: this.#evictions,
      entries: this.#entries.size,
      maxEntries: this.maxEntries,
    };
  }

  /** Embed `n` crops, asking the inner provider only for the distinct ones not seen before. */
  async embed(pixels: Float32Array, n: number): Promise<Float32Array> {
    checkImageBatch(pixels, n, this.imageSize, { who: 'CachedImageFeatures.embed' });
    const per = pixelsPerImage(this.imageSize);
    const dim = this.dim;
    const out = new Float32Array(n * dim);
    const waits: { row: number; promise: Promise<Float32Array> }[] = [];
    const misses: { key: string; row: number; settle: Deferred }[] = [];

    for (let row = 0; row < n; row++) {
      const key = cropKey(pixels.subarray(row * per, (row + 1) * per));
      const cached = this.#entries.get(key);
      if (cached) {
        this.#entries.delete(key);
        this.#entries.set(key, cached);
        out.set(cached, row * dim);
        this.#hits++;
        continue;
      }
      const inFlight = this.#pending.get(key);
      if (inFlight) {
        waits.push({ row, promise: inFlight });
        this.#hits++;
        continue;
      }
      const settle = deferred();
      this.#pending.set(key, settle.promise);
      misses.push({ key, row, settle });
      waits.push({ row, promise: settle.promise });
      this.#misses++;
    }

    if (misses.length) {
      const packed = new Float32Array(misses.length * per);
      misses.forEach((m, j) => packed.set(pixels.subarray(m.row * per, (m.row + 1) * per), j * per));
      this.#fetch(packed, misses, dim);
    }
    await Promise.all(waits.map(async ({ row, promise }) => out.set(await promise, row * dim)));
    return out;
  }

  /** Drop every cached vector (the counters are kept). */
  clear(): void {
    this.#entries.clear();
  }

  /** Drop the cache and close the inner provider. */
  async close(): Promise<void> {
    this.clear();
    await this.inner.close();
  }

  /** Embed the distinct misses in one inner call and settle everyone waiting for them. */
  #fetch(packed: Float32Array, misses: { key: string; settle: Deferred }[], dim: number): void {
    const fail = (err: unknown) => {
      for (const m of misses) {
        this.#pending.delete(m.key);
        m.settle.reject(err);
      }
    };
    // Through a promise chain so that a provider that throws synchronously is handled the same way.
    Promise.resolve()
      .then(() => this.inner.embed(packed, misses.length))
      .then((features) => {
        if (features.length !== misses.length * dim) {
          throw new FormatError(
            `CachedImageFeatures: the inner provider returned ${features.length} values for ${misses.length} crops of dim ${dim}`,
          );
        }
        misses.forEach((m, j) => {
          const v = features.slice(j * dim, (j + 1) * dim);
          this.#pending.delete(m.key);
          this.#store(m.key, v);
          m.settle.resolve(v);
        });
      })
      .catch(fail);
  }

  #store(key: string, v: Float32Array): void {
    if (this.maxEntries === 0) return;
    this.#entries.set(key, v);
    while (this.#entries.size > this.maxEntries) {
      const oldest = this.#entries.keys().next().value as string;
      this.#entries.delete(oldest);
      this.#evictions++;
    }
  }
}
