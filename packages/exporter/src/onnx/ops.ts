// tfjs kernels → ONNX (opset 17) nodes. tfjs maps are NHWC and ONNX convolutions NCHW, so each
// convolution or pool is wrapped in Transposes (graph.ts cancels back-to-back pairs); constant
// filters are re-laid out here instead of by nodes.
import { tf } from '@mcp-medsam/core';
import type { KernelCall, TensorMeta } from '../trace.js';
import type { GraphBuilder } from './builder.js';
import { onnxType } from './builder.js';

/**
 * What a kernel mapping sees: the call in every trace (the first batch size, the second, then
 * one trace per symbolic size) and the names of its values.
 */
export interface OpContext {
  g: GraphBuilder;
  call: KernelCall;
  /** The same call in every trace; `calls[0]` is `call`. */
  calls: KernelCall[];
  /** ONNX name of an input slot ('x', 'a', '0', ...). */
  input(slot: string): string;
  has(slot: string): boolean;
  /** The input's shape and dtype in the first trace, and its shape in every trace. */
  inMeta(slot: string): TensorMeta;
  inShapes(slot: string): number[][];
  /** Input slots in order. */
  slots(): string[];
  /** ONNX name of output i. */
  out(i?: number): string;
  outMeta(i?: number): TensorMeta;
  outShapes(i?: number): number[][];
}

/** Whether an attribute is the same in every trace. */
function sameAttr(c: OpContext, name: string): boolean {
  const first = JSON.stringify(c.call.attrs[name]);
  return c.calls.every((k) => JSON.stringify(k.attrs[name]) === first);
}

export type KernelMapper = (c: OpContext) => void;

const NHWC_TO_NCHW = [0, 3, 1, 2];
const NCHW_TO_NHWC = [0, 2, 3, 1];

function attr<T>(c: OpContext, name: string): T {
  return c.call.attrs[name] as T;
}

function normAxis(axis: number, rank: number): number {
  return axis < 0 ? axis + rank : axis;
}

function axesOf(axis: unknown, rank: number): number[] {
  if (axis == null) return Array.from({ length: rank }, (_, i) => i);
  const list = Array.isArray(axis) ? (axis as number[]) : [axis as number];
  return list.map((a) => normAxis(a, rank));
}

const unary =
  (opType: string): KernelMapper =>
  (c) => {
    c.g.op(opType, [c.input(c.slots()[0])], {}, c.out());
  };

const binary =
  (opType: string): KernelMapper =>
  (c) => {
    c.g.op(opType, [c.input('a'), c.input('b')], {}, c.out());
  };

/** Applies a fused kernel's activation (tfjs's `activation` attribute) to `x`. */
function activation(c: OpContext, x: string, output: string): void {
  const act = (attr<string>(c, 'activation') ?? 'linear').toLowerCase();
  const g = c.g;
  switch (act) {
    case 'linear':
      g.op('Identity', [x], {}, output);
      break;
    case 'relu':
      g.op('Relu', [x], {}, output);
      break;
    case 'relu6':
      g.op('Clip', [x, g.f32(0), g.f32(6)], {}, output);
      break;
    case 'sigmoid':
      g.op('Sigmoid', [x], {}, output);
      break;
    case 'elu':
      g.op('Elu', [x], { alpha: { float: 1 } }, output);
      break;
    case 'leakyrelu':
      g.op('LeakyRelu', [x], { alpha: { float: attr<number>(c, 'leakyreluAlpha') ?? 0.2 } }, output);
      break;
    case 'prelu':
      g.op('PRelu', [x, c.input('preluActivationWeights')], {}, output);
      break;
    default:
      throw new Error(`unsupported fused activation '${act}'`);
  }
}

/** 0.5·(1 + erf(x/√2)), the standard normal CDF. */
function normCdf(g: GraphBuilder, x: string): string {
  const e = g.op('Erf', [g.op('Mul', [x, g.f32(Math.SQRT1_2)])]);
  return g.op('Mul', [g.op('Add', [e, g.f32(1)]), g.f32(0.5)]);
}

/** The last two axes swapped (a constant is transposed here). */
function swapLast(g: GraphBuilder, name: string, rank: number): string {
  const perm = Array.from({ length: rank }, (_, i) => i);
  [perm[rank - 2], perm[rank - 1]] = [perm[rank - 1], perm[rank - 2]];
  return g.transpose(name, perm);
}

