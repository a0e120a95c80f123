/**
 * A restricted unpickler: a small stack machine for pickle protocols 0-5 that builds plain data
 * (None, bools, ints, floats, strings, bytes, tuples, lists, dicts, sets) and accepts only the
 * few globals a PyTorch weights-only loader needs to rebuild a state dict. Any other global
 * (`GLOBAL`, `STACK_GLOBAL`, `INST`, `OBJ` with a foreign class, extension codes) is refused with
 * an `UnsafeCheckpointError` that names it; nothing is ever imported or executed.
 *
 * Python values map to JavaScript as follows:
 *
 * | Python | JavaScript |
 * |---|---|
 * | `None` / `bool` / `str` | `null` / `boolean` / `string` |
 * | `int` | `number` when it is a safe integer, else `bigint` |
 * | `float` | `number` |
 * | `bytes`, `bytearray` | `Uint8Array` |
 * | `tuple`, `list` | `PyTuple` (a frozen-by-convention `Array` subclass), `Array` |
 * | `dict`, `collections.OrderedDict` | `PyDict` (a `Map` subclass; `ordered` marks OrderedDict) |
 * | `set`, `frozenset` | `Set` |
 * | `torch.*Storage` (the class) | `StorageType` |
 * | a rebuilt tensor or parameter | `TensorRef` (storage as returned by `persistentLoad`) |
 *
 * Error policy: a stream that is truncated, has an unknown opcode, or is structurally invalid
 * (stack underflow, missing MARK, wrong argument types) gives a `FormatError`; a global outside
 * the allow-list gives an `UnsafeCheckpointError`.
 */
import { FormatError, UnsafeCheckpointError } from '@mcp-medsam/core';

// ---------------------------------------------------------------------------------------------
// value types

/** A Python tuple. A plain `Array` is a Python list. */
export class PyTuple extends Array<unknown> {
  static from_(items: unknown[]): PyTuple {
    const t = new PyTuple();
    for (const x of items) t.push(x);
    return t;
  }
}

/** A Python `dict` or `collections.OrderedDict` (`ordered`); `attributes` holds what BUILD set (e.g. `_metadata`). */
export class PyDict extends Map<unknown, unknown> {
  ordered = false;
  attributes: Record<string, unknown> = {};
}

/** The element types of PyTorch storages this reader understands (`bfloat16` is decoded to float32 later). */
export type StorageDType =
  | 'float64'
  | 'float32'
  | 'float16'
  | 'bfloat16'
  | 'int64'
  | 'int32'
  | 'int16'
  | 'int8'
  | 'uint8'
  | 'bool';

/** A `torch.*Storage` class as named in a persistent id. `dtype` is undefined for storages of unsupported types (complex...). */
export interface StorageType {
  readonly kind: 'storage-type';
  /** `torch.FloatStorage`, ... */
  readonly name: string;
  readonly dtype: StorageDType | undefined;
  readonly itemSize: number;
}

/** A tensor as rebuilt by `torch._utils._rebuild_tensor_v2` and friends: a strided view of a storage. */
export interface TensorRef {
  readonly kind: 'tensor';
  /** Whatever `persistentLoad` returned for the storage. */
  readonly storage: unknown;
  readonly storageOffset: number;
  readonly shape: number[];
  readonly stride: number[];
  requiresGrad: boolean;
  /** True when it came through `_rebuild_parameter*` (an `nn.Parameter`). */
  isParameter: boolean;
}

/** A `torch.device`. */
export interface DeviceRef {
  readonly kind: 'device';
  readonly type: string;
  readonly index: number | null;
}

/** A torch dtype global such as `torch.float32` (appears in some newer pickles). */
export interface TorchDTypeRef {
  readonly kind: 'torch-dtype';
  readonly name: string;
}

export function isTensorRef(x: unknown): x is TensorRef {
  return typeof x === 'object' && x !== null && (x as { kind?: unknown }).kind === 'tensor';
}

export function isStorageType(x: unknown): x is StorageType {
  return typeof x === 'object' && x !== null && (x as { kind?: unknown }).kind === 'storage-type';
}

// ---------------------------------------------------------------------------------------------
// the allow-list

/** The storage classes (`torch.<name>`) and their element types. */
export const STORAGE_TYPES: Readonly<Record<string, { dtype: StorageDType | undefined; itemSize: number }>> =
  {
    DoubleStorage: { dtype: 'float64', itemSize: 8 },
    FloatStorage: { dtype: 'float32', itemSize: 4 },
    HalfStorage: { dtype: 'float16', itemSize: 2 },
    BFloat16Storage: { dtype: 'bfloat16', itemSize: 2 },
    LongStorage: { dtype: 'int64', itemSize: 8 },
    IntStorage: { dtype: 'int32', itemSize: 4 },
    ShortStorage: { dtype: 'int16', itemSize: 2 },
    CharStorage: { dtype: 'int8', itemSize: 1 },
    ByteStorage: { dtype: 'uint8', itemSize: 1 },
    BoolStorage: { dtype: 'bool', itemSize: 1 },
    // Known to PyTorch's weights-only loader but not representable here: accepted as classes so that
    // the error is a clear FormatError when a tensor uses one, not an "unsafe global".
    ComplexFloatStorage: { dtype: undefined, itemSize: 8 },
    ComplexDoubleStorage: { dtype: undefined, itemSize: 16 },
  };

