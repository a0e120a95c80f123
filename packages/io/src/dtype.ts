/**
 * Element types, the typed array that stores each, and the `NdArray` container shared by every
 * reader and writer of this package.
 */
import { InputError } from '@mcp-medsam/core/common';

/** The element types an `NdArray` can hold. */
export type DType =
  | 'bool'
  | 'int8'
  | 'uint8'
  | 'int16'
  | 'uint16'
  | 'int32'
  | 'uint32'
  | 'int64'
  | 'uint64'
  | 'float16'
  | 'float32'
  | 'float64';

/**
 * The typed array behind each dtype. `bool` is one byte per element (0 or 1) and `float16` holds
 * the raw IEEE half-precision bit patterns (convert with `float16ToFloat32` / `toFloat32`).
 */
export interface TypedArrayMap {
  bool: Uint8Array;
  int8: Int8Array;
  uint8: Uint8Array;
  int16: Int16Array;
  uint16: Uint16Array;
  int32: Int32Array;
  uint32: Uint32Array;
  int64: BigInt64Array;
  uint64: BigUint64Array;
  float16: Uint16Array;
  float32: Float32Array;
  float64: Float64Array;
}

export type TypedArrayFor<D extends DType> = TypedArrayMap[D];
export type AnyTypedArray = TypedArrayMap[DType];

/** An n-dimensional array. `data` is always in C (row-major) order and has `numel(shape)` elements. */
export interface NdArray<D extends DType = DType> {
  dtype: D;
  shape: number[];
  data: TypedArrayFor<D>;
}

/** Every dtype, in a fixed order. */
export const DTYPES: readonly DType[] = [
  'bool',
  'int8',
  'uint8',
  'int16',
  'uint16',
  'int32',
  'uint32',
  'int64',
  'uint64',
  'float16',
  'float32',
  'float64',
];

interface TypedArrayCtor<T> {
  new (length: number): T;
  new (buffer: ArrayBufferLike, byteOffset?: number, length?: number): T;
  readonly BYTES_PER_ELEMENT: number;
}

const CTORS: { [D in DType]: TypedArrayCtor<TypedArrayMap[D]> } = {
  bool: Uint8Array,
  int8: Int8Array,
  uint8: Uint8Array,
  int16: Int16Array,
  uint16: Uint16Array,
  int32: Int32Array,
  uint32: Uint32Array,
  int64: BigInt64Array,
  uint64: BigUint64Array,
  float16: Uint16Array,
  float32: Float32Array,
  float64: Float64Array,
};

/** Whether `value` is one of the dtype names. */
export function isDType(value: unknown): value is DType {
  return typeof value === 'string' && Object.prototype.hasOwnProperty.call(CTORS, value);
}

/** The typed-array constructor for `dtype`. */
export function typedArrayConstructor<D extends DType>(dtype: D): TypedArrayCtor<TypedArrayFor<D>> {
  return CTORS[dtype] as TypedArrayCtor<TypedArrayFor<D>>;
}

/** Bytes per element of `dtype`. */
export function itemSize(dtype: DType): number {
  return CTORS[dtype].BYTES_PER_ELEMENT;
}

/** Whether `data` is an instance of the typed array `dtype` uses. */
export function isTypedArrayFor<D extends DType>(dtype: D, data: unknown): data is TypedArrayFor<D> {
  return data instanceof CTORS[dtype];
}

/**
 * Number of elements of an array of this shape (1 for the 0-d shape `[]`). Throws an InputError
 * for a dimension that is not a non-negative integer or a product beyond 2^53.
 */
export function numel(shape: readonly number[]): number {
  let n = 1;
  for (const d of shape) {
    if (!Number.isSafeInteger(d) || d < 0) throw new InputError(`invalid shape [${shape.join(', ')}]`);
    n *= d;
  }
  // Checked after the loop: a zero dimension makes any product valid.
  if (!Number.isSafeInteger(n)) throw new InputError(`shape [${shape.join(', ')}] has too many elements`);
  return n;
}

/**
 * Make an NdArray. Without `data` the array is zero-filled. A typed array of the dtype's own kind
 * is used as is (no copy); any other array-like is converted element by element, taking values
 * (not bit patterns: numbers for `float16` are rounded to half precision, `bool` becomes 0/1,
 * numbers for 64-bit ints become BigInts).
 */
export function ndarray<D extends DType>(
  dtype: D,
  shape: readonly number[],
  data?: TypedArrayFor<D> | ArrayLike<number> | ArrayLike<bigint>,
): NdArray<D> {
  if (!isDType(dtype)) throw new InputError(`unknown dtype ${JSON.stringify(dtype)}`);
  const n = numel(shape);
  const Ctor = typedArrayConstructor(dtype);
  let out: TypedArrayFor<D>;
  if (data === undefined) {
    out = new Ctor(n);
  } else if (isTypedArrayFor(dtype, data)) {
    out = data;
  } else {
    if (data.length !== n) {
      throw new InputError(`data has ${data.length} elements but shape [${shape.join(', ')}] needs ${n}`);
    }
    out = new Ctor(n);
    fillFrom(dtype, out, data);
  }
  if (out.length !== n) {
    throw new InputError(`data has ${out.length} elements but shape [${shape.join(', ')}] needs ${n}`);
  }
  return { dtype, shape: [...shape], data: out };
}