function matMul(c: OpContext, output: string): void {
  const g = c.g;
  let a = c.input('a');
  let b = c.input('b');
  if (attr<boolean>(c, 'transposeA')) a = swapLast(g, a, c.inMeta('a').shape.length);
  if (attr<boolean>(c, 'transposeB')) b = swapLast(g, b, c.inMeta('b').shape.length);
  // tfjs batches a weight as (1, K, N); as a 2D constant onnxruntime pre-packs it once instead of
  // treating the product as a batch of one. Same result when `a` has at least the weight's rank.
  const bShape = c.inMeta('b').shape;
  if (
    g.initializers.has(b) &&
    bShape.length > 2 &&
    bShape.slice(0, -2).every((d) => d === 1) &&
    c.inMeta('a').shape.length >= bShape.length
  ) {
    const init = g.initializers.get(b)!;
    b = g.reshapeConst(b, init.dims.slice(-2));
  }
  g.op('MatMul', [a, b], {}, output);
}

/** ONNX pads [top, left, bottom, right] of a tfjs conv or pool. */
function convPads(info: { padInfo: { top: number; left: number; bottom: number; right: number } }): number[] {
  const p = info.padInfo;
  return [p.top, p.left, p.bottom, p.right];
}

function assertNHWC(c: OpContext): void {
  const f = attr<string | undefined>(c, 'dataFormat');
  if (f && f !== 'NHWC') throw new Error(`${c.call.kernel}: only NHWC is supported, got ${f}`);
}

/** Conv on an NHWC map: Transpose, Conv (OIHW weight), Transpose back; bias and activation. */
function conv(c: OpContext, depthwise: boolean, fused: boolean): void {
  assertNHWC(c);
  const g = c.g;
  const x = c.inMeta('x');
  const f = c.inMeta('filter');
  const strides = attr<number | [number, number]>(c, 'strides');
  const dilations = attr<number | [number, number]>(c, 'dilations') ?? 1;
  const info = tf.backend_util.computeConv2DInfo(
    x.shape as [number, number, number, number],
    f.shape as [number, number, number, number],
    strides,
    dilations,
    attr(c, 'pad'),
    attr(c, 'dimRoundingMode'),
    depthwise,
    'channelsLast',
  );
  const [kh, kw, inC, m] = f.shape;
  let w: string;
  if (depthwise) {
    // (kh, kw, C, mult) → (C·mult, 1, kh, kw): output channel c·mult + j.
    w = g.transpose(c.input('filter'), [2, 3, 0, 1]);
    w = g.reshapeConst(w, [inC * m, 1, kh, kw]);
  } else {
    w = g.transpose(c.input('filter'), [3, 2, 0, 1]); // HWIO → OIHW
  }
  const inputs = [g.transpose(c.input('x'), NHWC_TO_NCHW), w];
  const outC = depthwise ? inC * m : m;
  const bias = fused && c.has('bias') ? c.inMeta('bias') : undefined;
  const biasAsConvInput = bias && bias.shape.length === 1 && bias.shape[0] === outC;
  if (biasAsConvInput) inputs.push(c.input('bias'));
  const y = g.op('Conv', inputs, {
    kernel_shape: [kh, kw],
    strides: [info.strideHeight, info.strideWidth],
    dilations: [info.dilationHeight, info.dilationWidth],
    pads: convPads(info),
    group: depthwise ? inC : 1,
  });
  let out = g.transpose(y, NCHW_TO_NHWC);
  if (bias && !biasAsConvInput) out = g.op('Add', [out, c.input('bias')]);
  if (fused) activation(c, out, c.out());
  else g.op('Identity', [out], {}, c.out());
}

function pool(c: OpContext, opType: 'AveragePool' | 'MaxPool'): void {
  assertNHWC(c);
  const g = c.g;
  const x = c.inMeta('x');
  const info = tf.backend_util.computePool2DInfo(
    x.shape as [number, number, number, number],
    attr(c, 'filterSize'),
    attr(c, 'strides'),
    1,
    attr(c, 'pad'),
    attr(c, 'dimRoundingMode'),
  );
  const attrs: Record<string, number | number[]> = {
    kernel_shape: [info.filterHeight, info.filterWidth],
    strides: [info.strideHeight, info.strideWidth],
    pads: convPads(info),
  };
  if (opType === 'AveragePool') attrs.count_include_pad = 0; // tfjs averages over the valid cells
  const y = g.op(opType, [g.transpose(c.input('x'), NHWC_TO_NCHW)], attrs);
  g.op('Identity', [g.transpose(y, NCHW_TO_NHWC)], {}, c.out());
}