const TORCH_DTYPE_NAMES = [
  'float64',
  'float32',
  'float16',
  'bfloat16',
  'int64',
  'int32',
  'int16',
  'int8',
  'uint8',
  'bool',
  'double',
  'float',
  'half',
  'long',
  'int',
  'short',
  'complex64',
  'complex128',
];

type Callable = (args: unknown[], kwargs?: PyDict) => unknown;

interface GlobalValue {
  readonly kind: 'global';
  readonly name: string;
  readonly call?: Callable;
  /** For type-like globals passed around as values (storage classes, dtypes, Parameter). */
  readonly value?: unknown;
}

function argError(name: string, msg: string): never {
  throw new FormatError(`pickle: bad arguments to ${name}: ${msg}`);
}

function intArg(name: string, v: unknown, what: string): number {
  if (typeof v === 'number' && Number.isSafeInteger(v)) return v;
  if (typeof v === 'bigint' && v >= BigInt(Number.MIN_SAFE_INTEGER) && v <= BigInt(Number.MAX_SAFE_INTEGER))
    return Number(v);
  return argError(name, `${what} is not an integer`);
}

function intTupleArg(name: string, v: unknown, what: string): number[] {
  if (!Array.isArray(v)) return argError(name, `${what} is not a tuple`);
  const out: number[] = [];
  for (let i = 0; i < v.length; i++) out.push(intArg(name, v[i], `${what}[${i}]`));
  return out;
}

function rebuildTensor(name: string, args: unknown[], minArgs: number): TensorRef {
  if (args.length < minArgs) argError(name, `expected at least ${minArgs} arguments, got ${args.length}`);
  const [storage, offset, size, stride, requiresGrad] = args;
  return {
    kind: 'tensor',
    storage,
    storageOffset: intArg(name, offset, 'storage_offset'),
    shape: intTupleArg(name, size, 'size'),
    stride: intTupleArg(name, stride, 'stride'),
    requiresGrad: requiresGrad === true,
    isParameter: false,
  };
}

function rebuildParameter(name: string, args: unknown[]): TensorRef {
  if (args.length < 2) argError(name, `expected at least 2 arguments, got ${args.length}`);
  const data = args[0];
  if (!isTensorRef(data)) return argError(name, 'data is not a tensor');
  data.requiresGrad = args[1] === true;
  data.isParameter = true;
  return data;
}

function makeGlobals(): Map<string, GlobalValue> {
  const g = new Map<string, GlobalValue>();
  const add = (name: string, rest: Omit<GlobalValue, 'kind' | 'name'>) =>
    g.set(name, { kind: 'global', name, ...rest });

  add('collections.OrderedDict', {
    call: (args) => {
      const d = new PyDict();
      d.ordered = true;
      if (args.length > 0) fillDictFrom(d, args[0], 'collections.OrderedDict');
      return d;
    },
  });
  add('builtins.dict', {
    call: (args) => {
      const d = new PyDict();
      if (args.length > 0) fillDictFrom(d, args[0], 'builtins.dict');
      return d;
    },
  });
  add('builtins.list', { call: (args) => (args.length ? [...iterableArg('builtins.list', args[0])] : []) });
  add('builtins.tuple', {
    call: (args) => PyTuple.from_(args.length ? [...iterableArg('builtins.tuple', args[0])] : []),
  });
  add('builtins.set', { call: (args) => new Set(args.length ? iterableArg('builtins.set', args[0]) : []) });
  add('builtins.frozenset', {
    call: (args) => new Set(args.length ? iterableArg('builtins.frozenset', args[0]) : []),
  });
  add('builtins.bytearray', {
    call: (args) => {
      if (args.length === 0) return new Uint8Array(0);
      const a = args[0];
      if (a instanceof Uint8Array) return a.slice();
      if (typeof a === 'string' && args[1] === 'latin-1') return latin1(a, 'builtins.bytearray');
      return argError('builtins.bytearray', 'unsupported argument');
    },
  });
  // Protocol 2 pickles bytes as _codecs.encode(<str>, 'latin1').
  add('_codecs.encode', {
    call: (args) => {
      const [s, enc] = args;
      if (typeof s !== 'string') return argError('_codecs.encode', 'not a string');
      if (enc !== 'latin1' && enc !== 'latin-1') return argError('_codecs.encode', `encoding ${String(enc)}`);
      return latin1(s, '_codecs.encode');
    },
  });

  add('torch._utils._rebuild_tensor_v2', {
    call: (args) => rebuildTensor('torch._utils._rebuild_tensor_v2', args, 5),
  });
  add('torch._utils._rebuild_tensor', {
    call: (args) => rebuildTensor('torch._utils._rebuild_tensor', args, 4),
  });
  add('torch._utils._rebuild_parameter', {
    call: (args) => rebuildParameter('torch._utils._rebuild_parameter', args),
  });
  add('torch._utils._rebuild_parameter_with_state', {
    call: (args) => rebuildParameter('torch._utils._rebuild_parameter_with_state', args),
  });
  // _rebuild_from_type_v2(func, new_type, args, state): used for tensors carrying Python attributes.
  add('torch._tensor._rebuild_from_type_v2', {
    call: (args) => {
      const [func, , fargs] = args;
      if (!isGlobal(func) || !func.call)
        return argError('torch._tensor._rebuild_from_type_v2', 'func is not callable');
      if (!Array.isArray(fargs))
        return argError('torch._tensor._rebuild_from_type_v2', 'args is not a tuple');
      return func.call(fargs);
    },
  });
  add('torch.nn.parameter.Parameter', { value: 'torch.nn.parameter.Parameter' });
  add('torch.Tensor', { value: 'torch.Tensor' });
  add('torch.Size', { call: (args) => PyTuple.from_(intTupleArg('torch.Size', args[0] ?? [], 'size')) });
  add('torch.device', {
    call: (args) => {
      const [t, i] = args;
      if (typeof t !== 'string') return argError('torch.device', 'type is not a string');
      const dev: DeviceRef = {
        kind: 'device',
        type: t,
        index: i === undefined || i === null ? null : intArg('torch.device', i, 'index'),
      };
      return dev;
    },
  });
  for (const [name, info] of Object.entries(STORAGE_TYPES)) {
    const st: StorageType = { kind: 'storage-type', name: `torch.${name}`, ...info };
    add(`torch.${name}`, { value: st });
  }
  for (const name of TORCH_DTYPE_NAMES) {
    const d: TorchDTypeRef = { kind: 'torch-dtype', name };
    add(`torch.${name}`, { value: d });
  }
  return g;
}

