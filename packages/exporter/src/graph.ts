// Builds an ONNX model from two kernel traces of the same computation at different batch sizes:
// the first gives the graph, the second tells which sizes scale with the batch (and one more
// trace per symbolic size, such as a prompt extension's point count). Parameters
// become initializers named by their state-dict keys; constant subgraphs (BatchNorm folding,
// filter transposes, gathered weights, the dense positional encoding) are already evaluated in
// the trace and become initializers too.
import { InputError } from '@mcp-medsam/core';
import type { KernelCall, TensorMeta, Trace } from './trace.js';
import { GraphBuilder, onnxType, type Dim } from './onnx/builder.js';
import type { OpContext } from './onnx/ops.js';
import { KERNELS } from './onnx/ops.js';
import type { NodeProto, OnnxDataType, ValueInfoProto } from './onnx/proto.js';
import { encodeModel } from './onnx/proto.js';
import { canonicalizeGelu, flattenBiasedMatMuls, fuseLayerNorm } from './onnx/fuse.js';
import { quantizeInt8, type QuantizeReport } from './onnx/quantize.js';
import { addConvProbes, quantizeConvsStatic, type ConvActivationRange } from './onnx/static_conv.js';

export const OPSET = 17;
export const IR_VERSION = 8;
export const PRODUCER = 'mcp-medsam';

export interface GraphInputSpec {
  name: string;
  /** ONNX element type of the graph input when it differs from the traced tensor's (int64 indices). */
  dtype?: 'float32' | 'int64';
}

export interface BuildOptions {
  name: string;
  inputs: GraphInputSpec[];
  outputs: string[];
  /** Batch sizes of the two traces. */
  batches: [number, number];
  /** Symbolic name of the batch axis. */
  batchName?: string;
  metadata?: Record<string, string>;
  docString?: string;
  /**
   * int8 quantization: dynamic for the large MatMuls (onnx/quantize.ts); with `convRanges` also
   * static for the large convolutions (onnx/static_conv.ts).
   */
  quantize?: 'int8';
  /** Calibrated activation ranges of the candidate convolutions, in graph order (needs `quantize`). */
  convRanges?: readonly ConvActivationRange[];
  /** Add each candidate convolution's input and output as graph outputs, for calibration. */
  probeConvs?: boolean;
  /**
   * Symbolic sizes besides the batch: each with a trace at the first batch size in which only
   * this size differs from the first trace (`values`: its size in the first trace, then in its
   * own), and the graph input axis it is read from.
   */
  symbols?: GraphSymbol[];
}

export interface GraphSymbol {
  /** The dim's name in the graph's input shapes. */
  name: string;
  trace: Trace;
  values: [number, number];
  /** Name of the graph input (as in `inputs`) and the axis holding the size. */
  input: string;
  axis: number;
}

export interface BuiltGraph {
  bytes: Uint8Array;
  inputs: ValueInfoProto[];
  outputs: ValueInfoProto[];
  /** Kernel name → number of calls mapped to nodes. */
  kernels: Record<string, number>;
  /** ONNX op type → count after simplification. */
  ops: Record<string, number>;
  /** Chains rewritten for onnxruntime's fused kernels (onnx/fuse.ts). */
  fused: { gelu: number; layerNorm: number; gemm: number };
  /** Layers rewritten to int8, when quantized. */
  quantized: QuantizeReport | null;
  /** Names of the probe outputs (`probeConvs`), in candidate order: input then output of each. */
  probes: string[];
  /** Initializer names: state-dict keys, or the key a folded constant comes from plus its kernels. */
  initializers: string[];
}

/** Every tensor id of trace A paired with its shape in trace B (same call order, same slots). */
function alignShapes(a: Trace, b: Trace): Map<number, number[]> {
  if (a.calls.length !== b.calls.length)
    throw new Error(`the traces differ in length (${a.calls.length} and ${b.calls.length} kernel calls)`);
  const shapes = new Map<number, number[]>();
  a.inputs.forEach((t, i) => shapes.set(t.id, b.inputs[i].shape));
  a.calls.forEach((ca, i) => {
    const cb = b.calls[i];
    if (ca.kernel !== cb.kernel || ca.inputs.length !== cb.inputs.length)
      throw new Error(`the traces differ at call ${i}: ${ca.kernel} and ${cb.kernel}`);
    ca.inputs.forEach(([, id], j) => {
      if (!shapes.has(id)) shapes.set(id, b.tensors.get(cb.inputs[j][1])!.shape);
    });
    ca.outputs.forEach((o, j) => shapes.set(o.id, cb.outputs[j].shape));
  });
  return shapes;
}

