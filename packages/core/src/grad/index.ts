// Gradient support: the backprop kernels tfjs-backend-wasm lacks (or has only as slow
// reference loops), built from its fast forward kernels and the SIMD batched matMul; gradient
// configs for the conv, gather, LeakyReLU and matMul ops (the matMul one folds a side shared
// across the batch into 2-D products).
import type { KernelConfig, KernelFunc } from '@tensorflow/tfjs-core';
import { tf } from '../tf.js';
import {
  conv2dBackpropFilterKernel,
  conv2dBackpropInputKernel,
  depthwiseBackpropFilterKernel,
  depthwiseBackpropInputKernel,
} from './conv.js';
import { GRADIENT_CONFIGS } from './configs.js';
import { sharedIdentityKernel } from '../kernels/identity.js';
import { batchMatMulGradConfig } from './matmul.js';
import { unsortedSegmentSumKernel } from './segment.js';
import {
  MERGE_KERNEL,
  PHASES_KERNEL,
  phaseMergeKernel,
  phaseSplitKernel,
  WINDOWS_KERNEL,
  windowsKernel,
} from './util.js';

export { conv2dFilterGrad, conv2dInputGrad, depthwiseFilterGrad, depthwiseInputGrad } from './conv.js';
export { batchMatMulGradConfig } from './matmul.js';
export { GRADIENT_CONFIGS } from './configs.js';

/** The kernels registered for 'wasm' by `registerWasmGradientKernels`. */
export const WASM_GRADIENT_KERNELS: readonly string[] = [
  'Conv2DBackpropFilter',
  'Conv2DBackpropInput',
  'DepthwiseConv2dNativeBackpropInput',
  'DepthwiseConv2dNativeBackpropFilter',
  'UnsortedSegmentSum',
  'Identity',
  WINDOWS_KERNEL,
  PHASES_KERNEL,
  MERGE_KERNEL,
];

const kernelFuncs: Record<string, KernelFunc> = {
  Conv2DBackpropFilter: conv2dBackpropFilterKernel as unknown as KernelFunc,
  // Replaces wasm's own, a direct loop at ~1.5 GFLOP/s (also the forward of conv2dTranspose).
  Conv2DBackpropInput: conv2dBackpropInputKernel as unknown as KernelFunc,
  DepthwiseConv2dNativeBackpropInput: depthwiseBackpropInputKernel as unknown as KernelFunc,
  DepthwiseConv2dNativeBackpropFilter: depthwiseBackpropFilterKernel as unknown as KernelFunc,
  UnsortedSegmentSum: unsortedSegmentSumKernel as unknown as KernelFunc,
  // Shares instead of copying: the engine clones every tensor a gradient saves (../kernels/identity.ts).
  Identity: sharedIdentityKernel as unknown as KernelFunc,
  [WINDOWS_KERNEL]: windowsKernel as unknown as KernelFunc,
  [PHASES_KERNEL]: phaseSplitKernel as unknown as KernelFunc,
  [MERGE_KERNEL]: phaseMergeKernel as unknown as KernelFunc,
};

/**
 * Registers the wasm gradient kernels, and gradient configs for Conv2D, Conv2DBackpropInput
 * (conv2dTranspose), DepthwiseConv2dNative, GatherV2 and BatchMatMul (tfjs-core's Node build
 * registers none). Idempotent; harmless when another backend is active: the kernels are
 * registered for 'wasm' only, and the gradient configs call kernels by name (so native
 * backends keep their own) and are correct everywhere.
 */
export function registerWasmGradientKernels(): void {
  for (const [kernelName, kernelFunc] of Object.entries(kernelFuncs)) {
    const existing = tf.getKernel(kernelName, 'wasm');
    if (existing?.kernelFunc === kernelFunc) continue;
    const config: KernelConfig = { kernelName, backendName: 'wasm', kernelFunc };
    // Keep an existing kernel's setup so it still runs if the wasm backend initialises later.
    if (existing?.setupFunc) config.setupFunc = existing.setupFunc;
    if (existing) tf.unregisterKernel(kernelName, 'wasm');
    tf.registerKernel(config);
  }
  for (const config of [...GRADIENT_CONFIGS, batchMatMulGradConfig]) {
    if (tf.getGradient(config.kernelName) !== config) tf.registerGradient(config);
  }
}