function isGlobal(x: unknown): x is GlobalValue {
  return typeof x === 'object' && x !== null && (x as { kind?: unknown }).kind === 'global';
}

function latin1(s: string, name: string): Uint8Array {
  const out = new Uint8Array(s.length);
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c > 255) argError(name, 'character outside latin-1');
    out[i] = c;
  }
  return out;
}

function iterableArg(name: string, v: unknown): Iterable<unknown> {
  if (Array.isArray(v) || v instanceof Set) return v;
  if (v instanceof PyDict) return v.keys();
  return argError(name, 'argument is not iterable');
}

function fillDictFrom(d: PyDict, src: unknown, name: string): void {
  if (src instanceof PyDict) {
    for (const [k, v] of src) d.set(k, v);
    return;
  }
  if (Array.isArray(src)) {
    for (const pair of src) {
      if (!Array.isArray(pair) || pair.length !== 2) argError(name, 'items are not pairs');
      d.set(dictKey(pair[0]), pair[1]);
    }
    return;
  }
  argError(name, 'argument is not a mapping');
}

/** The names of every global the unpickler accepts. */
export const ALLOWED_GLOBALS: readonly string[] = [...makeGlobals().keys()];

/** Python dict keys: JS Map keys compare by identity, so ints that fit are normalised to numbers. */
function dictKey(k: unknown): unknown {
  if (typeof k === 'bigint' && k >= BigInt(Number.MIN_SAFE_INTEGER) && k <= BigInt(Number.MAX_SAFE_INTEGER))
    return Number(k);
  if (typeof k === 'boolean') return k ? 1 : 0; // hash(True) == hash(1) in Python
  return k;
}

// ---------------------------------------------------------------------------------------------
// the machine

export interface UnpickleOptions {
  /** Resolves a persistent id (BINPERSID / PERSID). Without it, a persistent id is a FormatError. */
  persistentLoad?: (pid: unknown) => unknown;
  /** File name for error messages. */
  file?: string;
  /** What the stream is, for error messages (e.g. `archive/data.pkl`); default `pickle`. */
  label?: string;
  /** Largest number of memo entries (default 2^22). */
  maxMemo?: number;
  /** Deepest MARK nesting (default 10,000). */
  maxMarkDepth?: number;
  /** Largest LONG4 / text integer, in bytes or digits (default 4096). */
  maxIntBytes?: number;
}

const MARK = Symbol('mark');

const utf8 = new TextDecoder('utf-8', { fatal: true });

class Truncated extends Error {}

/**
 * Unpickle one object from `bytes` (up to its STOP opcode; bytes after it are ignored, as Python's
 * `pickle.loads` would not, but `torch.load` never has any).
 */
