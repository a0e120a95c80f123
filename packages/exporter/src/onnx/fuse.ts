// Graph rewrites that let onnxruntime run the traced graph with its fused kernels. The trace
// spells GELU and LayerNorm out as elementwise chains (one pass over a 16.7M-element stage-0
// tensor per op); onnxruntime fuses GELU when it sees the exact chain it knows, and LayerNorm is
// a single opset-17 operator. Outputs keep their names, so the rest of the graph is untouched;
// the nodes left without readers are pruned afterwards.
import type { GraphBuilder } from './builder.js';
import type { NodeProto } from './proto.js';

interface GraphIndex {
  producer: Map<string, NodeProto>;
  consumers: Map<string, NodeProto[]>;
}

function index(nodes: NodeProto[]): GraphIndex {
  const producer = new Map<string, NodeProto>();
  const consumers = new Map<string, NodeProto[]>();
  for (const n of nodes) {
    for (const o of n.outputs) producer.set(o, n);
    // A node reading a value twice (x·x) counts once.
    for (const i of new Set(n.inputs)) {
      if (!consumers.has(i)) consumers.set(i, []);
      consumers.get(i)!.push(n);
    }
  }
  return { producer, consumers };
}

/** The float value of a scalar (or one-element) float32 initializer, else undefined. */
function scalar(g: GraphBuilder, name: string): number | undefined {
  const init = g.initializers.get(name);
  if (!init || !(init.data instanceof Float32Array) || init.data.length !== 1) return undefined;
  return init.data[0];
}

/** The other input of a two-input node, when one of them is `name`. */
function other(n: NodeProto, name: string): string | undefined {
  if (n.inputs.length !== 2) return undefined;
  if (n.inputs[0] === name) return n.inputs[1];
  if (n.inputs[1] === name) return n.inputs[0];
  return undefined;
}

/** The only reader of `name`, when it has exactly one. */
function sole(ix: GraphIndex, name: string): NodeProto | undefined {
  const c = ix.consumers.get(name);
  return c && c.length === 1 ? c[0] : undefined;
}

const near = (v: number | undefined, want: number, tol = 1e-6) =>
  v !== undefined && Math.abs(v - want) <= tol;

/**
 * `x · ((erf(x·(1/√2)) + 1) · 0.5)` → `(x · (erf(x / √2) + 1)) · 0.5`, the chain onnxruntime's
 * GeluFusion turns into one Gelu kernel. Multiplying by 0.5 is exact, so the values only change
 * by the rounding of x/√2 against x·(1/√2). Returns the number of rewrites.
 */
export function canonicalizeGelu(nodes: NodeProto[], g: GraphBuilder): number {
  const ix = index(nodes);
  let count = 0;
  for (const erf of nodes.filter((n) => n.opType === 'Erf')) {
    const scale = ix.producer.get(erf.inputs[0]);
    if (!scale || scale.opType !== 'Mul' || sole(ix, scale.outputs[0]) !== erf) continue;
    const c = scale.inputs.find((i) => near(scalar(g, i), Math.SQRT1_2));
    const x = c === undefined ? undefined : other(scale, c);
    if (x === undefined) continue;
    const add = sole(ix, erf.outputs[0]);
    const one = add && add.opType === 'Add' ? other(add, erf.outputs[0]) : undefined;
    if (!add || !near(scalar(g, one ?? ''), 1)) continue;
    const half = sole(ix, add.outputs[0]);
    const h = half && half.opType === 'Mul' ? other(half, add.outputs[0]) : undefined;
    if (!half || !near(scalar(g, h ?? ''), 0.5)) continue;
    const mul = sole(ix, half.outputs[0]);
    if (!mul || mul.opType !== 'Mul' || other(mul, half.outputs[0]) !== x) continue;
    scale.opType = 'Div';
    scale.inputs = [x, g.f32(Math.SQRT2)];
    half.inputs = [x, add.outputs[0]];
    mul.inputs = [half.outputs[0], h!];
    count++;
  }
  return count;
}

/**
 * The traced LayerNorm over the last axis,
 * `(x − mean(x)) · 1/√(mean((x − mean(x))²) + ε) · γ + β`, → `LayerNormalization(x, γ, β)`.
 * Returns the number of rewrites.
 */
