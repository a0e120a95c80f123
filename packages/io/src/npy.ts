/**
 * NumPy `.npy` reader and writer (format versions 1.0, 2.0 and 3.0).
 *
 * Reading accepts every dtype of `DType` in either byte order and either memory order, and always
 * returns native-endian (little-endian on every supported platform), C-ordered data. Object arrays
 * (pickles), structured and string dtypes are refused with a FormatError, as is any header or data
 * that does not add up.
 */
import { FormatError, InputError, MedsamError } from '@mcp-medsam/core/common';
import {
  type AnyTypedArray,
  type DType,
  type NdArray,
  isDType,
  isTypedArrayFor,
  itemSize,
  numel,
  typedArrayConstructor,
} from './dtype.js';

const MAGIC = [0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59]; // \x93NUMPY
const MAX_HEADER_BYTES = 1 << 20;
const HOST_LITTLE = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

const DESCR_KINDS: Record<string, DType> = {
  b1: 'bool',
  i1: 'int8',
  u1: 'uint8',
  i2: 'int16',
  u2: 'uint16',
  i4: 'int32',
  u4: 'uint32',
  i8: 'int64',
  u8: 'uint64',
  f2: 'float16',
  f4: 'float32',
  f8: 'float64',
};
const DTYPE_DESCR: Record<DType, string> = {
  bool: '|b1',
  int8: '|i1',
  uint8: '|u1',
  int16: '<i2',
  uint16: '<u2',
  int32: '<i4',
  uint32: '<u4',
  int64: '<i8',
  uint64: '<u8',
  float16: '<f2',
  float32: '<f4',
  float64: '<f8',
};

/** The npy `descr` string `writeNpy` uses for a dtype (little-endian), e.g. `'<f4'`. */
export function npyDescr(dtype: DType): string {
  return DTYPE_DESCR[dtype];
}

/** Parsed npy header. */
export interface NpyHeader {
  version: [number, number];
  dtype: DType;
  littleEndian: boolean;
  fortranOrder: boolean;
  shape: number[];
  /** Byte offset of the array data. */
  dataOffset: number;
}

export interface ReadNpyOptions {
  /** Name used in error messages. */
  file?: string;
  /**
   * `false` lets the result be a view of `bytes` when no conversion is needed (little-endian,
   * C order, data offset a multiple of the item size). Default `true`: the data is always copied.
   */
  copy?: boolean;
}

/** Parse a `.npy` file held in memory. Throws a FormatError (naming `file`) for anything malformed. */
export function readNpy(bytes: Uint8Array, options: ReadNpyOptions = {}): NdArray {
  const file = options.file;
  try {
    const h = readNpyHeader(bytes, { file });
    const size = itemSize(h.dtype);
    const n = numel(h.shape);
    const nbytes = n * size;
    const available = bytes.length - h.dataOffset;
    if (available < nbytes) {
      throw new FormatError(
        `npy data truncated: shape [${h.shape.join(', ')}] of ${h.dtype} needs ${nbytes} bytes, file has ${available}`,
        { file },
      );
    }
    if (available > nbytes) {
      throw new FormatError(
        `npy file has ${available - nbytes} bytes after the data of shape [${h.shape.join(', ')}] (${h.dtype})`,
        { file },
      );
    }
    const Ctor = typedArrayConstructor(h.dtype);
    const start = bytes.byteOffset + h.dataOffset;
    const swap = size > 1 && h.littleEndian !== HOST_LITTLE;
    let data: AnyTypedArray;
    if (options.copy === false && !swap && start % size === 0) {
      data = new Ctor(bytes.buffer, start, n);
    } else {
      const raw = bytes.slice(h.dataOffset, h.dataOffset + nbytes);
      if (swap) byteSwap(raw, size);
      data = new Ctor(raw.buffer, 0, n);
    }
    if (h.fortranOrder) data = fortranToC(data, h.shape);
    return { dtype: h.dtype, shape: h.shape, data } as NdArray;
  } catch (e) {
    if (e instanceof MedsamError) {
      if (e instanceof FormatError) throw e;
      throw new FormatError(e.message, { file, cause: e });
    }
    throw new FormatError(`corrupt npy file (${(e as Error)?.message ?? String(e)})`, { file, cause: e });
  }
}