export function unpickle(bytes: Uint8Array, options: UnpickleOptions = {}): unknown {
  const file = options.file;
  const label = options.label ?? 'pickle';
  const maxMemo = options.maxMemo ?? 1 << 22;
  const maxMarkDepth = options.maxMarkDepth ?? 10_000;
  const maxIntBytes = options.maxIntBytes ?? 4096;
  const globals = makeGlobals();
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const n = bytes.length;
  let pos = 0;
  let stack: unknown[] = [];
  const metastack: unknown[][] = [];
  const memo = new Map<number, unknown>();

  const fail = (msg: string): never => {
    throw new FormatError(`${label}: corrupt pickle at byte ${pos}: ${msg}`, { file });
  };
  const need = (k: number) => {
    if (k < 0 || pos + k > n) throw new Truncated();
  };
  const u8 = () => {
    need(1);
    return bytes[pos++];
  };
  const u16 = () => {
    need(2);
    const v = dv.getUint16(pos, true);
    pos += 2;
    return v;
  };
  const u32 = () => {
    need(4);
    const v = dv.getUint32(pos, true);
    pos += 4;
    return v;
  };
  const i32 = () => {
    need(4);
    const v = dv.getInt32(pos, true);
    pos += 4;
    return v;
  };
  const u64 = () => {
    need(8);
    const v = dv.getBigUint64(pos, true);
    pos += 8;
    if (v > BigInt(n)) throw new Truncated();
    return Number(v);
  };
  const take = (k: number) => {
    need(k);
    const b = bytes.subarray(pos, pos + k);
    pos += k;
    return b;
  };
  const line = () => {
    const end = bytes.indexOf(0x0a, pos);
    if (end < 0) throw new Truncated();
    const b = bytes.subarray(pos, end);
    pos = end + 1;
    // Text opcodes carry ASCII (repr / decimal) text.
    let s = '';
    for (let i = 0; i < b.length; i++) s += String.fromCharCode(b[i]);
    return s;
  };
  const str = (b: Uint8Array) => {
    try {
      return utf8.decode(b);
    } catch {
      return fail('invalid UTF-8 in a string');
    }
  };
  const pop = (): unknown => {
    if (stack.length === 0) return fail('stack underflow');
    const v = stack.pop();
    if (v === MARK) return fail('unexpected MARK');
    return v;
  };
  const top = (): unknown => {
    if (stack.length === 0) return fail('stack underflow');
    const v = stack[stack.length - 1];
    if (v === MARK) return fail('unexpected MARK');
    return v;
  };
  const push = (v: unknown) => {
    stack.push(v);
  };
  const popMark = (): unknown[] => {
    const items = stack;
    const prev = metastack.pop();
    if (prev === undefined) return fail('no MARK on the stack');
    stack = prev;
    for (const x of items) if (x === MARK) fail('nested MARK');
    return items;
  };
  const memoPut = (idx: number) => {
    if (!memo.has(idx) && memo.size >= maxMemo) fail(`more than ${maxMemo} memo entries`);
    memo.set(idx, top());
  };
  const memoGet = (idx: number) => {
    if (!memo.has(idx)) fail(`memo key ${idx} not found`);
    push(memo.get(idx));
  };
  const intFromBytes = (b: Uint8Array): number | bigint => {
    if (b.length === 0) return 0;
    if (b.length > maxIntBytes) fail(`integer of ${b.length} bytes`);
    let v = 0n;
    for (let i = b.length - 1; i >= 0; i--) v = (v << 8n) | BigInt(b[i]);
    if (b[b.length - 1] & 0x80) v -= 1n << BigInt(8 * b.length);
    return normInt(v);
  };
  const parseTextInt = (s: string): number | bigint | boolean => {
    let t = s.trim();
    if (t === '00') return false; // protocol 0 bools
    if (t === '01') return true;
    if (t.endsWith('L')) t = t.slice(0, -1);
    if (t.length > maxIntBytes) fail('integer too long');
    if (!/^[+-]?\d+$/.test(t)) fail(`bad integer ${JSON.stringify(s)}`);
    return normInt(BigInt(t));
  };
  const lookupGlobal = (module: string, name: string): GlobalValue => {
    const full = `${module}.${name}`;
    // Python 2 names that Python 3 maps to builtins
    const alias = module === '__builtin__' ? `builtins.${name}` : full;
    const g = globals.get(alias);
    if (!g) {
      throw new UnsafeCheckpointError(
        `${label}: pickle global ${full} is not allowed: a weights-only checkpoint may only reference ` +
          'collections.OrderedDict, torch._utils._rebuild_tensor_v2 / _rebuild_parameter and torch.*Storage ' +
          '(refusing to load it; if you trust the file, re-save its state_dict with torch.save)',
        { file },
      );
    }
    return g;
  };
  const globalValue = (g: GlobalValue): unknown => (g.value !== undefined ? g.value : g);
  const callable = (f: unknown, what: string): Callable => {
    if (isGlobal(f) && f.call) return f.call;
    const name = isGlobal(f) ? f.name : isStorageType(f) ? f.name : undefined;
    if (name) {
      throw new UnsafeCheckpointError(
        `pickle ${what} calls ${name}, which a weights-only loader may not call`,
        {
          file,
        },
      );
    }
    return fail(`${what} on a value that is not a callable global`);
  };
  const setItem = (d: unknown, k: unknown, v: unknown) => {
    if (!(d instanceof PyDict)) fail('SETITEM(S) on a value that is not a dict');
    (d as PyDict).set(dictKey(k), v);
  };
  const appendTo = (l: unknown, items: unknown[]) => {
    if (!Array.isArray(l) || l instanceof PyTuple) fail('APPEND(S) on a value that is not a list');
    for (const x of items) (l as unknown[]).push(x);
  };

  try {
    for (;;) {
      const op = u8();
      switch (op) {
        case 0x80: {
          // PROTO
          const p = u8();
          if (p > 5) fail(`unsupported pickle protocol ${p}`);
          break;
        }
        case 0x95: // FRAME
          u64();
          break;
        case 0x2e: // STOP '.'
          if (metastack.length !== 0) fail('STOP inside a MARK');
          if (stack.length !== 1) fail(`STOP with ${stack.length} values on the stack`);
          return pop();
        case 0x28: // MARK '('
          if (metastack.length >= maxMarkDepth) fail(`MARKs nested deeper than ${maxMarkDepth}`);
          metastack.push(stack);
          stack = [];
          break;
        case 0x30: // POP '0'
          if (stack.length === 0) {
            // POP of a MARK
            popMark();
          } else pop();
          break;
        case 0x31: // POP_MARK '1'
          popMark();
          break;
        case 0x32: // DUP '2'
          push(top());
          break;

        // --- constants
        case 0x4e: // NONE 'N'
          push(null);
          break;
        case 0x88: // NEWTRUE
          push(true);
          break;
        case 0x89: // NEWFALSE
          push(false);
          break;
        case 0x4a: // BININT 'J'
          push(i32());
          break;
        case 0x4b: // BININT1 'K'
          push(u8());
          break;
        case 0x4d: // BININT2 'M'
          push(u16());
          break;
        case 0x8a: // LONG1
          push(intFromBytes(take(u8())));
          break;
        case 0x8b: {
          // LONG4
          const k = i32();
          if (k < 0) fail('negative LONG4 length');
          if (k > maxIntBytes) fail(`integer of ${k} bytes`);
          push(intFromBytes(take(k)));
          break;
        }
        case 0x49: // INT 'I'
          push(parseTextInt(line()));
          break;
        case 0x4c: // LONG 'L'
          push(parseTextInt(line()));
          break;
        case 0x47: // BINFLOAT 'G' (big-endian double)
          need(8);
          push(dv.getFloat64(pos, false));
          pos += 8;
          break;
        case 0x46: {
          // FLOAT 'F'
          const s = line().trim();
          if (!/^[+-]?(\d+\.?\d*([eE][+-]?\d+)?|\.\d+([eE][+-]?\d+)?|inf|nan|infinity)$/i.test(s))
            fail(`bad float ${JSON.stringify(s)}`);
          push(
            /^[+-]?inf/i.test(s)
              ? s.startsWith('-')
                ? -Infinity
                : Infinity
              : /nan/i.test(s)
                ? NaN
                : Number(s),
          );
          break;
        }

        // --- strings and bytes
        case 0x58: // BINUNICODE 'X'
          push(str(take(u32())));
          break;
        case 0x8c: // SHORT_BINUNICODE
          push(str(take(u8())));
          break;
        case 0x8d: // BINUNICODE8
          push(str(take(u64())));
          break;
        case 0x56: // UNICODE 'V' (raw-unicode-escape)
          push(rawUnicodeEscape(line(), fail));
          break;
        case 0x42: // BINBYTES 'B'
          push(take(u32()).slice());
          break;
        case 0x43: // SHORT_BINBYTES 'C'
          push(take(u8()).slice());
          break;
        case 0x8e: // BINBYTES8
          push(take(u64()).slice());
          break;
        case 0x96: // BYTEARRAY8
          push(take(u64()).slice());
          break;
        case 0x54: {
          // BINSTRING 'T' (Python 2 str; decoded as Python 3 does by default, ASCII)
          const k = i32();
          if (k < 0) fail('negative BINSTRING length');
          push(asciiString(take(k), fail));
          break;
        }
        case 0x55: // SHORT_BINSTRING 'U'
          push(asciiString(take(u8()), fail));
          break;
        case 0x53: // STRING 'S' (quoted repr)
          push(quotedString(line(), fail));
          break;
        case 0x97: // NEXT_BUFFER
        case 0x98: // READONLY_BUFFER
          fail('out-of-band buffers are not supported');
          break;

        // --- containers
        case 0x29: // EMPTY_TUPLE ')'
          push(new PyTuple());
          break;
        case 0x85: // TUPLE1
          push(PyTuple.from_([pop()]));
          break;
        case 0x86: {
          // TUPLE2
          const b = pop();
          const a = pop();
          push(PyTuple.from_([a, b]));
          break;
        }
        case 0x87: {
          // TUPLE3
          const c = pop();
          const b = pop();
          const a = pop();
          push(PyTuple.from_([a, b, c]));
          break;
        }
        case 0x74: // TUPLE 't'
          push(PyTuple.from_(popMark()));
          break;
        case 0x5d: // EMPTY_LIST ']'
          push([]);
          break;
        case 0x6c: // LIST 'l'
          push(popMark());
          break;
        case 0x61: {
          // APPEND 'a'
          const v = pop();
          appendTo(top(), [v]);
          break;
        }
        case 0x65: {
          // APPENDS 'e'
          const items = popMark();
          appendTo(top(), items);
          break;
        }
        case 0x7d: // EMPTY_DICT '}'
          push(new PyDict());
          break;
        case 0x64: {
          // DICT 'd'
          const items = popMark();
          if (items.length % 2) fail('DICT with an odd number of items');
          const d = new PyDict();
          for (let i = 0; i < items.length; i += 2) d.set(dictKey(items[i]), items[i + 1]);
          push(d);
          break;
        }
        case 0x73: {
          // SETITEM 's'
          const v = pop();
          const k = pop();
          setItem(top(), k, v);
          break;
        }
        case 0x75: {
          // SETITEMS 'u'
          const items = popMark();
          if (items.length % 2) fail('SETITEMS with an odd number of items');
          const d = top();
          for (let i = 0; i < items.length; i += 2) setItem(d, items[i], items[i + 1]);
          break;
        }
        case 0x8f: // EMPTY_SET
          push(new Set());
          break;
        case 0x90: {
          // ADDITEMS
          const items = popMark();
          const s = top();
          if (!(s instanceof Set)) fail('ADDITEMS on a value that is not a set');
          for (const x of items) (s as Set<unknown>).add(x);
          break;
        }
        case 0x91: // FROZENSET
          push(new Set(popMark()));
          break;

        // --- memo
        case 0x70: {
          // PUT 'p'
          const s = line();
          if (!/^\d+$/.test(s)) fail('bad PUT index');
          memoPut(Number(s));
          break;
        }
        case 0x71: // BINPUT 'q'
          memoPut(u8());
          break;
        case 0x72: // LONG_BINPUT 'r'
          memoPut(u32());
          break;
        case 0x94: // MEMOIZE
          memoPut(memo.size);
          break;
        case 0x67: {
          // GET 'g'
          const s = line();
          if (!/^\d+$/.test(s)) fail('bad GET index');
          memoGet(Number(s));
          break;
        }
        case 0x68: // BINGET 'h'
          memoGet(u8());
          break;
        case 0x6a: // LONG_BINGET 'j'
          memoGet(u32());
          break;

        // --- globals and calls
        case 0x63: {
          // GLOBAL 'c'
          const module = line();
          const name = line();
          push(globalValue(lookupGlobal(module, name)));
          break;
        }
        case 0x93: {
          // STACK_GLOBAL
          const name = pop();
          const module = pop();
          if (typeof module !== 'string' || typeof name !== 'string') fail('STACK_GLOBAL needs two strings');
          push(globalValue(lookupGlobal(module as string, name as string)));
          break;
        }
        case 0x69: {
          // INST 'i': module, name, then the class is called with the MARKed args
          const module = line();
          const name = line();
          const g = lookupGlobal(module, name);
          const args = popMark();
          push(callable(g, 'INST')(args));
          break;
        }
        case 0x6f: {
          // OBJ 'o'
          const items = popMark();
          if (items.length === 0) fail('OBJ without a class');
          push(callable(items[0], 'OBJ')(items.slice(1)));
          break;
        }
        case 0x52: {
          // REDUCE 'R'
          const args = pop();
          const f = pop();
          if (!Array.isArray(args)) fail('REDUCE arguments are not a tuple');
          push(callable(f, 'REDUCE')(args as unknown[]));
          break;
        }
        case 0x81: {
          // NEWOBJ: cls.__new__(cls, *args)
          const args = pop();
          const cls = pop();
          if (!Array.isArray(args)) fail('NEWOBJ arguments are not a tuple');
          push(callable(cls, 'NEWOBJ')(args as unknown[]));
          break;
        }
        case 0x92: {
          // NEWOBJ_EX
          const kwargs = pop();
          const args = pop();
          const cls = pop();
          if (!Array.isArray(args) || !(kwargs instanceof PyDict)) fail('bad NEWOBJ_EX arguments');
          push(callable(cls, 'NEWOBJ_EX')(args as unknown[], kwargs as PyDict));
          break;
        }
        case 0x62: {
          // BUILD 'b'
          const state = pop();
          const inst = top();
          build(inst, state, fail);
          break;
        }
        case 0x82:
        case 0x83:
        case 0x84: {
          // EXT1/2/4: the copyreg extension registry, i.e. arbitrary globals
          const code = op === 0x82 ? u8() : op === 0x83 ? u16() : i32();
          throw new UnsafeCheckpointError(
            `pickle uses extension code ${code} (a global by number), which is not allowed`,
            {
              file,
            },
          );
        }
        case 0x51: {
          // BINPERSID 'Q'
          const pid = pop();
          if (!options.persistentLoad) fail('persistent id without a loader');
          push(options.persistentLoad!(pid));
          break;
        }
        case 0x50: {
          // PERSID 'P'
          const pid = line();
          if (!options.persistentLoad) fail('persistent id without a loader');
          push(options.persistentLoad!(pid));
          break;
        }
        default:
          pos--;
          fail(`unknown opcode 0x${op.toString(16).padStart(2, '0')}`);
      }
    }
  } catch (e) {
    if (e instanceof Truncated)
      throw new FormatError(`${label}: truncated pickle (ends before its STOP opcode)`, { file });
    if (e instanceof FormatError && !e.file && (file || !e.message.startsWith(label))) {
      // errors raised by the globals' argument checks
      throw new FormatError(e.message.startsWith(label) ? e.message : `${label}: ${e.message}`, {
        file,
        cause: e,
      });
    }
    throw e;
  }
}

