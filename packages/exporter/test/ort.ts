// onnxruntime-node (a devDependency of this package; CommonJS, hence require).
import { createRequire } from 'node:module';
import type * as Ort from 'onnxruntime-node';
import type { tf } from '@mcp-medsam/core';
import type { DecoderTensors } from '../src/index.js';

const require = createRequire(import.meta.url);
export const ort = require('onnxruntime-node') as typeof Ort;

export async function session(bytes: Uint8Array, optimize = true): Promise<Ort.InferenceSession> {
  return ort.InferenceSession.create(bytes, {
    graphOptimizationLevel: optimize ? 'all' : 'disabled',
    intraOpNumThreads: 1,
    interOpNumThreads: 1,
  });
}

export function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) throw new Error(`lengths differ: ${a.length} and ${b.length}`);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

/** The decoder graph's feeds from the tensors the tfjs decoder ran on. */
export function decoderFeeds(x: DecoderTensors): Record<string, Ort.Tensor> {
  const f32 = (t: tf.Tensor) => new ort.Tensor('float32', t.dataSync() as Float32Array, t.shape);
  return {
    image_embeddings: f32(x.imageEmbeddings),
    boxes: f32(x.boxes),
    clip_image: f32(x.clipImage),
    clip_text: f32(x.clipText),
    category_idx: new ort.Tensor(
      'int64',
      BigInt64Array.from(x.categoryIdx.dataSync(), (v) => BigInt(v)),
      x.categoryIdx.shape,
    ),
    crops: f32(x.crops),
  };
}