export function fuseLayerNorm(nodes: NodeProto[], g: GraphBuilder): number {
  const ix = index(nodes);
  const is1d = (name: string) => g.initializers.get(name)?.dims.length === 1;
  let count = 0;
  for (const mean of nodes.filter((n) => n.opType === 'ReduceMean')) {
    const keep = mean.attributes.keepdims;
    const axes = mean.attributes.axes;
    if (!keep || keep.value !== 1 || !axes || (axes.value as number[]).length !== 1) continue;
    const x = mean.inputs[0];
    // The mean, and the same mean reshaped (the trace re-states its keepdims shape).
    const means = new Set([mean.outputs[0]]);
    for (const r of ix.consumers.get(mean.outputs[0]) ?? [])
      if (r.opType === 'Reshape') means.add(r.outputs[0]);
    const centred = nodes.filter((n) => n.opType === 'Sub' && n.inputs[0] === x && means.has(n.inputs[1]));
    const sq = centred
      .map((d) => sole(ix, d.outputs[0]))
      .find((n) => n?.opType === 'Mul' && n.inputs[0] === n.inputs[1]);
    if (!sq) continue;
    const varNode = sole(ix, sq.outputs[0]);
    if (!varNode || varNode.opType !== 'ReduceMean') continue;
    const addEps = sole(ix, varNode.outputs[0]);
    const eps = addEps?.opType === 'Add' ? scalar(g, other(addEps, varNode.outputs[0]) ?? '') : undefined;
    if (!addEps || eps === undefined) continue;
    const sqrt = sole(ix, addEps.outputs[0]);
    const recip = sqrt?.opType === 'Sqrt' ? sole(ix, sqrt.outputs[0]) : undefined;
    const norm = recip?.opType === 'Reciprocal' ? sole(ix, recip.outputs[0]) : undefined;
    const d = norm?.opType === 'Mul' ? other(norm, recip!.outputs[0]) : undefined;
    if (!norm || !d || !centred.some((c) => c.outputs[0] === d)) continue;
    const scaleNode = sole(ix, norm.outputs[0]);
    const gamma = scaleNode?.opType === 'Mul' ? other(scaleNode, norm.outputs[0]) : undefined;
    if (!scaleNode || !gamma || !is1d(gamma)) continue;
    const shift = sole(ix, scaleNode.outputs[0]);
    const beta = shift?.opType === 'Add' ? other(shift, scaleNode.outputs[0]) : undefined;
    if (!shift || !beta || !is1d(beta)) continue;
    shift.opType = 'LayerNormalization';
    shift.inputs = [x, gamma, beta];
    shift.attributes = { axis: { type: 'int', value: -1 }, epsilon: { type: 'float', value: eps } };
    count++;
  }
  return count;
}

/**
 * `Reshape(x, [1, M, K]) → MatMul(W (K, N)) → Add(b (N)) → Reshape` with the product flattened to
 * `[-1, K]`: a 2D MatMul plus bias is what onnxruntime fuses into one Gemm, which adds the bias
 * inside the product instead of in another pass over the output. The trailing Reshape restores
 * the shape. Returns the number of rewrites.
 */
export function flattenBiasedMatMuls(nodes: NodeProto[], g: GraphBuilder): number {
  const ix = index(nodes);
  let count = 0;
  for (const mm of nodes.filter((n) => n.opType === 'MatMul')) {
    const w = g.initializers.get(mm.inputs[1]);
    if (!w || w.dims.length !== 2) continue;
    const reshape = ix.producer.get(mm.inputs[0]);
    if (!reshape || reshape.opType !== 'Reshape' || sole(ix, reshape.outputs[0]) !== mm) continue;
    const add = sole(ix, mm.outputs[0]);
    const bias = add?.opType === 'Add' ? other(add, mm.outputs[0]) : undefined;
    if (!add || !bias || g.initializers.get(bias)?.dims.length !== 1) continue;
    const readers = ix.consumers.get(add.outputs[0]) ?? [];
    if (!readers.length || !readers.every((r) => r.opType === 'Reshape' && r.inputs[0] === add.outputs[0]))
      continue;
    reshape.inputs = [reshape.inputs[0], g.i64([-1, w.dims[0]])];
    count++;
  }
  return count;
}
