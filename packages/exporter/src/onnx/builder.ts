// An ONNX graph under construction: nodes, initializers (with their data, so transposes of
// constants can be folded here), fresh names and the batch-size expression of a graph whose
// batch is dynamic.
import type { AttributeValue, NodeProto, OnnxDataType, TensorProto } from './proto.js';
import { DataType } from './proto.js';
import type { TypedArray } from '../trace.js';

export type InitData = Float32Array | Int32Array | Uint8Array | BigInt64Array;

export interface Initializer {
  name: string;
  dataType: OnnxDataType;
  dims: number[];
  data: InitData;
}

/**
 * A size as the traces show it: (k + Σ coef[i]·S_i), times the batch when `dynamic`, where S_i
 * are the graph's symbolic sizes (prompt-extension dims such as a point count). Without symbols
 * `coef` is empty and the size is k or k·batch.
 */
export interface Dim {
  k: number;
  dynamic: boolean;
  coef: number[];
}

/** A symbolic size: its values in the base trace and in its own trace, and where to read it. */
export interface SymbolSpec {
  /** Name in the graph's input shapes. */
  name: string;
  values: [number, number];
  /** Graph input and axis holding the size at run time. */
  input: string;
  axis: number;
}

export type AttrInput = number | number[] | string | { floats: number[] } | { float: number };

/** tfjs dtype → ONNX element type. */
export function onnxType(dtype: string): OnnxDataType {
  switch (dtype) {
    case 'float32':
      return DataType.FLOAT;
    case 'int32':
      return DataType.INT32;
    case 'bool':
      return DataType.BOOL;
    case 'int64':
      return DataType.INT64;
    default:
      throw new Error(`no ONNX element type for tfjs dtype ${dtype}`);
  }
}

/** Element i of a row-major array permuted by `perm` (out dim j = in dim perm[j]). */
export function permute<T extends InitData>(data: T, shape: number[], perm: number[]): T {
  const rank = shape.length;
  const outShape = perm.map((p) => shape[p]);
  const inStrides = new Array<number>(rank);
  let s = 1;
  for (let i = rank - 1; i >= 0; i--) {
    inStrides[i] = s;
    s *= shape[i];
  }
  const out = new (data.constructor as new (n: number) => T)(data.length);
  const idx = new Array<number>(rank).fill(0);
  const strides = perm.map((p) => inStrides[p]);
  for (let o = 0; o < data.length; o++) {
    let off = 0;
    for (let j = 0; j < rank; j++) off += idx[j] * strides[j];
    out[o] = data[off];
    for (let j = rank - 1; j >= 0; j--) {
      if (++idx[j] < outShape[j]) break;
      idx[j] = 0;
    }
  }
  return out;
}

export class GraphBuilder {
  readonly nodes: NodeProto[] = [];
  readonly initializers = new Map<string, Initializer>();
  private readonly used = new Set<string>();
  private counter = 0;
  private readonly smallConsts = new Map<string, string>();
  private batchName?: string;
  private symbols: SymbolSpec[] = [];
  private readonly symbolNames = new Map<number, string>();

  /**
   * @param b1 @param b2 the two batch sizes the graph was traced at.
   * @param batchSource a graph input whose axis 0 is the batch.
   */
  constructor(
    readonly b1: number,
    readonly b2: number,
    private readonly batchSource: string | undefined,
  ) {}

  /** Reserves a name (suffixing it when taken). */
  unique(base: string): string {
    let name = base;
    while (this.used.has(name)) name = `${base}_${++this.counter}`;
    this.used.add(name);
    return name;
  }

  fresh(prefix = 'v'): string {
    return this.unique(`${prefix}_${++this.counter}`);
  }

  node(
    opType: string,
    inputs: string[],
    outputs: string[] | number = 1,
    attrs: Record<string, AttrInput> = {},
  ): string[] {
    const outs =
      typeof outputs === 'number'
        ? Array.from({ length: outputs }, () => this.fresh(opType.toLowerCase()))
        : outputs;
    for (const o of outs) this.used.add(o);
    const attributes: Record<string, AttributeValue> = {};
    for (const [k, v] of Object.entries(attrs)) {
      if (typeof v === 'number')
        attributes[k] = Number.isInteger(v) ? { type: 'int', value: v } : { type: 'float', value: v };
      else if (typeof v === 'string') attributes[k] = { type: 'string', value: v };
      else if (Array.isArray(v)) attributes[k] = { type: 'ints', value: v };
      else if ('floats' in v) attributes[k] = { type: 'floats', value: v.floats };
      else attributes[k] = { type: 'float', value: v.float };
    }
    this.nodes.push({
      opType,
      inputs,
      outputs: outs,
      name: this.unique(`${opType}_${this.nodes.length}`),
      attributes,
    });
    return outs;
  }

