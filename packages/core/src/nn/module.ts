import { tf } from '../tf.js';
import { StateDictError } from '../errors.js';

/** A tensor as it sits in a state dict: a name's value, independent of any backend. */
export interface StateTensor {
  shape: number[];
  /** Float data for parameters and float buffers; integer data for counters. */
  data:
    | Float32Array
    | Int32Array
    | Float64Array
    | BigInt64Array
    | Uint8Array
    | Uint16Array
    | Int8Array
    | Int16Array
    | Uint32Array;
  dtype?: string;
}

export interface LoadReport {
  missing: string[];
  unexpected: string[];
  mismatched: { key: string; expected: number[]; got: number[] }[];
}

interface BufferSlot {
  tensor: tf.Tensor;
  persistent: boolean;
}

/**
 * The base of every layer, modelled on torch.nn.Module: parameters, buffers and child modules
 * are registered under the attribute names the PyTorch original uses, so `stateDict()` keys are
 * exactly the original's and its checkpoints load without a mapping table.
 */
export class Module {
  training = true;
  /** Recompute this block's activations in the backward pass (see `checkpoint`). */
  checkpointGradients = false;
  private readonly ownParams = new Map<string, tf.Variable>();
  private readonly ownBuffers = new Map<string, BufferSlot>();
  private readonly children = new Map<string, Module>();

  /** Registers a trainable parameter (the tensor is taken over, not copied). */
  protected param(name: string, init: tf.Tensor): tf.Variable {
    const v = tf.variable(init, true);
    init.dispose();
    this.ownParams.set(name, v);
    return v;
  }

  /** Registers a buffer; persistent ones are part of the state dict. */
  protected buffer(name: string, value: tf.Tensor, persistent = true): void {
    tf.keep(value);
    this.ownBuffers.set(name, { tensor: value, persistent });
  }

  protected child<M extends Module>(name: string, module: M): M {
    this.children.set(name, module);
    return module;
  }

  /** The parameter registered under `name` on this module. */
  getParam(name: string): tf.Variable {
    const p = this.ownParams.get(name);
    if (!p) throw new Error(`${this.constructor.name} has no parameter '${name}'`);
    return p;
  }

  getBuffer(name: string): tf.Tensor {
    const b = this.ownBuffers.get(name);
    if (!b) throw new Error(`${this.constructor.name} has no buffer '${name}'`);
    return b.tensor;
  }

  /** Replaces a buffer's value (the old tensor is disposed, the new one kept). */
  setBuffer(name: string, value: tf.Tensor): void {
    const slot = this.ownBuffers.get(name);
    if (!slot) throw new Error(`${this.constructor.name} has no buffer '${name}'`);
    if (slot.tensor === value) return;
    tf.keep(value);
    slot.tensor.dispose();
    slot.tensor = value;
  }

  getChild(name: string): Module {
    const c = this.children.get(name);
    if (!c) throw new Error(`${this.constructor.name} has no submodule '${name}'`);
    return c;
  }

  *namedModules(prefix = ''): Generator<[string, Module]> {
    yield [prefix, this];
    for (const [name, m] of this.children) yield* m.namedModules(prefix ? `${prefix}.${name}` : name);
  }

  /** Parameters in PyTorch's `named_parameters()` order. */
  namedParameters(): [string, tf.Variable][] {
    const out: [string, tf.Variable][] = [];
    for (const [prefix, m] of this.namedModules())
      for (const [name, p] of m.ownParams) out.push([prefix ? `${prefix}.${name}` : name, p]);
    return out;
  }

  namedBuffers(includeNonPersistent = false): [string, tf.Tensor][] {
    const out: [string, tf.Tensor][] = [];
    for (const [prefix, m] of this.namedModules())
      for (const [name, b] of m.ownBuffers)
        if (b.persistent || includeNonPersistent) out.push([prefix ? `${prefix}.${name}` : name, b.tensor]);
    return out;
  }

  /** State-dict entries in PyTorch order: per module its parameters, then its buffers, then children. */
  stateDictTensors(): [string, tf.Tensor][] {
    const out: [string, tf.Tensor][] = [];
    const walk = (m: Module, prefix: string) => {
      const key = (n: string) => (prefix ? `${prefix}.${n}` : n);
      for (const [name, p] of m.ownParams) out.push([key(name), p]);
      for (const [name, b] of m.ownBuffers) if (b.persistent) out.push([key(name), b.tensor]);
      for (const [name, c] of m.children) walk(c, key(name));
    };
    walk(this, '');
    return out;
  }