function normInt(v: bigint): number | bigint {
  return v >= BigInt(Number.MIN_SAFE_INTEGER) && v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v;
}

function build(inst: unknown, state: unknown, fail: (m: string) => never): void {
  if (inst instanceof PyDict) {
    // OrderedDict.__reduce__ gives the instance __dict__ as state (e.g. {'_metadata': ...});
    // a (dict_state, slot_state) pair is accepted too.
    const parts = Array.isArray(state) ? state : [state];
    for (const part of parts) {
      if (part === null) continue;
      if (!(part instanceof PyDict)) fail('BUILD state for a dict is not a dict');
      for (const [k, v] of part as PyDict) {
        if (typeof k !== 'string') fail('BUILD attribute name is not a string');
        (inst as PyDict).attributes[k as string] = v;
      }
    }
    return;
  }
  if (isTensorRef(inst)) {
    // Tensor / Parameter __setstate__ (requires_grad, hooks, Python attributes): nothing to keep.
    return;
  }
  fail('BUILD on a value that is neither a dict nor a tensor');
}

function asciiString(b: Uint8Array, fail: (m: string) => never): string {
  let s = '';
  for (let i = 0; i < b.length; i++) {
    if (b[i] > 127) fail('non-ASCII Python 2 string');
    s += String.fromCharCode(b[i]);
  }
  return s;
}