/** Parse only the header of a `.npy` file (magic, version, dtype, order, shape, data offset). */
export function readNpyHeader(bytes: Uint8Array, options: { file?: string } = {}): NpyHeader {
  const file = options.file;
  const fail = (msg: string): never => {
    throw new FormatError(msg, { file });
  };
  if (bytes.length < 10 || MAGIC.some((b, i) => bytes[i] !== b)) {
    if (bytes.length > 0 && bytes[0] === 0x80)
      fail('not an npy file (looks like a pickle, which is not supported)');
    fail('not an npy file (bad magic)');
  }
  const major = bytes[6];
  const minor = bytes[7];
  let headerLen: number;
  let headerStart: number;
  if (major === 1) {
    headerLen = bytes[8] | (bytes[9] << 8);
    headerStart = 10;
  } else if (major === 2 || major === 3) {
    if (bytes.length < 12) fail('npy header truncated');
    headerLen = (bytes[8] | (bytes[9] << 8) | (bytes[10] << 16)) + bytes[11] * 2 ** 24;
    headerStart = 12;
  } else {
    return fail(`unsupported npy format version ${major}.${minor}`);
  }
  if (minor !== 0) fail(`unsupported npy format version ${major}.${minor}`);
  if (headerLen > MAX_HEADER_BYTES) fail(`npy header of ${headerLen} bytes is implausibly large`);
  if (headerStart + headerLen > bytes.length) fail('npy header truncated');
  const raw = bytes.subarray(headerStart, headerStart + headerLen);
  let text: string;
  if (major === 3) {
    try {
      text = new TextDecoder('utf-8', { fatal: true }).decode(raw);
    } catch {
      return fail('npy header is not valid UTF-8');
    }
  } else {
    text = '';
    for (let i = 0; i < raw.length; i++) text += String.fromCharCode(raw[i]);
  }
  let dict: PyValue;
  try {
    dict = parsePyLiteral(text);
  } catch (e) {
    return fail(`malformed npy header (${(e as Error).message}): ${JSON.stringify(text.slice(0, 200))}`);
  }
  if (!(dict instanceof Map)) return fail('malformed npy header (not a dict)');
  const keys = [...dict.keys()].sort().join(',');
  if (keys !== 'descr,fortran_order,shape')
    fail(`npy header has keys {${keys}}, expected descr, fortran_order, shape`);
  const descr = dict.get('descr');
  const fortran = dict.get('fortran_order');
  const shapeV = dict.get('shape');
  if (typeof fortran !== 'boolean') fail('npy header: fortran_order is not a bool');
  if (!(shapeV instanceof PyTuple)) return fail('npy header: shape is not a tuple');
  const shape: number[] = [];
  for (const d of shapeV.items) {
    if (typeof d !== 'number' || !Number.isSafeInteger(d) || d < 0)
      fail('npy header: shape holds a non-integer');
    shape.push(d as number);
  }
  if (typeof descr !== 'string') {
    return fail('structured dtypes are not supported (descr is not a string)');
  }
  const { dtype, littleEndian } = parseDescr(descr, fail);
  try {
    numel(shape);
  } catch {
    fail(`npy header: shape [${shape.join(', ')}] has too many elements`);
  }
  return {
    version: [major, minor],
    dtype,
    littleEndian,
    fortranOrder: fortran as boolean,
    shape,
    dataOffset: headerStart + headerLen,
  };
}

function parseDescr(descr: string, fail: (msg: string) => never): { dtype: DType; littleEndian: boolean } {
  let order = '|';
  let kind = descr;
  if (descr.length > 0 && '<>|='.includes(descr[0])) {
    order = descr[0];
    kind = descr.slice(1);
  }
  if (kind.startsWith('O')) fail('object arrays need pickle, which is not supported');
  if (kind === '?') kind = 'b1';
  const dtype = DESCR_KINDS[kind];
  if (!dtype) return fail(`unsupported npy dtype ${JSON.stringify(descr)}`);
  const size = itemSize(dtype);
  if (size > 1 && order === '|') fail(`npy dtype ${JSON.stringify(descr)} has no byte order`);
  const littleEndian = order === '<' || (order === '=' && HOST_LITTLE) || order === '|';
  return { dtype, littleEndian };
}

function byteSwap(b: Uint8Array, size: number): void {
  for (let i = 0; i < b.length; i += size) {
    for (let lo = i, hi = i + size - 1; lo < hi; lo++, hi--) {
      const t = b[lo];
      b[lo] = b[hi];
      b[hi] = t;
    }
  }
}

/** Reorder column-major (Fortran) data of `shape` into row-major (C) order. */
export function fortranToC<T extends AnyTypedArray>(src: T, shape: readonly number[]): T {
  const nd = shape.length;
  const n = src.length;
  if (nd <= 1 || n === 0) return src;
  const s = src as unknown as { [i: number]: number };
  const out = new (src.constructor as new (n: number) => T)(n);
  const o = out as unknown as { [i: number]: number };
  const fstride = new Array<number>(nd);
  fstride[0] = 1;
  for (let k = 1; k < nd; k++) fstride[k] = fstride[k - 1] * shape[k - 1];
  const idx = new Array<number>(nd).fill(0);
  const last = nd - 1;
  const lastLen = shape[last];
  const lastStride = fstride[last];
  let f = 0;
  for (let c = 0; c < n; ) {
    for (let j = 0, p = f; j < lastLen; j++, p += lastStride) o[c++] = s[p];
    for (let k = last - 1; k >= 0; k--) {
      idx[k]++;
      f += fstride[k];
      if (idx[k] < shape[k]) break;
      f -= fstride[k] * shape[k];
      idx[k] = 0;
    }
  }
  return out;
}