/** Shapes of trace A's tensors in every trace: A's own, then each other trace's. */
function alignAll(a: Trace, others: Trace[]): (id: number) => number[][] {
  const aligned = others.map((t) => alignShapes(a, t));
  return (id) => [a.tensors.get(id)!.shape, ...aligned.map((m) => m.get(id)!)];
}

/** Indices of the calls the outputs depend on. */
function liveCalls(trace: Trace): Set<number> {
  const producer = new Map<number, number>();
  trace.calls.forEach((c, i) => c.outputs.forEach((o) => producer.set(o.id, i)));
  const needed = new Set(trace.outputs.map((o) => o.id));
  const live = new Set<number>();
  for (let i = trace.calls.length - 1; i >= 0; i--) {
    const c = trace.calls[i];
    if (!c.outputs.some((o) => needed.has(o.id))) continue;
    live.add(i);
    for (const [, id] of c.inputs) if (producer.has(id)) needed.add(id);
  }
  return live;
}

/** Drops Identity nodes (consumers read their input) unless they produce a graph output. */
function removeIdentities(nodes: NodeProto[], graphOutputs: Set<string>): NodeProto[] {
  const alias = new Map<string, string>();
  const resolve = (n: string) => {
    while (alias.has(n)) n = alias.get(n)!;
    return n;
  };
  const kept: NodeProto[] = [];
  for (const n of nodes) {
    n.inputs = n.inputs.map(resolve);
    if (n.opType === 'Identity' && !graphOutputs.has(n.outputs[0])) alias.set(n.outputs[0], n.inputs[0]);
    else kept.push(n);
  }
  return kept;
}

/** Transpose(Transpose(x, p), q) with p∘q the identity: consumers of the second read x. */
function cancelTransposes(nodes: NodeProto[]): NodeProto[] {
  const producer = new Map<string, NodeProto>();
  const alias = new Map<string, string>();
  for (const n of nodes) {
    n.inputs = n.inputs.map((i) => alias.get(i) ?? i);
    if (n.opType === 'Transpose') {
      const src = producer.get(n.inputs[0]);
      if (src && src.opType === 'Transpose') {
        const p = (src.attributes.perm as { value: number[] }).value;
        const q = (n.attributes.perm as { value: number[] }).value;
        if (q.every((qj, j) => p[qj] === j)) alias.set(n.outputs[0], src.inputs[0]);
      }
    }
    for (const o of n.outputs) producer.set(o, n);
  }
  return nodes.filter((n) => !n.outputs.every((o) => alias.has(o)));
}

/** Removes nodes and initializers nothing reads. */
function prune(nodes: NodeProto[], outputs: string[]): { nodes: NodeProto[]; used: Set<string> } {
  const needed = new Set(outputs);
  const kept: NodeProto[] = [];
  for (let i = nodes.length - 1; i >= 0; i--) {
    const n = nodes[i];
    if (!n.outputs.some((o) => needed.has(o))) continue;
    kept.push(n);
    for (const x of n.inputs) if (x) needed.add(x);
  }
  return { nodes: kept.reverse(), used: needed };
}

function valueInfo(
  name: string,
  dtype: OnnxDataType,
  shapes: number[][],
  g: GraphBuilder,
  batchName: string,
): ValueInfoProto {
  return {
    name,
    elemType: dtype,
    shape: shapes[0].map((_, i) => g.dimParam(g.dim(...shapes.map((s) => s[i])), batchName)),
  };
}

/** Whether a size is exactly symbol `i` (no batch factor, no other terms). */
function isSymbol(d: Dim, i: number): boolean {
  return !d.dynamic && d.k === 0 && d.coef.every((c, j) => c === (j === i ? 1 : 0));
}