/** Reductions: axes are an input for ReduceSum since opset 13, an attribute for the others until 18. */
function reduce(opType: string): KernelMapper {
  return (c) => {
    const g = c.g;
    const rank = c.inMeta('x').shape.length;
    const axes = axesOf(attr(c, 'axis'), rank);
    const keepdims = attr<boolean>(c, 'keepDims') ? 1 : 0;
    if (axes.length === 0) {
      g.op('Identity', [c.input('x')], {}, c.out());
      return;
    }
    if (opType === 'ReduceSum') g.op(opType, [c.input('x'), g.i64(axes)], { keepdims }, c.out());
    else g.op(opType, [c.input('x')], { axes, keepdims }, c.out());
  };
}

const CAST_TO: Record<string, number> = { float32: 1, int32: 6, bool: 9 };

export const KERNELS: Record<string, KernelMapper> = {
  // Elementwise (tfjs and ONNX broadcast the same way; tfjs casts the operands to one dtype first).
  Add: binary('Add'),
  Sub: binary('Sub'),
  Multiply: binary('Mul'),
  RealDiv: binary('Div'),
  Maximum: binary('Max'),
  Minimum: binary('Min'),
  Pow: binary('Pow'),
  SquaredDifference: (c) => {
    const d = c.g.op('Sub', [c.input('a'), c.input('b')]);
    c.g.op('Mul', [d, d], {}, c.out());
  },
  AddN: (c) => {
    c.g.op(
      'Sum',
      c.slots().map((s) => c.input(s)),
      {},
      c.out(),
    );
  },
  Erf: unary('Erf'),
  Sin: unary('Sin'),
  Cos: unary('Cos'),
  Exp: unary('Exp'),
  Log: unary('Log'),
  Sqrt: unary('Sqrt'),
  Abs: unary('Abs'),
  Neg: unary('Neg'),
  Floor: unary('Floor'),
  Ceil: unary('Ceil'),
  Relu: unary('Relu'),
  Sigmoid: unary('Sigmoid'),
  Tanh: unary('Tanh'),
  Reciprocal: unary('Reciprocal'),
  Identity: unary('Identity'),
  Rsqrt: (c) => {
    c.g.op('Reciprocal', [c.g.op('Sqrt', [c.input('x')])], {}, c.out());
  },
  Square: (c) => {
    c.g.op('Mul', [c.input('x'), c.input('x')], {}, c.out());
  },
  Relu6: (c) => {
    c.g.op('Clip', [c.input('x'), c.g.f32(0), c.g.f32(6)], {}, c.out());
  },
  Elu: (c) => {
    c.g.op('Elu', [c.input('x')], { alpha: { float: 1 } }, c.out());
  },
  LeakyRelu: (c) => {
    c.g.op('LeakyRelu', [c.input('x')], { alpha: { float: attr<number>(c, 'alpha') } }, c.out());
  },
  Prelu: (c) => {
    c.g.op('PRelu', [c.input('x'), c.input('alpha')], {}, c.out());
  },
  // @mcp-medsam/core's custom kernels (registered on wasm only): Φ(x) and GELU x·Φ(x).
  McpNormCdf: (c) => {
    c.g.op('Identity', [normCdf(c.g, c.input('x'))], {}, c.out());
  },
  McpGelu: (c) => {
    c.g.op('Mul', [c.input('x'), normCdf(c.g, c.input('x'))], {}, c.out());
  },
  Softmax: (c) => {
    const rank = c.inMeta('logits').shape.length;
    const axis = normAxis(attr<number>(c, 'dim') ?? -1, rank);
    c.g.op('Softmax', [c.input('logits')], { axis }, c.out());
  },
  Cast: (c) => {
    const to = CAST_TO[attr<string>(c, 'dtype')];
    if (!to) throw new Error(`Cast to ${attr<string>(c, 'dtype')} is not supported`);
    if (c.inMeta('x').dtype === attr<string>(c, 'dtype')) c.g.op('Identity', [c.input('x')], {}, c.out());
    else c.g.op('Cast', [c.input('x')], { to }, c.out());
  },

  // Shapes. Sizes that depend on the batch are computed from the batch at run time.
  Reshape: (c) => {
    const shape = c.g.sizes(c.outShapes(), true);
    c.g.op('Reshape', [c.input('x'), shape], {}, c.out());
  },
  ExpandDims: (c) => {
    const rank = c.inMeta('input').shape.length;
    let axis = attr<number>(c, 'dim');
    if (axis < 0) axis += rank + 1;
    c.g.op('Unsqueeze', [c.input('input'), c.g.i64([axis])], {}, c.out());
  },
  Squeeze: (c) => {
    const shapes = c.inShapes('x');
    const s1 = shapes[0];
    const given = attr<number[]>(c, 'axis') ?? [];
    const axes = given.length
      ? given.map((a) => normAxis(a, s1.length))
      : s1.map((_, i) => i).filter((i) => shapes.every((s) => s[i] === 1));
    c.g.op('Squeeze', [c.input('x'), c.g.i64(axes)], {}, c.out());
  },
  Transpose: (c) => {
    c.g.op('Identity', [c.g.transpose(c.input('x'), attr<number[]>(c, 'perm'))], {}, c.out());
  },
  Concat: (c) => {
    const rank = c.outMeta().shape.length;
    const slots = c.slots().filter((s) => c.inMeta(s).shape.every((d) => d > 0));
    c.g.op(
      'Concat',
      slots.map((s) => c.input(s)),
      { axis: normAxis(attr<number>(c, 'axis'), rank) },
      c.out(),
    );
  },
  Pack: (c) => {
    const rank = c.outMeta().shape.length;
    const axis = normAxis(attr<number>(c, 'axis'), rank);
    const parts = c.slots().map((s) => c.g.op('Unsqueeze', [c.input(s), c.g.i64([axis])]));
    if (parts.length === 1) c.g.op('Identity', parts, {}, c.out());
    else c.g.op('Concat', parts, { axis }, c.out());
  },
  Tile: (c) => {
    const reps = c.g.sizes(c.calls.map((k) => k.attrs.reps as number[]));
    c.g.op('Tile', [c.input('x'), reps], {}, c.out());
  },
  Slice: (c) => {
    const ins = c.inShapes('x');
    const outs = c.outShapes();
    const begins = c.calls.map((k) => k.attrs.begin as number[]);
    const starts: number[] = [];
    const ends: number[] = [];
    const axes: number[] = [];
    for (let i = 0; i < ins[0].length; i++) {
      const b = begins.map((x) => x[i] ?? 0);
      if (b.every((x) => x === 0) && outs.every((o, t) => o[i] === ins[t][i])) continue; // whole axis
      if (b.some((x) => x !== b[0]) || outs.some((o) => o[i] !== outs[0][i]))
        throw new Error(`Slice: axis ${i} is sliced by an amount that depends on the batch or a symbol`);
      starts.push(b[0]);
      ends.push(b[0] + outs[0][i]);
      axes.push(i);
    }
    if (!axes.length) c.g.op('Identity', [c.input('x')], {}, c.out());
    else c.g.op('Slice', [c.input('x'), c.g.i64(starts), c.g.i64(ends), c.g.i64(axes)], {}, c.out());
  },
  PadV2: (c) => {
    const p1 = attr<[number, number][]>(c, 'paddings');
    if (!sameAttr(c, 'paddings')) throw new Error('PadV2: batch-dependent padding');
    const pads = [...p1.map((p) => p[0]), ...p1.map((p) => p[1])];
    const value = c.g.scalar(attr<number>(c, 'constantValue') ?? 0, c.inMeta('x').dtype);
    c.g.op('Pad', [c.input('x'), c.g.i64(pads), value], { mode: 'constant' }, c.out());
  },
  GatherV2: (c) => {
    if ((attr<number>(c, 'batchDims') ?? 0) !== 0) throw new Error('GatherV2: batchDims is not supported');
    const axis = normAxis(attr<number>(c, 'axis'), c.inMeta('x').shape.length);
    c.g.op('Gather', [c.input('x'), c.input('indices')], { axis }, c.out());
  },

  // Reductions.
  Mean: reduce('ReduceMean'),
  Sum: reduce('ReduceSum'),
  Max: reduce('ReduceMax'),
  Min: reduce('ReduceMin'),
  Prod: reduce('ReduceProd'),

  // Products and convolutions.
  BatchMatMul: (c) => matMul(c, c.out()),
  _FusedMatMul: (c) => {
    const g = c.g;
    const y = g.fresh('matmul');
    matMul(c, y);
    const withBias = c.has('bias') ? g.op('Add', [y, c.input('bias')]) : y;
    activation(c, withBias, c.out());
  },
  Conv2D: (c) => conv(c, false, false),
  FusedConv2D: (c) => conv(c, false, true),
  DepthwiseConv2dNative: (c) => conv(c, true, false),
  FusedDepthwiseConv2D: (c) => conv(c, true, true),
  AvgPool: (c) => pool(c, 'AveragePool'),
  MaxPool: (c) => pool(c, 'MaxPool'),
};

/** The ONNX element type a kernel output has (used for graph outputs). */
export function outputType(meta: TensorMeta): number {
  return onnxType(meta.dtype);
}
