// onnxruntime-node (a devDependency of this package; CommonJS, hence require).
import { createRequire } from 'node:module';
import type * as Ort from 'onnxruntime-node';

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