function quotedString(s: string, fail: (m: string) => never): string {
  const t = s.replace(/\r$/, '');
  if (t.length < 2 || (t[0] !== "'" && t[0] !== '"') || t[t.length - 1] !== t[0]) fail('bad STRING quoting');
  const body = t.slice(1, -1);
  return body.replace(/\\(x[0-9a-fA-F]{2}|[0-7]{1,3}|.)/g, (_m, e: string) => {
    if (e[0] === 'x') return String.fromCharCode(parseInt(e.slice(1), 16));
    if (/^[0-7]/.test(e)) return String.fromCharCode(parseInt(e, 8));
    const map: Record<string, string> = {
      n: '\n',
      r: '\r',
      t: '\t',
      '\\': '\\',
      "'": "'",
      '"': '"',
      a: '\x07',
      b: '\b',
      f: '\f',
      v: '\v',
      '0': '\0',
    };
    return map[e] ?? `\\${e}`;
  });
}

function rawUnicodeEscape(s: string, fail: (m: string) => never): string {
  // The line was read as latin-1 bytes; \uXXXX and \UXXXXXXXX are the only escapes.
  return s.replace(
    /\\u([0-9a-fA-F]{4})|\\U([0-9a-fA-F]{8})/g,
    (_m, a: string | undefined, b: string | undefined) => {
      const cp = parseInt((a ?? b)!, 16);
      if (cp > 0x10ffff) fail('bad \\U escape');
      return String.fromCodePoint(cp);
    },
  );
}

