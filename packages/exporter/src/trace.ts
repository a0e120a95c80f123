// Records the tfjs kernels a computation runs: every op of @tensorflow/tfjs-core reaches the
// backend through `ENGINE.runKernel(name, inputs, attrs)` (customGrad bodies included), so
// wrapping that one method on the engine instance sees the whole forward pass as a list of
// kernel calls over tensor ids. Tensors the computation did not make (model variables, buffers,
// literals such as scalars and index tables) are captured as constants; kernels whose inputs
// are all constant are evaluated as usual and their results captured too (constant folding).
import { tf } from '@mcp-medsam/core';

export type TypedArray = Float32Array | Int32Array | Uint8Array;

export interface TensorMeta {
  id: number;
  shape: number[];
  dtype: string;
}

export interface KernelCall {
  kernel: string;
  /** Input slots in the order the op passed them ('x', 'filter', or '0', '1', ... for lists). */
  inputs: [string, number][];
  attrs: Record<string, unknown>;
  outputs: TensorMeta[];
  /** Every input was a constant when the kernel ran (its outputs were captured). */
  constInputs: boolean;
}

export interface ConstTensor extends TensorMeta {
  data: TypedArray;
  /** State-dict key when the tensor is a model parameter or buffer. */
  key?: string;
  /** Index of the call that made it, for folded results. */
  call?: number;
}

export interface Trace {
  calls: KernelCall[];
  /** The traced function's inputs, in the order given. */
  inputs: TensorMeta[];
  /** The traced function's results. */
  outputs: TensorMeta[];
  /** Every constant seen: parameters, literals and folded results, by tensor id. */
  constants: Map<number, ConstTensor>;
  /** Shape and dtype of every tensor seen, by id. */
  tensors: Map<number, TensorMeta>;
}

interface EngineLike {
  runKernel(kernelName: string, inputs: Record<string, tf.Tensor>, attrs?: Record<string, unknown>): unknown;
}

function meta(t: tf.Tensor): TensorMeta {
  return { id: t.id, shape: t.shape.slice(), dtype: t.dtype };
}

function snapshot(t: tf.Tensor): TypedArray {
  const d = t.dataSync();
  if (d instanceof Float32Array || d instanceof Int32Array || d instanceof Uint8Array) return d.slice();
  throw new Error(`cannot capture a constant of dtype ${t.dtype}`);
}

/** A plain deep copy of kernel attributes (arrays and objects of numbers, strings, booleans). */
function copyAttrs(attrs: Record<string, unknown> | undefined): Record<string, unknown> {
  if (!attrs) return {};
  const copy = (v: unknown): unknown => {
    if (Array.isArray(v)) return v.map(copy);
    if (ArrayBuffer.isView(v)) return Array.from(v as unknown as ArrayLike<number>);
    if (v && typeof v === 'object')
      return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, copy(x)]));
    return v;
  };
  return copy(attrs) as Record<string, unknown>;
}

/**
 * Runs `fn` on `inputs` and records its kernels. `named` maps tensor ids of model state to
 * their state-dict keys. Only top-level kernel calls are recorded (a kernel that runs others
 * through the engine counts as one).
 */
export function traceKernels(
  fn: (...inputs: tf.Tensor[]) => tf.Tensor[],
  inputs: tf.Tensor[],
  named: Map<number, string>,
): Trace {
  const engine = tf.engine() as unknown as EngineLike;
  const hadOwn = Object.prototype.hasOwnProperty.call(engine, 'runKernel');
  const previous = engine.runKernel;
  const calls: KernelCall[] = [];
  const constants = new Map<number, ConstTensor>();
  const tensors = new Map<number, TensorMeta>();
  const produced = new Set<number>();
  const inputIds = new Set(inputs.map((t) => t.id));
  for (const t of inputs) tensors.set(t.id, meta(t));
  let depth = 0;

  const see = (t: tf.Tensor): void => {
    if (tensors.has(t.id)) return;
    tensors.set(t.id, meta(t));
    if (!produced.has(t.id) && !inputIds.has(t.id)) {
      const c: ConstTensor = { ...meta(t), data: snapshot(t) };
      const key = named.get(t.id);
      if (key) c.key = key;
      constants.set(t.id, c);
    }
  };

  engine.runKernel = function (this: EngineLike, kernelName, kernelInputs, attrs) {
    if (depth > 0) return previous.call(this, kernelName, kernelInputs, attrs);
    const slots: [string, number][] = [];
    for (const [slot, t] of Object.entries(kernelInputs ?? {})) {
      if (t == null) continue;
      see(t);
      slots.push([slot, t.id]);
    }
    depth++;
    let out: unknown;
    try {
      out = previous.call(this, kernelName, kernelInputs, attrs);
    } finally {
      depth--;
    }
    const outs = (Array.isArray(out) ? out : [out]) as tf.Tensor[];
    const constInputs = slots.every(([, id]) => constants.has(id));
    const index = calls.length;
    for (const t of outs) {
      produced.add(t.id);
      tensors.set(t.id, meta(t));
      if (constInputs) constants.set(t.id, { ...meta(t), data: snapshot(t), call: index });
    }
    calls.push({
      kernel: kernelName,
      inputs: slots,
      attrs: copyAttrs(attrs),
      outputs: outs.map(meta),
      constInputs,
    });
    return out;
  };

  let results: tf.Tensor[];
  try {
    results = fn(...inputs);
  } finally {
    if (hadOwn) engine.runKernel = previous;
    else delete (engine as Partial<EngineLike>).runKernel;
  }
  for (const r of results) if (!tensors.has(r.id)) tensors.set(r.id, meta(r));
  return { calls, inputs: inputs.map(meta), outputs: results.map(meta), constants, tensors };
}
