/**
 * A deterministic CLIP stand-in for runs that cannot have pubmed-clip (the demo, examples, tests
 * without downloads). It has the shape of the stand-in the original's fixtures were made with:
 * the 224 x 224 crop average-pooled to 8 x 8 per channel (192 values, index c·64 + i·8 + j), then
 * a seeded linear map to 512 features, so features still depend on the crop's content. The
 * weights come from this project's own `Rng`, so they differ from the fixtures' numpy ones.
 */
import { Rng } from '@mcp-medsam/core/common';
import { CLIP_TEXT_STRINGS } from './modality_text.js';
import { CLIP_FEATURE_DIM, CLIP_IMAGE_SIZE, checkImageBatch, type ImageFeatureProvider } from './provider.js';
import { TextFeatureTable } from './text_table.js';

/** Side of the pooling window: 224 / 28 = 8 cells per side. */
export const STANDIN_POOL = 28;
/** Pooled values per crop: 3 channels x 8 x 8. */
export const STANDIN_POOLED = 3 * (CLIP_IMAGE_SIZE / STANDIN_POOL) ** 2;
/** The seed the demo and examples use unless told otherwise. */
export const STANDIN_SEED = 20240512;

export interface StandinClipWeights {
  seed: number;
  /** (192, 512) row-major, N(0,1)/√48: features of real crops are O(1). */
  projWeight: Float32Array;
  /** (512,), N(0, 0.1). */
  projBias: Float32Array;
  /** One N(0,1) vector per modality string, drawn after the projection. */
  text: Map<string, Float32Array>;
}

/** The stand-in's weights and text table for a seed (the same seed gives the same values). */
export function standinClipWeights(seed = STANDIN_SEED): StandinClipWeights {
  const rng = new Rng(seed);
  const scale = 1 / Math.sqrt(STANDIN_POOLED / 4);
  const projWeight = Float32Array.from(
    { length: STANDIN_POOLED * CLIP_FEATURE_DIM },
    () => rng.normal() * scale,
  );
  const projBias = Float32Array.from({ length: CLIP_FEATURE_DIM }, () => rng.normal() * 0.1);
  const text = new Map<string, Float32Array>();
  for (const s of CLIP_TEXT_STRINGS)
    text.set(
      s,
      Float32Array.from({ length: CLIP_FEATURE_DIM }, () => rng.normal()),
    );
  return { seed, projWeight, projBias, text };
}

/** The stand-in's text features as a {@link TextFeatureTable} (model "standin"). */
export function standinTextTable(seed = STANDIN_SEED): TextFeatureTable {
  const w = standinClipWeights(seed);
  return TextFeatureTable.fromJSON(standinTextJSON(w));
}

/** The JSON layout of the stand-in's text table, for writing next to an exported vision graph. */
export function standinTextJSON(w: StandinClipWeights): {
  model: string;
  dim: number;
  seed: number;
  features: Record<string, number[]>;
} {
  return {
    model: 'standin',
    dim: CLIP_FEATURE_DIM,
    seed: w.seed,
    features: Object.fromEntries([...w.text].map(([k, v]) => [k, Array.from(v)])),
  };
}

/** The stand-in image tower in plain TypeScript (no onnxruntime needed). */
export class StandinClipVision implements ImageFeatureProvider {
  readonly dim = CLIP_FEATURE_DIM;
  readonly imageSize = CLIP_IMAGE_SIZE;
  readonly weights: StandinClipWeights;

  constructor(seedOrWeights: number | StandinClipWeights = STANDIN_SEED) {
    this.weights = typeof seedOrWeights === 'number' ? standinClipWeights(seedOrWeights) : seedOrWeights;
  }

  embed(pixels: Float32Array, n: number): Promise<Float32Array> {
    try {
      return Promise.resolve(this.embedSync(pixels, n));
    } catch (e) {
      return Promise.reject(e as Error);
    }
  }

  /** {@link embed} without the promise: the work is synchronous anyway. */
  embedSync(pixels: Float32Array, n: number): Float32Array {
    checkImageBatch(pixels, n, this.imageSize, { who: 'StandinClipVision.embed' });
    const side = this.imageSize;
    const cells = side / STANDIN_POOL;
    const out = new Float32Array(n * this.dim);
    const pooled = new Float64Array(STANDIN_POOLED);
    const acc = new Float64Array(this.dim);
    const { projWeight, projBias } = this.weights;
    for (let b = 0; b < n; b++) {
      pooled.fill(0);
      const base = b * 3 * side * side;
      for (let c = 0; c < 3; c++)
        for (let y = 0; y < side; y++) {
          const row = base + (c * side + y) * side;
          const cellRow = c * cells * cells + Math.floor(y / STANDIN_POOL) * cells;
          for (let x = 0; x < side; x++) pooled[cellRow + Math.floor(x / STANDIN_POOL)] += pixels[row + x];
        }
      acc.set(projBias);
      const area = STANDIN_POOL * STANDIN_POOL;
      for (let p = 0; p < STANDIN_POOLED; p++) {
        const v = pooled[p] / area;
        const wRow = p * this.dim;
        for (let k = 0; k < this.dim; k++) acc[k] += v * projWeight[wRow + k];
      }
      out.set(acc, b * this.dim);
    }
    return out;
  }

  close(): Promise<void> {
    return Promise.resolve();
  }
}
