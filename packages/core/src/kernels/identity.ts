// Identity (tf.clone) for wasm without a copy. tfjs-backend-wasm's Identity copies the data,
// and tfjs's engine clones every tensor a custom gradient saves (customGrad's save, and
// inputsToSave of the stock gradients): in training each saved map was copied once more (a
// full-size temporary next to the original, and one more pass over memory). Tensors are
// immutable, so the clone can share the data under a reference count, as tfjs-backend-cpu's
// Identity does (and wasm's own Reshape).
import type { KernelBackend, TensorInfo } from '@tensorflow/tfjs-core';

interface RefCounted {
  incRef(dataId: object): void;
}

/** Identity that shares x's data (one more reference; freed with the last of them). */
export function sharedIdentityKernel({
  inputs,
  backend,
}: {
  inputs: { x?: TensorInfo };
  backend: KernelBackend;
}): TensorInfo {
  const x = inputs.x as TensorInfo;
  (backend as unknown as RefCounted).incRef(x.dataId);
  return { dataId: x.dataId, shape: x.shape, dtype: x.dtype };
}