  /** Copies the state dict out of the backend (int32 counters come back as int64, as PyTorch keeps them). */
  stateDict(): Map<string, StateTensor> {
    const out = new Map<string, StateTensor>();
    for (const [key, t] of this.stateDictTensors()) {
      if (t.dtype === 'int32') {
        const v = t.dataSync() as Int32Array;
        out.set(key, {
          shape: t.shape.slice(),
          data: BigInt64Array.from(v, (x) => BigInt(x)),
          dtype: 'int64',
        });
      } else {
        out.set(key, {
          shape: t.shape.slice(),
          data: new Float32Array(t.dataSync() as Float32Array),
          dtype: 'float32',
        });
      }
    }
    return out;
  }

  /**
   * Loads a state dict. With `strict` (the default) any missing key, unexpected key or shape
   * mismatch throws a StateDictError listing all of them; nothing is changed in that case.
   */
  loadStateDict(
    entries: Map<string, StateTensor>,
    options: { strict?: boolean; file?: string } = {},
  ): LoadReport {
    const strict = options.strict ?? true;
    const own = new Map(this.stateDictTensors());
    const report: LoadReport = { missing: [], unexpected: [], mismatched: [] };
    for (const key of own.keys()) if (!entries.has(key)) report.missing.push(key);
    for (const [key, value] of entries) {
      const target = own.get(key);
      if (!target) {
        report.unexpected.push(key);
        continue;
      }
      const shape = value.shape;
      const sameShape = shape.length === target.shape.length && shape.every((d, i) => d === target.shape[i]);
      if (!sameShape) report.mismatched.push({ key, expected: target.shape.slice(), got: shape.slice() });
    }
    if (report.mismatched.length || (strict && (report.missing.length || report.unexpected.length))) {
      throw new StateDictError(report, options.file ? { file: options.file } : {});
    }
    const setters = new Map<string, (t: tf.Tensor) => void>();
    for (const [prefix, m] of this.namedModules()) {
      const key = (n: string) => (prefix ? `${prefix}.${n}` : n);
      for (const [name, p] of m.ownParams) setters.set(key(name), (t) => p.assign(t));
      for (const [name, b] of m.ownBuffers)
        if (b.persistent) setters.set(key(name), (t) => m.setBuffer(name, t));
    }
    for (const [key, value] of entries) {
      const target = own.get(key);
      const set = setters.get(key);
      if (!target || !set) continue;
      const t = toTensor(value, target.dtype as 'float32' | 'int32', target.shape);
      set(t);
      if (t !== target && own.get(key) instanceof tf.Variable) t.dispose();
    }
    return report;
  }

  /** Sets training mode on this module and every descendant (PyTorch's `train()`). */
  train(mode = true): this {
    for (const [, m] of this.namedModules()) m.training = mode;
    return this;
  }

  eval(): this {
    return this.train(false);
  }

  /** Turns gradient checkpointing on or off for this module and every descendant. */
  setGradientCheckpointing(on: boolean): this {
    for (const [, m] of this.namedModules()) m.checkpointGradients = on;
    return this;
  }

  /** Number of trainable scalars. */
  numParameters(): number {
    return this.namedParameters().reduce((n, [, p]) => n + p.size, 0);
  }

  /** Frees every parameter and buffer. */
  dispose(): void {
    for (const [, m] of this.namedModules()) {
      for (const p of m.ownParams.values()) p.dispose();
      for (const b of m.ownBuffers.values()) b.tensor.dispose();
    }
  }
}

function toTensor(value: StateTensor, dtype: 'float32' | 'int32', shape: number[]): tf.Tensor {
  const d = value.data;
  if (dtype === 'int32') {
    const ints =
      d instanceof BigInt64Array
        ? Int32Array.from(d, (x) => Number(x))
        : Int32Array.from(d as ArrayLike<number>);
    return tf.tensor(ints, shape, 'int32');
  }
  const floats =
    d instanceof Float32Array
      ? d
      : d instanceof BigInt64Array
        ? Float32Array.from(d, (x) => Number(x))
        : Float32Array.from(d as ArrayLike<number>);
  return tf.tensor(floats, shape, 'float32');
}

/** A list of child modules named '0', '1', ... like torch.nn.ModuleList. */
export class ModuleList<M extends Module> extends Module {
  readonly items: M[];
  constructor(items: M[]) {
    super();
    this.items = items;
    items.forEach((m, i) => this.child(String(i), m));
  }
  get length(): number {
    return this.items.length;
  }
}
