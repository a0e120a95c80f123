// Gradient configs for the conv / gather ops. The Node build of tfjs-core (tf-core.node.js)
// registers no gradients at all (only the @tensorflow/tfjs union package does), so these ops
// get explicit definitions here. They run the backprop kernels by name, so every backend uses
// its own kernels: native ones on tfjs-node, the ones from ./conv.js on wasm.
import type { GradConfig, NamedAttrMap, Tensor, Tensor4D } from '@tensorflow/tfjs-core';
import { tf } from '../tf.js';
import { leakyReluGrad } from '../kernels/leaky_relu.js';

function assertUnitDilation(dilations: unknown, op: string): void {
  const d =
    dilations == null
      ? [1, 1]
      : typeof dilations === 'number'
        ? [dilations, dilations]
        : (dilations as number[]);
  if (d.some((v) => v !== 1))
    throw new Error(`gradient of ${op}: dilations must be 1, got ${String(dilations)}`);
}

const run = (name: string, inputs: Record<string, Tensor>, attrs: Record<string, unknown>): Tensor =>
  tf.engine().runKernel(name, inputs, attrs as unknown as NamedAttrMap) as Tensor;

export const conv2dGradConfig: GradConfig = {
  kernelName: 'Conv2D',
  inputsToSave: ['x', 'filter'],
  gradFunc: (dy: Tensor | Tensor[], saved: Tensor[], attrs: NamedAttrMap) => {
    const [x, filter] = saved as [Tensor4D, Tensor4D];
    const { strides, pad, dataFormat, dilations, dimRoundingMode } = attrs as unknown as tf.Conv2DAttrs;
    assertUnitDilation(dilations, 'conv2d');
    const common = { strides, pad, dataFormat, dimRoundingMode };
    return {
      x: () => run('Conv2DBackpropInput', { dy: dy as Tensor, filter }, { ...common, inputShape: x.shape }),
      filter: () =>
        run('Conv2DBackpropFilter', { x, dy: dy as Tensor }, { ...common, filterShape: filter.shape }),
    };
  },
};

/** Conv2DBackpropInput is the forward of conv2dTranspose. */
export const conv2dBackpropInputGradConfig: GradConfig = {
  kernelName: 'Conv2DBackpropInput',
  inputsToSave: ['dy', 'filter'],
  gradFunc: (ddx: Tensor | Tensor[], saved: Tensor[], attrs: NamedAttrMap) => {
    const [dy, filter] = saved as [Tensor4D, Tensor4D];
    const { strides, pad, dataFormat, dimRoundingMode } = attrs as unknown as tf.Conv2DBackpropInputAttrs;
    const common = { strides, pad, dataFormat, dimRoundingMode };
    return {
      dy: () => run('Conv2D', { x: ddx as Tensor, filter }, { ...common, dilations: 1 }),
      filter: () =>
        run('Conv2DBackpropFilter', { x: ddx as Tensor, dy }, { ...common, filterShape: filter.shape }),
    };
  },
};

export const depthwiseConv2dGradConfig: GradConfig = {
  kernelName: 'DepthwiseConv2dNative',
  inputsToSave: ['x', 'filter'],
  gradFunc: (dy: Tensor | Tensor[], saved: Tensor[], attrs: NamedAttrMap) => {
    const [x, filter] = saved as [Tensor4D, Tensor4D];
    const { strides, pad, dilations, dimRoundingMode } = attrs as unknown as tf.DepthwiseConv2dNativeAttrs;
    assertUnitDilation(dilations, 'depthwiseConv2d');
    const common = { strides, pad, dilations: 1, dimRoundingMode };
    return {
      x: () =>
        run(
          'DepthwiseConv2dNativeBackpropInput',
          { dy: dy as Tensor, filter },
          { ...common, inputShape: x.shape },
        ),
      filter: () =>
        run(
          'DepthwiseConv2dNativeBackpropFilter',
          { x, dy: dy as Tensor },
          { ...common, filterShape: filter.shape },
        ),
    };
  },
};

/** Gather (batchDims 0, any axis): scatter-add of dy rows back into x via UnsortedSegmentSum. */
export const gatherGradConfig: GradConfig = {
  kernelName: 'GatherV2',
  inputsToSave: ['x', 'indices'],
  gradFunc: (dy: Tensor | Tensor[], saved: Tensor[], attrs: NamedAttrMap) => {
    const [x, indices] = saved;
    const { axis, batchDims } = attrs as unknown as tf.GatherV2Attrs;
    if (batchDims) throw new Error('gradient of gather: batchDims > 0 is not supported');
    const ax = axis < 0 ? axis + x.rank : axis;
    const outer = x.shape.slice(0, ax).reduce((p, d) => p * d, 1);
    const inner = x.shape.slice(ax + 1).reduce((p, d) => p * d, 1);
    const n = indices.size;
    const rows = x.shape[ax];
    return {
      x: () => {
        const flatIdx = tf.reshape(indices, [n]) as tf.Tensor1D;
        if (outer === 1) {
          return tf.reshape(
            tf.unsortedSegmentSum(tf.reshape(dy as Tensor, [n, inner]), flatIdx, rows),
            x.shape,
          );
        }
        const d = tf.transpose(tf.reshape(dy as Tensor, [outer, n, inner]), [1, 0, 2]);
        const s = tf.unsortedSegmentSum(tf.reshape(d, [n, outer * inner]), flatIdx, rows);
        return tf.reshape(tf.transpose(tf.reshape(s, [rows, outer, inner]), [1, 0, 2]), x.shape);
      },
      indices: () => tf.zerosLike(indices),
    };
  },
};

/** LeakyReLU: tfjs's formula, as one fused pass where the wasm kernel is registered. */
export const leakyReluGradConfig: GradConfig = {
  kernelName: 'LeakyRelu',
  inputsToSave: ['x'],
  gradFunc: (dy: Tensor | Tensor[], saved: Tensor[], attrs: NamedAttrMap) => {
    const [x] = saved;
    const { alpha } = attrs as unknown as tf.LeakyReluAttrs;
    return { x: () => leakyReluGrad(x, dy as Tensor, alpha) };
  },
};

export const GRADIENT_CONFIGS: readonly GradConfig[] = [
  conv2dGradConfig,
  conv2dBackpropInputGradConfig,
  depthwiseConv2dGradConfig,
  gatherGradConfig,
  leakyReluGradConfig,
];