/** Serialise an array as a `.npy` file (version 1.0, or 2.0 if the header needs it), little-endian, C order. */
export function writeNpy(arr: NdArray): Uint8Array {
  if (!arr || !isDType(arr.dtype))
    throw new InputError(`writeNpy: unknown dtype ${JSON.stringify(arr?.dtype)}`);
  const n = numel(arr.shape);
  if (!isTypedArrayFor(arr.dtype, arr.data)) {
    throw new InputError(`writeNpy: data is not the typed array of dtype ${arr.dtype}`);
  }
  if (arr.data.length !== n) {
    throw new InputError(
      `writeNpy: data has ${arr.data.length} elements, shape [${arr.shape.join(', ')}] needs ${n}`,
    );
  }
  const shapeStr =
    arr.shape.length === 0
      ? '()'
      : arr.shape.length === 1
        ? `(${arr.shape[0]},)`
        : `(${arr.shape.join(', ')})`;
  const dict = `{'descr': '${DTYPE_DESCR[arr.dtype]}', 'fortran_order': False, 'shape': ${shapeStr}, }`;
  let preamble = 10;
  let total = Math.ceil((preamble + dict.length + 1) / 64) * 64;
  if (total - preamble > 0xffff) {
    preamble = 12;
    total = Math.ceil((preamble + dict.length + 1) / 64) * 64;
  }
  const headerLen = total - preamble;
  const size = itemSize(arr.dtype);
  const out = new Uint8Array(total + n * size);
  out.set(MAGIC, 0);
  out[6] = preamble === 10 ? 1 : 2;
  out[7] = 0;
  const dv = new DataView(out.buffer);
  if (preamble === 10) dv.setUint16(8, headerLen, true);
  else dv.setUint32(8, headerLen, true);
  for (let i = 0; i < dict.length; i++) out[preamble + i] = dict.charCodeAt(i);
  out.fill(0x20, preamble + dict.length, total - 1);
  out[total - 1] = 0x0a;
  out.set(new Uint8Array(arr.data.buffer, arr.data.byteOffset, n * size), total);
  if (!HOST_LITTLE && size > 1) byteSwap(out.subarray(total), size);
  return out;
}

// ---------------------------------------------------------------------------------------------
// A parser for the Python literals npy headers are made of: dicts, tuples, lists, strings,
// integers, True/False/None.

class PyTuple {
  constructor(readonly items: PyValue[]) {}
}
type PyValue = string | number | boolean | null | PyValue[] | PyTuple | Map<string, PyValue>;

function parsePyLiteral(text: string): PyValue {
  let i = 0;
  const ws = () => {
    while (i < text.length && ' \t\n\r'.includes(text[i])) i++;
  };
  const err = (msg: string): never => {
    throw new Error(`${msg} at character ${i}`);
  };
  const value = (depth: number): PyValue => {
    if (depth > 16) err('nested too deeply');
    ws();
    const ch = text[i];
    if (ch === undefined) return err('unexpected end');
    if (ch === '{') {
      i++;
      const m = new Map<string, PyValue>();
      for (;;) {
        ws();
        if (text[i] === '}') {
          i++;
          return m;
        }
        const k = value(depth + 1);
        if (typeof k !== 'string') err('dict key is not a string');
        ws();
        if (text[i] !== ':') err("expected ':'");
        i++;
        if (m.has(k as string)) err(`duplicate key ${JSON.stringify(k)}`);
        m.set(k as string, value(depth + 1));
        ws();
        if (text[i] === ',') i++;
        else if (text[i] !== '}') err("expected ',' or '}'");
      }
    }
    if (ch === '(' || ch === '[') {
      const close = ch === '(' ? ')' : ']';
      i++;
      const items: PyValue[] = [];
      let sawComma = false;
      for (;;) {
        ws();
        if (text[i] === close) {
          i++;
          if (close === ')' && items.length === 1 && !sawComma) return items[0]; // (x) is just x
          return close === ')' ? new PyTuple(items) : items;
        }
        items.push(value(depth + 1));
        ws();
        if (text[i] === ',') {
          sawComma = true;
          i++;
        } else if (text[i] !== close) err(`expected ',' or '${close}'`);
      }
    }
    if (ch === "'" || ch === '"') {
      i++;
      let s = '';
      for (;;) {
        const c = text[i];
        if (c === undefined) err('unterminated string');
        i++;
        if (c === ch) return s;
        if (c === '\\') {
          const e = text[i++];
          if (e === undefined) err('unterminated string');
          s += e === 'n' ? '\n' : e === 't' ? '\t' : e;
        } else s += c;
      }
    }
    const m = /^(?:[-+]?\d+L?|True|False|None)/.exec(text.slice(i, i + 40));
    if (!m) return err('unexpected character');
    i += m[0].length;
    if (m[0] === 'True') return true;
    if (m[0] === 'False') return false;
    if (m[0] === 'None') return null;
    const v = Number(m[0].replace('L', ''));
    if (!Number.isSafeInteger(v)) err('integer too large');
    return v;
  };
  const v = value(0);
  ws();
  if (i !== text.length) err('trailing characters');
  return v;
}