/** The ONNX model of trace `a`, with the batch dimension found by comparing it with trace `b`. */
export function buildOnnx(a: Trace, b: Trace, options: BuildOptions): BuiltGraph {
  if (options.inputs.length !== a.inputs.length || options.outputs.length !== a.outputs.length)
    throw new Error('the input and output names do not match the trace');
  const symbols = options.symbols ?? [];
  const traces = [a, b, ...symbols.map((s) => s.trace)];
  const shapesOf = alignAll(a, traces.slice(1));
  const shape2 = (id: number) => shapesOf(id)[1];
  const [b1, b2] = options.batches;
  const batchName = options.batchName ?? 'batch';
  const batched = a.inputs.findIndex((t) => t.shape[0] !== shape2(t.id)[0]);
  const g = new GraphBuilder(b1, b2, batched >= 0 ? options.inputs[batched].name : undefined);

  // Graph inputs, cast to the traced dtype where the ONNX type differs (int64 indices → int32).
  const names = new Map<number, string>();
  const inputNames: string[] = [];
  const inputs: ValueInfoProto[] = [];
  a.inputs.forEach((t, i) => {
    const spec = options.inputs[i];
    const name = g.unique(spec.name);
    inputNames.push(name);
    const onnxDtype = spec.dtype ?? t.dtype;
    names.set(t.id, onnxDtype === t.dtype ? name : g.op('Cast', [name], { to: onnxType(t.dtype) }));
  });
  g.defineSymbols(
    symbols.map((s) => {
      const at = options.inputs.findIndex((x) => x.name === s.input);
      if (at < 0) throw new Error(`symbol ${s.name}: no graph input '${s.input}'`);
      return { name: s.name, values: s.values, input: inputNames[at], axis: s.axis };
    }),
  );
  a.inputs.forEach((t, i) => {
    const spec = options.inputs[i];
    const onnxDtype = spec.dtype ?? t.dtype;
    const shapes = shapesOf(t.id);
    // A symbol is read from its input's axis at run time: the traces must show exactly it there.
    symbols.forEach((s, k) => {
      if (s.input === spec.name && !isSymbol(g.dim(...shapes.map((sh) => sh[s.axis])), k))
        throw new Error(`input ${spec.name} axis ${s.axis} does not follow symbol ${s.name} in the traces`);
    });
    inputs.push(valueInfo(inputNames[i], onnxType(onnxDtype), shapes, g, batchName));
  });

  // Which results are constants: folded in the trace and the same in every trace.
  const constant = new Set<number>();
  for (const [id, c] of a.constants) if (c.call === undefined) constant.add(id);
  const live = liveCalls(a);
  const sameShape = (m: TensorMeta) =>
    shapesOf(m.id).every((s) => JSON.stringify(s) === JSON.stringify(m.shape));
  const emitted: KernelCall[] = [];
  const emittedIdx: number[] = [];
  a.calls.forEach((c, i) => {
    if (!live.has(i)) return;
    const foldable =
      c.constInputs &&
      c.inputs.every(([, id]) => constant.has(id)) &&
      c.outputs.every(sameShape) &&
      traces.every((t) => JSON.stringify(c.attrs) === JSON.stringify(t.calls[i].attrs));
    if (foldable) for (const o of c.outputs) constant.add(o.id);
    else {
      emitted.push(c);
      emittedIdx.push(i);
    }
  });

  // Constant names: state-dict keys, else derived from the first named input.
  const constNames = new Map<number, string>();
  const constName = (id: number): string => {
    let n = constNames.get(id);
    if (n) return n;
    const c = a.constants.get(id)!;
    if (c.key) n = c.key;
    else if (c.call !== undefined) {
      const call = a.calls[c.call];
      const from = call.inputs
        .map(([, i]) => i)
        .find((i) => a.constants.get(i)?.key || a.constants.get(i)?.call !== undefined);
      n = from !== undefined ? `${constName(from)}:${call.kernel}` : `const:${call.kernel}`;
    } else n = 'const';
    constNames.set(id, n);
    return n;
  };
  const nameOf = (id: number): string => {
    let n = names.get(id);
    if (n) return n;
    const c = a.constants.get(id);
    if (!c || !constant.has(id)) throw new Error(`tensor ${id} has no producer in the graph`);
    const differs = shapesOf(id).some((s) => s && JSON.stringify(s) !== JSON.stringify(c.shape));
    if (differs)
      throw new Error(`constant ${constName(id)} ${JSON.stringify(c.shape)} depends on the batch size`);
    n = g.constant(constName(id), c.dtype, c.shape, c.data);
    names.set(id, n);
    return n;
  };

  const kernels: Record<string, number> = {};
  emitted.forEach((call, k) => {
    const calls = traces.map((t) => t.calls[emittedIdx[k]]);
    const mapper = KERNELS[call.kernel];
    if (!mapper) throw new Error(`no ONNX mapping for tfjs kernel '${call.kernel}'`);
    kernels[call.kernel] = (kernels[call.kernel] ?? 0) + 1;
    const slot = new Map(call.inputs);
    const need = (s: string) => {
      const id = slot.get(s);
      if (id === undefined) throw new Error(`${call.kernel}: no input '${s}'`);
      return id;
    };
    for (const o of call.outputs) names.set(o.id, g.unique(`t${o.id}`));
    const ctx: OpContext = {
      g,
      call,
      calls,
      input: (s) => nameOf(need(s)),
      has: (s) => slot.has(s),
      inMeta: (s) => a.tensors.get(need(s))!,
      inShapes: (s) => shapesOf(need(s)),
      slots: () => call.inputs.map(([s]) => s),
      out: (i = 0) => names.get(call.outputs[i].id)!,
      outMeta: (i = 0) => call.outputs[i],
      outShapes: (i = 0) => shapesOf(call.outputs[i].id),
    };
    try {
      mapper(ctx);
    } catch (e) {
      throw new Error(`${call.kernel} ${JSON.stringify(call.attrs)}: ${(e as Error).message}`, { cause: e });
    }
  });

  const outputs: ValueInfoProto[] = [];
  a.outputs.forEach((t, i) => {
    const name = g.unique(options.outputs[i]);
    g.op('Identity', [nameOf(t.id)], {}, name);
    outputs.push(valueInfo(name, onnxType(t.dtype), shapesOf(t.id), g, batchName));
  });

  const outNames = outputs.map((o) => o.name);
  let nodes = removeIdentities(g.nodes, new Set(outNames));
  nodes = cancelTransposes(nodes);
  const fused = {
    gelu: canonicalizeGelu(nodes, g),
    layerNorm: fuseLayerNorm(nodes, g),
    gemm: flattenBiasedMatMuls(nodes, g),
  };
  let quantized: QuantizeReport | null = null;
  if (options.quantize !== undefined && options.quantize !== 'int8')
    throw new InputError(`unknown quantization '${options.quantize as string}' (known: int8)`);
  if (options.convRanges && !options.quantize) throw new InputError('convRanges needs quantize: int8');
  if (options.probeConvs && options.quantize)
    throw new InputError('probes are for the float graph only (not with quantize)');
  let probes: string[] = [];
  if (options.probeConvs) {
    probes = addConvProbes(nodes, g);
    for (const name of probes) {
      outNames.push(name);
      outputs.push({ name, elemType: onnxType('float32'), shape: [0, 1, 2, 3].map((i) => `${name}_${i}`) });
    }
  }
  if (options.quantize === 'int8') {
    let staticConv = 0;
    if (options.convRanges)
      ({ nodes, count: staticConv } = quantizeConvsStatic(nodes, g, options.convRanges));
    let report: QuantizeReport;
    ({ nodes, report } = quantizeInt8(nodes, g));
    quantized = { ...report, staticConv };
  }
  const pruned = prune(nodes, outNames);
  nodes = pruned.nodes;
  const initializers = g.tensorProtos().filter((t) => pruned.used.has(t.name));
  const ops: Record<string, number> = {};
  for (const n of nodes) ops[n.opType] = (ops[n.opType] ?? 0) + 1;

  const bytes = encodeModel({
    irVersion: IR_VERSION,
    opsetVersion: OPSET,
    producerName: PRODUCER,
    producerVersion: '0.1.0',
    graph: { name: options.name, nodes, initializers, inputs, outputs, docString: options.docString },
    metadata: options.metadata,
  });
  return {
    bytes,
    inputs,
    outputs,
    kernels,
    ops,
    fused,
    quantized,
    probes,
    initializers: initializers.map((t) => t.name),
  };
}