  /** One-output node. */
  op(opType: string, inputs: string[], attrs: Record<string, AttrInput> = {}, output?: string): string {
    return this.node(opType, inputs, output ? [output] : 1, attrs)[0];
  }

  addInitializer(name: string, dataType: OnnxDataType, dims: number[], data: InitData): string {
    const n = this.unique(name);
    this.initializers.set(n, { name: n, dataType, dims: dims.slice(), data });
    return n;
  }

  /** A constant from tfjs data (bool data is stored as uint8, which is ONNX's bool layout). */
  constant(name: string, dtype: string, dims: number[], data: TypedArray): string {
    return this.addInitializer(name, onnxType(dtype), dims, data);
  }

  /** A small int64 constant, shared between users of the same values. */
  i64(values: number[], dims: number[] = [values.length]): string {
    const key = `i64:${dims.join('x')}:${values.join(',')}`;
    let n = this.smallConsts.get(key);
    if (!n) {
      n = this.addInitializer(
        'const_i64',
        DataType.INT64,
        dims,
        BigInt64Array.from(values, (v) => BigInt(v)),
      );
      this.smallConsts.set(key, n);
    }
    return n;
  }

  /** A float32 scalar constant. */
  f32(value: number): string {
    const key = `f32:${value}`;
    let n = this.smallConsts.get(key);
    if (!n) {
      n = this.addInitializer('const_f32', DataType.FLOAT, [], Float32Array.of(value));
      this.smallConsts.set(key, n);
    }
    return n;
  }

  /** A scalar constant of a tfjs dtype. */
  scalar(value: number, dtype: string): string {
    if (dtype === 'float32') return this.f32(value);
    const data = dtype === 'int32' ? Int32Array.of(value) : Uint8Array.of(value ? 1 : 0);
    return this.addInitializer('const_scalar', onnxType(dtype), [], data);
  }

  /** Whether a value is an initializer whose data is known here. */
  isConstant(name: string): boolean {
    return this.initializers.has(name);
  }

  /** Transpose, evaluated here when the value is an initializer. */
  transpose(name: string, perm: number[]): string {
    if (perm.every((p, i) => p === i)) return name;
    const init = this.initializers.get(name);
    if (init) {
      const data = permute(init.data, init.dims, perm);
      return this.addInitializer(
        `${name}:T${perm.join('')}`,
        init.dataType,
        perm.map((p) => init.dims[p]),
        data,
      );
    }
    return this.op('Transpose', [name], { perm });
  }

  /** Reshape, evaluated here when the value is an initializer (static shapes only). */
  reshapeConst(name: string, dims: number[]): string {
    const init = this.initializers.get(name);
    if (init) return this.addInitializer(`${name}:R`, init.dataType, dims, init.data);
    return this.op('Reshape', [name, this.i64(dims)]);
  }

  /** The batch size as an int64 tensor of shape (1,). */
  batch(): string {
    if (!this.batchSource) throw new Error('the graph has a batch-dependent size but no batched input');
    this.batchName ??= this.op('Shape', [this.batchSource], { start: 0, end: 1 });
    return this.batchName;
  }

  /** Declares the symbolic sizes, in the order of the traces after the two batch traces. */
  defineSymbols(symbols: SymbolSpec[]): void {
    this.symbols = symbols.slice();
  }

  /** A symbolic size as an int64 tensor of shape (1,). */
  symbol(i: number): string {
    let n = this.symbolNames.get(i);
    if (!n) {
      const s = this.symbols[i];
      n = this.op('Shape', [s.input], { start: s.axis, end: s.axis + 1 });
      this.symbolNames.set(i, n);
    }
    return n;
  }

