// Dynamic int8 quantization of the weight-heavy products, in the form onnxruntime's CPU kernels
// and fusions expect (the same graph shape as its own `quantize_dynamic`): activations are
// quantized to uint8 per tensor at run time (DynamicQuantizeLinear), weights are stored as 8-bit
// integers with one scale per output channel, and the integer product is scaled back to float.
// Small layers stay float: they cost little and lose the most accuracy. Convolutions are not
// handled here: onnxruntime 1.30's dynamic form, ConvInteger, was slower than its float NCHWc
// convolution when tried (decoder 1.02 s with uint8 weights, 4.9 s with int8, 0.80 s in float,
// measured under load), so calibrated convolutions become static QLinearConv (static_conv.ts).
import type { GraphBuilder } from './builder.js';
import { DataType, type NodeProto } from './proto.js';

/** Weights with fewer elements than this stay float32. */
export const MIN_QUANTIZED_WEIGHTS = 16384;

/** Counts of the layers a quantization pass rewrote. */
export interface QuantizeReport {
  matMul: number;
  /** Convolutions rewritten to static QLinearConv (onnx/static_conv.ts). */
  staticConv: number;
}

/** Symmetric per-column (`axis` = last) or per-row (first) int8 codes and scales of a weight. */
export function quantizeWeights(
  w: Float32Array,
  rows: number,
  cols: number,
  perColumn: boolean,
): { codes: Int8Array; scales: Float32Array } {
  const channels = perColumn ? cols : rows;
  const scales = new Float32Array(channels);
  const at = (r: number, c: number) => w[r * cols + c];
  for (let r = 0; r < rows; r++)
    for (let c = 0; c < cols; c++) {
      const ch = perColumn ? c : r;
      scales[ch] = Math.max(scales[ch], Math.abs(at(r, c)));
    }
  for (let ch = 0; ch < channels; ch++) scales[ch] = scales[ch] > 0 ? scales[ch] / 127 : 1;
  const codes = new Int8Array(w.length);
  for (let r = 0; r < rows; r++)
    for (let c = 0; c < cols; c++) {
      const q = Math.round(at(r, c) / scales[perColumn ? c : r]);
      codes[r * cols + c] = Math.max(-127, Math.min(127, q));
    }
  return { codes, scales };
}

function newNode(
  g: GraphBuilder,
  opType: string,
  inputs: string[],
  outputs: string[],
  attributes = {},
): NodeProto {
  return { opType, inputs, outputs, name: g.unique(`${opType}_q`), attributes };
}

/**
 * Replace MatMuls with a constant 2D weight with their dynamic int8 form.
 * Returns the new node list (outputs keep their names) and what was rewritten.
 */
export function quantizeInt8(
  nodes: NodeProto[],
  g: GraphBuilder,
): { nodes: NodeProto[]; report: QuantizeReport } {
  const report: QuantizeReport = { matMul: 0, staticConv: 0 };
  const out: NodeProto[] = [];
  // One DynamicQuantizeLinear per activation, shared by all products that read it.
  const quantized = new Map<string, [string, string, string]>();
  const quantize = (x: string): [string, string, string] => {
    let q = quantized.get(x);
    if (!q) {
      q = [g.fresh('xq'), g.fresh('x_scale'), g.fresh('x_zero')];
      out.push(newNode(g, 'DynamicQuantizeLinear', [x], q));
      quantized.set(x, q);
    }
    return q;
  };
  const floatWeight = (name: string) => {
    const init = g.initializers.get(name);
    return init && init.data instanceof Float32Array && init.data.length >= MIN_QUANTIZED_WEIGHTS
      ? init
      : undefined;
  };
  /** `y = Cast(int32 product) · (x_scale · w_scales)`, written to `output`. */
  const rescale = (product: string, xScale: string, wScales: string, output: string) => {
    const f = g.fresh('yf');
    out.push(newNode(g, 'Cast', [product], [f], { to: { type: 'int', value: DataType.FLOAT } }));
    const s = g.fresh('y_scale');
    out.push(newNode(g, 'Mul', [xScale, wScales], [s]));
    out.push(newNode(g, 'Mul', [f, s], [output]));
  };

  for (const n of nodes) {
    const w = n.inputs[1] ? floatWeight(n.inputs[1]) : undefined;
    if (n.opType === 'MatMul' && w && w.dims.length === 2) {
      const [k, cols] = w.dims;
      const { codes, scales } = quantizeWeights(w.data as Float32Array, k, cols, true);
      const wq = g.addInitializer(
        `${n.inputs[1]}:int8`,
        DataType.INT8,
        [k, cols],
        new Uint8Array(codes.buffer),
      );
      const ws = g.addInitializer(`${n.inputs[1]}:scale`, DataType.FLOAT, [cols], scales);
      const [xq, xs, xz] = quantize(n.inputs[0]);
      const y = g.fresh('yi');
      out.push(newNode(g, 'MatMulInteger', [xq, wq, xz], [y]));
      rescale(y, xs, ws, n.outputs[0]);
      report.matMul++;
      continue;
    }
    out.push(n);
  }
  return { nodes: out, report };
}
