// UnsortedSegmentSum for the wasm backend (the gradient of gather): a scatter-add straight
// on the wasm heap, O(size of x), exact in float32 and independent of numSegments.
import type { KernelBackend, NamedAttrMap, NamedTensorInfoMap, TensorInfo } from '@tensorflow/tfjs-core';
import { asWasm } from './util.js';

export function unsortedSegmentSumKernel({
  inputs,
  backend,
  attrs,
}: {
  inputs: NamedTensorInfoMap;
  backend: KernelBackend;
  attrs?: NamedAttrMap;
}): TensorInfo {
  const x = inputs.x as TensorInfo;
  const ids = inputs.segmentIds as TensorInfo;
  const numSegments = (attrs as unknown as { numSegments: number }).numSegments;
  if (x.dtype !== 'float32' && x.dtype !== 'int32') {
    throw new Error(`UnsortedSegmentSum (wasm): unsupported dtype ${x.dtype}`);
  }
  if (ids.dtype !== 'int32')
    throw new Error(`UnsortedSegmentSum (wasm): segmentIds must be int32, got ${ids.dtype}`);
  const idRank = ids.shape.length;
  for (let i = 0; i < idRank; i++) {
    if (ids.shape[i] !== x.shape[i]) {
      throw new Error(
        `UnsortedSegmentSum (wasm): segmentIds shape ${ids.shape} must prefix x shape ${x.shape}`,
      );
    }
  }
  const inner = x.shape.slice(idRank);
  const row = inner.reduce((p, d) => p * d, 1);
  const be = asWasm(backend);
  const out = be.makeOutput([numSegments, ...inner], x.dtype);
  // Views after makeOutput (allocation may replace the heap buffer).
  const o = be.typedArrayFromHeap(out);
  const xv = be.typedArrayFromHeap(x);
  const iv = be.typedArrayFromHeap(ids);
  o.fill(0);
  for (let i = 0; i < iv.length; i++) {
    const s = iv[i];
    if (s < 0 || s >= numSegments) continue; // TF drops out-of-range ids
    const src = i * row;
    const dst = s * row;
    for (let j = 0; j < row; j++) o[dst + j] += xv[src + j];
  }
  return out;
}
