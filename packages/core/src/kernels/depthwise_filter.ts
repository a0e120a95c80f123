// The filter gradient of a depthwise convolution (channel multiplier 1) as one wasm SIMD pass
// over x and dy (packages/core/wasm/depthwise_filter.wat): no shifted copies of x, no products
// the size of the map. Used by the wasm DepthwiseConv2dNativeBackpropFilter kernel.
import type { TensorInfo } from '@tensorflow/tfjs-core';
import type { tf } from '../tf.js';
import { WASM_BASE64 } from './generated/depthwise_filter.js';
import { offsetOf, wasmExports, type WasmBackendLike } from './wasm_module.js';

type DwFilter = (
  x: number,
  dy: number,
  out: number,
  scratch: number,
  n: number,
  h: number,
  w: number,
  c: number,
  oh: number,
  ow: number,
  kh: number,
  kw: number,
  sh: number,
  sw: number,
  top: number,
  left: number,
) => void;

/**
 * dw [kh, kw, C, 1] of a depthwise conv (NHWC, dilation 1, multiplier 1) from x and dy, or null
 * when the SIMD module is not available (or the inputs are not float32).
 */
export function depthwiseFilterGradWasm(
  backend: WasmBackendLike,
  x: TensorInfo,
  dy: TensorInfo,
  info: tf.backend_util.Conv2DInfo,
): TensorInfo | null {
  if (x.dtype !== 'float32' || dy.dtype !== 'float32') return null;
  if (info.dilationHeight !== 1 || info.dilationWidth !== 1 || info.outChannels !== info.inChannels)
    return null;
  const fn = wasmExports(backend, WASM_BASE64)?.dw_filter as DwFilter | undefined;
  if (!fn) return null;
  const { filterHeight: kh, filterWidth: kw, inChannels: c } = info;
  const out = backend.makeOutput([kh, kw, c, 1], 'float32');
  // Per-row partial sums (a small buffer: kh*kw*C floats).
  const scratch = backend.makeOutput([kh * kw * c], 'float32');
  try {
    fn(
      offsetOf(backend, x),
      offsetOf(backend, dy),
      offsetOf(backend, out),
      offsetOf(backend, scratch),
      info.batchSize,
      info.inHeight,
      info.inWidth,
      c,
      info.outHeight,
      info.outWidth,
      kh,
      kw,
      info.strideHeight,
      info.strideWidth,
      info.padInfo.top,
      info.padInfo.left,
    );
  } catch (e) {
    backend.disposeData(out.dataId, true);
    throw e;
  } finally {
    backend.disposeData(scratch.dataId, true);
  }
  return out;
}