// ---------------------------------------------------------------------------------------------
// writer

/** A float to be written as a Python float even when it is integral (`PyFloat(1)` pickles as `1.0`). */
export class PyFloat {
  constructor(readonly value: number) {}
}

/**
 * A minimal protocol-2 pickle writer, enough for `torch.save`-style checkpoints: the caller
 * emits opcodes; helpers memoise repeated globals and strings.
 */
export class PickleWriter {
  private chunks: Uint8Array[] = [];
  private cur = new Uint8Array(1 << 16);
  private len = 0;
  private memoNext = 0;
  private readonly memoGlobals = new Map<string, number>();
  private readonly memoStrings = new Map<string, number>();
  private static readonly enc = new TextEncoder();

  constructor() {
    this.bytes([0x80, 2]);
  }

  private ensure(k: number) {
    if (this.len + k > this.cur.length) {
      this.chunks.push(this.cur.subarray(0, this.len));
      this.cur = new Uint8Array(Math.max(1 << 16, k));
      this.len = 0;
    }
  }

  bytes(b: ArrayLike<number>): void {
    this.ensure(b.length);
    this.cur.set(b, this.len);
    this.len += b.length;
  }

  op(code: number): void {
    this.ensure(1);
    this.cur[this.len++] = code;
  }

  private u32(v: number) {
    this.bytes([v & 0xff, (v >>> 8) & 0xff, (v >>> 16) & 0xff, (v >>> 24) & 0xff]);
  }