  /**
   * How a size depends on the batch and the symbols, from its values in every trace: `values[0]`
   * at batch b1 (symbols at their first values), `values[1]` at batch b2, then one per symbol
   * with that symbol at its second value.
   */
  dim(...values: number[]): Dim {
    const [v1, v2] = values;
    let dynamic = false;
    let base = v1;
    if (v1 !== v2) {
      const k = v1 / this.b1;
      if (!Number.isInteger(k) || k * this.b2 !== v2)
        throw new Error(
          `size ${v1} at batch ${this.b1} and ${v2} at batch ${this.b2} is not a multiple of the batch`,
        );
      dynamic = true;
      base = k;
    }
    const per = dynamic ? this.b1 : 1;
    const coef = this.symbols.map((sym, i) => {
      const v = values[2 + i];
      const c = (v / per - base) / (sym.values[1] - sym.values[0]);
      if (v % per !== 0 || !Number.isInteger(c))
        throw new Error(
          `size ${v1} at ${sym.name} = ${sym.values[0]} and ${v} at ${sym.name} = ${sym.values[1]} is not affine in ${sym.name}`,
        );
      return c;
    });
    const k = base - coef.reduce((a, c, i) => a + c * this.symbols[i].values[0], 0);
    return { k, dynamic, coef };
  }

  /** Whether a size changes with the batch or a symbol. */
  varies(d: Dim): boolean {
    return d.dynamic || d.coef.some((c) => c !== 0);
  }

  /** The dim of an input or output shape: a number, or an expression such as 'batch' or 'batch*(9+P)'. */
  dimParam(d: Dim, batchName: string): number | string {
    if (!this.varies(d)) return d.k;
    if (!d.coef.some((c) => c !== 0)) return d.k === 1 ? batchName : `${batchName}*${d.k}`;
    const terms = d.coef.flatMap((c, i) =>
      c === 0 ? [] : [c === 1 ? this.symbols[i].name : `${c}*${this.symbols[i].name}`],
    );
    if (d.k !== 0) terms.push(String(d.k));
    const affine = terms.join('+');
    if (!d.dynamic) return affine;
    return terms.length === 1 ? `${batchName}*${affine}` : `${batchName}*(${affine})`;
  }

  /** A varying size as an int64 tensor of shape (1,), computed from the batch and the symbols. */
  private sizeValue(d: Dim): string {
    if (!d.coef.some((c) => c !== 0))
      return d.k === 1 ? this.batch() : this.op('Mul', [this.batch(), this.i64([d.k])]);
    const terms = d.coef.flatMap((c, i) =>
      c === 0 ? [] : [c === 1 ? this.symbol(i) : this.op('Mul', [this.symbol(i), this.i64([c])])],
    );
    let sum = terms.reduce((a, t) => this.op('Add', [a, t]));
    if (d.k !== 0) sum = this.op('Add', [sum, this.i64([d.k])]);
    return d.dynamic ? this.op('Mul', [this.batch(), sum]) : sum;
  }

  /**
   * An int64 vector of sizes seen as `shapes[t]` in trace t: a constant when nothing varies;
   * with `inferOne` a single varying entry becomes -1 (Reshape infers it); otherwise the entries
   * are computed from the batch and the symbols at run time.
   */
  sizes(shapes: number[][], inferOne = false): string {
    const dims = shapes[0].map((_, i) => this.dim(...shapes.map((s) => s[i])));
    const dyn = dims.filter((d) => this.varies(d)).length;
    if (dyn === 0) return this.i64(dims.map((d) => d.k));
    if (dyn === 1 && inferOne) return this.i64(dims.map((d) => (this.varies(d) ? -1 : d.k)));
    const parts: string[] = [];
    let run: number[] = [];
    const flush = () => {
      if (run.length) parts.push(this.i64(run));
      run = [];
    };
    for (const d of dims) {
      if (!this.varies(d)) run.push(d.k);
      else {
        flush();
        parts.push(this.sizeValue(d));
      }
    }
    flush();
    return parts.length === 1 ? parts[0] : this.op('Concat', parts, { axis: 0 });
  }

  /** Initializers as TensorProtos (little-endian raw data). */
  tensorProtos(): TensorProto[] {
    return [...this.initializers.values()].map((i) => ({
      name: i.name,
      dataType: i.dataType,
      dims: i.dims,
      raw: new Uint8Array(i.data.buffer.slice(i.data.byteOffset, i.data.byteOffset + i.data.byteLength)),
    }));
  }
}