function fillFrom(dtype: DType, out: AnyTypedArray, src: ArrayLike<number> | ArrayLike<bigint>): void {
  const n = out.length;
  if (out instanceof BigInt64Array || out instanceof BigUint64Array) {
    const o = out as BigInt64Array;
    for (let i = 0; i < n; i++) {
      const v = src[i];
      if (typeof v === 'bigint') o[i] = v;
      else if (Number.isInteger(v)) o[i] = BigInt(v);
      else throw new InputError(`element ${i} (${String(v)}) is not an integer (dtype ${dtype})`);
    }
    return;
  }
  const o = out as Float64Array;
  for (let i = 0; i < n; i++) {
    const v = Number(src[i]);
    if (dtype === 'float16') o[i] = float32ToFloat16(v);
    else if (dtype === 'bool') o[i] = v ? 1 : 0;
    else o[i] = v;
  }
}

// ---------------------------------------------------------------------------------------------
// half precision and bfloat16

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

/** The value of an IEEE 754 half-precision bit pattern (0..65535). */
export function float16ToFloat32(bits: number): number {
  const sign = bits & 0x8000 ? -1 : 1;
  const exp = (bits >> 10) & 0x1f;
  const frac = bits & 0x3ff;
  if (exp === 0) return sign * frac * 2 ** -24; // zero and subnormals
  if (exp === 0x1f) return frac ? NaN : sign * Infinity;
  return sign * (1024 + frac) * 2 ** (exp - 25);
}

/** The value of a bfloat16 bit pattern (the upper 16 bits of a float32). */
export function bfloat16ToFloat32(bits: number): number {
  u32[0] = (bits & 0xffff) << 16;
  return f32[0];
}

/**
 * The half-precision bit pattern nearest to `value` (round half to even, overflow to infinity,
 * NaN to the quiet NaN 0x7e00 with the sign kept).
 */
export function float32ToFloat16(value: number): number {
  f32[0] = value; // rounds to float32 first, as a float32 -> float16 cast does
  const x = u32[0];
  const sign = (x >>> 16) & 0x8000;
  const exp = (x >>> 23) & 0xff;
  let mant = x & 0x7fffff;
  if (exp === 0xff) return sign | (mant ? 0x7e00 : 0x7c00);
  const e = exp - 127 + 15; // biased half exponent
  if (e >= 0x1f) return sign | 0x7c00;
  if (e <= 0) {
    // subnormal half (or zero): value = m * 2^-24 with m = round(|value| * 2^24)
    if (e < -10) return sign; // below half of the smallest subnormal
    mant |= 0x800000; // implicit bit
    const shift = 14 - e; // 14..24
    const half = 1 << (shift - 1);
    let m = mant >>> shift;
    const rest = mant & ((1 << shift) - 1);
    if (rest > half || (rest === half && m & 1)) m++;
    return sign | m; // m may reach 0x400, which is correctly the smallest normal
  }
  let h = (e << 10) | (mant >>> 13);
  const rest = mant & 0x1fff;
  if (rest > 0x1000 || (rest === 0x1000 && h & 1)) h++; // may carry into the exponent (up to inf): correct
  return sign | h;
}

/** The bfloat16 bit pattern nearest to `value` (round half to even; NaN stays NaN). */
export function float32ToBfloat16(value: number): number {
  f32[0] = value;
  const x = u32[0];
  if ((x & 0x7f800000) === 0x7f800000 && x & 0x7fffff) return ((x >>> 16) | 0x40) & 0xffff;
  const rounded = x + 0x7fff + ((x >>> 16) & 1);
  return (rounded >>> 16) & 0xffff;
}

let halfTable: Float32Array | undefined;
function halfToFloatTable(): Float32Array {
  if (!halfTable) {
    halfTable = new Float32Array(65536);
    for (let i = 0; i < 65536; i++) halfTable[i] = float16ToFloat32(i);
  }
  return halfTable;
}

/** Writes the values of `arr` into `out` (float16 decoded; 64-bit ints converted through Number). */
function fillFloats<T extends Float32Array | Float64Array>(arr: NdArray, out: T): T {
  const n = arr.data.length;
  if (arr.dtype === 'float16') {
    const t = halfToFloatTable();
    const d = arr.data as Uint16Array;
    for (let i = 0; i < n; i++) out[i] = t[d[i]];
  } else if (arr.data instanceof BigInt64Array || arr.data instanceof BigUint64Array) {
    const d = arr.data;
    for (let i = 0; i < n; i++) out[i] = Number(d[i]);
  } else {
    out.set(arr.data as Float64Array);
  }
  return out;
}

/** A new Float32Array with the values of `arr` (float16 decoded; 64-bit ints rounded to float32). */
export function toFloat32(arr: NdArray): Float32Array {
  return fillFloats(arr, new Float32Array(arr.data.length));
}

/** A new Float64Array with the values of `arr` (float16 decoded; 64-bit ints beyond 2^53 rounded). */
export function toFloat64(arr: NdArray): Float64Array {
  return fillFloats(arr, new Float64Array(arr.data.length));
}