  private put(): number {
    const i = this.memoNext++;
    if (i < 256) this.bytes([0x71, i]);
    else {
      this.op(0x72);
      this.u32(i);
    }
    return i;
  }

  private get(i: number) {
    if (i < 256) this.bytes([0x68, i]);
    else {
      this.op(0x6a);
      this.u32(i);
    }
  }

  mark(): void {
    this.op(0x28);
  }

  /** GLOBAL `module name`, memoised. */
  global(module: string, name: string): void {
    const key = `${module}\n${name}\n`;
    const m = this.memoGlobals.get(key);
    if (m !== undefined) return this.get(m);
    this.op(0x63);
    this.bytes(PickleWriter.enc.encode(key));
    this.memoGlobals.set(key, this.put());
  }

  /** A str; memoised when `memo` is set (Python memoises every str, but only repeats matter). */
  string(s: string, memo = false): void {
    if (memo) {
      const m = this.memoStrings.get(s);
      if (m !== undefined) return this.get(m);
    }
    const b = PickleWriter.enc.encode(s);
    this.op(0x58);
    this.u32(b.length);
    this.bytes(b);
    if (memo) this.memoStrings.set(s, this.put());
  }

  int(v: number | bigint): void {
    if (typeof v === 'number') {
      if (!Number.isSafeInteger(v)) throw new RangeError(`not a safe integer: ${v}`);
      if (v >= 0 && v < 256) return this.bytes([0x4b, v]);
      if (v >= 0 && v < 65536) return this.bytes([0x4d, v & 0xff, v >> 8]);
      if (v >= -0x80000000 && v <= 0x7fffffff) {
        this.op(0x4a);
        return this.u32(v >>> 0);
      }
      v = BigInt(v);
    }
    // LONG1: minimal two's complement little-endian
    const out: number[] = [];
    let x = v;
    for (;;) {
      const byte = Number(x & 0xffn);
      out.push(byte);
      x >>= 8n;
      if ((x === 0n && !(byte & 0x80)) || (x === -1n && byte & 0x80)) break;
    }
    if (out.length > 255) throw new RangeError('integer too large');
    this.bytes([0x8a, out.length, ...out]);
  }

  float(v: number): void {
    const b = new Uint8Array(9);
    b[0] = 0x47;
    new DataView(b.buffer).setFloat64(1, v, false);
    this.bytes(b);
  }

  none(): void {
    this.op(0x4e);
  }

  bool(v: boolean): void {
    this.op(v ? 0x88 : 0x89);
  }

  /** TUPLE1/2/3, EMPTY_TUPLE or MARK ... TUPLE around the items `emit` writes. */
  tuple(count: number, emit: () => void): void {
    if (count === 0) return this.op(0x29);
    if (count > 3) this.mark();
    emit();
    this.op(count === 1 ? 0x85 : count === 2 ? 0x86 : count === 3 ? 0x87 : 0x74);
  }

  intTuple(xs: readonly number[]): void {
    this.tuple(xs.length, () => xs.forEach((x) => this.int(x)));
  }

  /** Any plain value: null, boolean, number (integral -> int, else float), bigint, string, PyFloat, arrays (lists), plain objects / Maps with string keys (dicts). */
  value(v: unknown, depth = 0): void {
    if (depth > 100) throw new RangeError('value nested too deeply');
    if (v === null || v === undefined) return this.none();
    if (typeof v === 'boolean') return this.bool(v);
    if (typeof v === 'bigint') return this.int(v);
    if (typeof v === 'number')
      return Number.isSafeInteger(v) && !Object.is(v, -0) ? this.int(v) : this.float(v);
    if (v instanceof PyFloat) return this.float(v.value);
    if (typeof v === 'string') return this.string(v);
    if (Array.isArray(v)) {
      this.op(0x5d); // EMPTY_LIST
      this.put();
      if (v.length) {
        this.mark();
        for (const x of v) this.value(x, depth + 1);
        this.op(0x65); // APPENDS
      }
      return;
    }
    const entries =
      v instanceof Map
        ? [...v.entries()]
        : Object.getPrototypeOf(v) === Object.prototype
          ? Object.entries(v as object)
          : undefined;
    if (!entries) throw new TypeError(`cannot pickle ${Object.prototype.toString.call(v)}`);
    this.op(0x7d); // EMPTY_DICT
    this.put();
    if (entries.length) {
      this.mark();
      for (const [k, x] of entries) {
        this.value(k, depth + 1);
        this.value(x, depth + 1);
      }
      this.op(0x75); // SETITEMS
    }
  }

  /** Record the memo slot for the value on top of the stack (BINPUT). */
  memoize(): number {
    return this.put();
  }

  finish(): Uint8Array {
    this.op(0x2e); // STOP
    this.chunks.push(this.cur.subarray(0, this.len));
    const total = this.chunks.reduce((s, c) => s + c.length, 0);
    const out = new Uint8Array(total);
    let o = 0;
    for (const c of this.chunks) {
      out.set(c, o);
      o += c.length;
    }
    return out;
  }
}
