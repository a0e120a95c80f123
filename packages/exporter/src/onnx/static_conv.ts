// Static int8 convolutions: QLinearConv with activation scales measured beforehand.
//
// onnxruntime's QLinearConv (uint8 activations, int8 weights with one scale per output channel,
// zero weight offsets) runs on MLAS's symmetric int8 kernels, about 3.5x faster than its float
// convolution on this project's 2-core AVX-512 VNNI machine for the decoder's 3x3 256→256
// convolutions. Unlike the dynamic MatMul quantization (quantize.ts), QLinearConv needs the scale
// of its output before it runs, so the ranges of every convolution's input and output are
// measured first on calibration data: the float graph is exported once with "probes" (each
// candidate convolution's input and output as extra graph outputs), run on real prompts, and the
// observed ranges come back here as `ConvActivationRange`s, in the same candidate order.
import { InputError } from '@mcp-medsam/core';
import type { GraphBuilder } from './builder.js';
import { DataType, type NodeProto } from './proto.js';
import { MIN_QUANTIZED_WEIGHTS, quantizeWeights } from './quantize.js';

/** Observed value ranges of one candidate convolution's input and output (before any activation). */
export interface ConvActivationRange {
  input: [number, number];
  output: [number, number];
}

/** Graph output names of candidate `k`'s probes. */
export function convProbeNames(k: number): { input: string; output: string } {
  return { input: `conv_probe_${k}_in`, output: `conv_probe_${k}_out` };
}

/** Parses a probe output name back to its candidate index and side (undefined for other names). */
export function parseConvProbeName(name: string): { k: number; side: 'input' | 'output' } | undefined {
  const m = /^conv_probe_(\d+)_(in|out)$/.exec(name);
  return m ? { k: Number(m[1]), side: m[2] === 'in' ? 'input' : 'output' } : undefined;
}

function intAttr(n: NodeProto, name: string): number | undefined {
  const a = n.attributes[name];
  return a && a.type === 'int' ? a.value : undefined;
}

/**
 * Convolutions worth quantizing: float weights given as an initializer with at least
 * MIN_QUANTIZED_WEIGHTS entries, not grouped (depthwise convolutions are memory-bound and have
 * too few weights per output for int8 to pay).
 */
export function staticConvCandidates(nodes: readonly NodeProto[], g: GraphBuilder): NodeProto[] {
  return nodes.filter((n) => {
    if (n.opType !== 'Conv' || (intAttr(n, 'group') ?? 1) !== 1) return false;
    const w = g.initializers.get(n.inputs[1]);
    return !!w && w.data instanceof Float32Array && w.data.length >= MIN_QUANTIZED_WEIGHTS;
  });
}

/**
 * Adds an Identity per candidate convolution's input and output, named by convProbeNames; the
 * caller lists them as graph outputs. Returns the probe output names in candidate order.
 */
export function addConvProbes(nodes: NodeProto[], g: GraphBuilder): string[] {
  const names: string[] = [];
  staticConvCandidates(nodes, g).forEach((n, k) => {
    const p = convProbeNames(k);
    for (const [from, to] of [
      [n.inputs[0], p.input],
      [n.outputs[0], p.output],
    ]) {
      nodes.push({ opType: 'Identity', inputs: [from], outputs: [to], name: g.unique(to), attributes: {} });
      names.push(to);
    }
  });
  return names;
}

/** uint8 scale and zero point covering [lo, hi] (widened to include 0, as ONNX requires). */
export function uint8Params(lo: number, hi: number): { scale: number; zero: number } {
  if (!Number.isFinite(lo) || !Number.isFinite(hi) || lo > hi)
    throw new InputError(`invalid calibration range [${lo}, ${hi}]`);
  const a = Math.min(lo, 0);
  const b = Math.max(hi, 0);
  const scale = b > a ? Math.fround((b - a) / 255) : 1;
  const zero = Math.max(0, Math.min(255, Math.round(-a / scale)));
  return { scale, zero };
}

/**
 * Rewrites candidate `k` into QuantizeLinear → QLinearConv → DequantizeLinear with
 * `ranges[k]`; the float output keeps its name, so the rest of the graph is unchanged. Returns
 * the new node list and the number of convolutions rewritten.
 */
export function quantizeConvsStatic(
  nodes: NodeProto[],
  g: GraphBuilder,
  ranges: readonly ConvActivationRange[],
): { nodes: NodeProto[]; count: number } {
  const candidates = staticConvCandidates(nodes, g);
  if (ranges.length !== candidates.length)
    throw new InputError(
      `calibration has ${ranges.length} convolution ranges, the graph ${candidates.length} candidate convolutions`,
    );
  const index = new Map(candidates.map((n, k) => [n, k]));
  const out: NodeProto[] = [];
  const emit = (opType: string, inputs: string[], outputs: string[], attributes = {}) =>
    out.push({ opType, inputs, outputs, name: g.unique(`${opType}_s8`), attributes });
  for (const n of nodes) {
    const k = index.get(n);
    if (k === undefined) {
      out.push(n);
      continue;
    }
    const r = ranges[k];
    const x = uint8Params(...r.input);
    const y = uint8Params(...r.output);
    const w = g.initializers.get(n.inputs[1])!;
    const outC = w.dims[0];
    // One scale per output channel: an OIHW weight is (outC) rows of in·kh·kw.
    const { codes, scales } = quantizeWeights(w.data as Float32Array, outC, w.data.length / outC, false);
    const wq = g.addInitializer(`${n.inputs[1]}:int8`, DataType.INT8, w.dims, new Uint8Array(codes.buffer));
    const ws = g.addInitializer(`${n.inputs[1]}:scale`, DataType.FLOAT, [outC], scales);
    const wz = g.addInitializer(`${n.inputs[1]}:zero`, DataType.INT8, [outC], new Uint8Array(outC));
    const xs = g.addInitializer(g.fresh('conv_x_scale'), DataType.FLOAT, [], new Float32Array([x.scale]));
    const xz = g.addInitializer(g.fresh('conv_x_zero'), DataType.UINT8, [], new Uint8Array([x.zero]));
    const ys = g.addInitializer(g.fresh('conv_y_scale'), DataType.FLOAT, [], new Float32Array([y.scale]));
    const yz = g.addInitializer(g.fresh('conv_y_zero'), DataType.UINT8, [], new Uint8Array([y.zero]));
    const inputs = [g.fresh('xq'), xs, xz, wq, ws, wz, ys, yz];
    emit('QuantizeLinear', [n.inputs[0], xs, xz], [inputs[0]]);
    const bias = n.inputs[2] ? g.initializers.get(n.inputs[2]) : undefined;
    if (n.inputs[2] && !bias) throw new Error(`Conv ${n.name}: its bias is not a constant`);
    if (bias) {
      // The bias is added to the int32 accumulator, whose scale is x_scale · w_scale[o].
      const b = bias.data as Float32Array;
      const bq = Int32Array.from(b, (v, o) => Math.round(v / (x.scale * scales[o])));
      inputs.push(g.addInitializer(`${n.inputs[2]}:int32`, DataType.INT32, [outC], bq));
    }
    const yq = g.fresh('yq');
    emit('QLinearConv', inputs, [yq], n.attributes);
    emit('DequantizeLinear', [yq, ys, yz], [n.outputs[0]]);
  }
  return { nodes: out, count: candidates.length };
}
