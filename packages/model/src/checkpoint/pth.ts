/**
 * PyTorch `.pth` checkpoints in the zip format `torch.save` has written since 1.6.
 *
 * The archive holds, under one top-level folder (the "archive name"): `data.pkl` (the pickled
 * object, with every tensor storage replaced by a persistent id), `data/<key>` (one raw storage per
 * key), `version`, and since PyTorch 2.1 `byteorder` (`little` or `big`; absent = little). Entries
 * may be stored (what torch.save writes, 64-byte aligned) or deflated.
 *
 * Reading is weights-only: the pickle goes through the restricted unpickler in `pickle.ts`, which
 * refuses every global outside PyTorch's weights-only allow-list with an UnsafeCheckpointError.
 */
import { readFile } from 'node:fs/promises';
import type { DType, NdArray, ZipEntry } from '@mcp-medsam/io';
import { readZip, writeZip, writeFileAtomic } from '@mcp-medsam/io';
import { FormatError, InputError, MedsamError } from '@mcp-medsam/core';
import {
  PickleWriter,
  PyDict,
  isStorageType,
  isTensorRef,
  unpickle,
  type StorageType,
  type TensorRef,
} from './pickle.js';
import { bf16BytesToFloat32, checkNdArray, ndarrayBytes, ndarrayFromBytes } from './common.js';

export interface PthContents {
  /** The model's tensors in state_dict order. bfloat16 tensors are read as float32 (exact). */
  stateDict: Map<string, NdArray>;
  /**
   * The other top-level entries of the checkpoint that are plain data (numbers, strings, bools,
   * None as null, big ints as bigint, bytes, lists/tuples as arrays, dicts as objects with string
   * keys). Entries holding tensors or other objects (e.g. an optimizer state) are left out.
   */
  meta: Record<string, unknown>;
}

export interface ReadPthOptions {
  /** File name for error messages. */
  file?: string;
}

/** Keys under which a checkpoint dict commonly keeps the model's state dict, in lookup order. */
export const STATE_DICT_KEYS = ['model', 'state_dict', 'model_state_dict'] as const;

const MAX_PICKLE_BYTES = 1 << 30;

interface StorageRef {
  readonly kind: 'storage-ref';
  readonly key: string;
  readonly type: StorageType;
  readonly numel: number;
}

function isZip(b: Uint8Array): boolean {
  return (
    b.length >= 4 &&
    b[0] === 0x50 &&
    b[1] === 0x4b &&
    ((b[2] === 3 && b[3] === 4) || (b[2] === 5 && b[3] === 6))
  );
}

function isLegacy(b: Uint8Array): boolean {
  if (b.length >= 2 && b[0] === 0x80 && b[1] >= 2 && b[1] <= 5) return true; // a bare pickle stream
  // the even older tar format ("ustar" at 257)
  return b.length > 262 && String.fromCharCode(...b.subarray(257, 262)) === 'ustar';
}

/** Whether the bytes look like a PyTorch checkpoint in either the zip or the legacy format. */
export function looksLikePth(bytes: Uint8Array): boolean {
  return isZip(bytes) || isLegacy(bytes);
}

/** Read a `torch.save` zip checkpoint (weights only). */
export function readPth(bytes: Uint8Array, options: ReadPthOptions = {}): PthContents {
  const file = options.file;
  const fail = (msg: string, cause?: unknown): never => {
    throw new FormatError(msg, { file, cause });
  };
  if (!isZip(bytes)) {
    if (isLegacy(bytes)) {
      fail(
        'legacy PyTorch checkpoint format (a bare pickle stream, written by PyTorch < 1.6 or with ' +
          '_use_new_zipfile_serialization=False) is not supported; re-save it in the zip format with PyTorch >= 1.6: ' +
          "torch.save(torch.load(old_path, map_location='cpu'), new_path)",
      );
    }
    fail('not a PyTorch checkpoint (no zip signature)');
  }

  const entries = readZip(bytes, { file });
  let archive: string | undefined;
  for (const name of entries.keys()) {
    const m = /^([^/]+)\/data\.pkl$/.exec(name);
    if (m) {
      archive = m[1];
      break;
    }
  }
  if (archive === undefined) {
    return fail(
      `no <archive>/data.pkl entry in the zip (entries: ${[...entries.keys()].slice(0, 5).join(', ')}...)`,
    );
  }
  if (entries.has(`${archive}/constants.pkl`) || hasPrefix(entries, `${archive}/code/`)) {
    fail(
      'this is a TorchScript archive (torch.jit.save), not a torch.save checkpoint; save the state_dict with torch.save',
    );
  }
  let littleEndian = true;
  const bo = entries.get(`${archive}/byteorder`);
  if (bo) {
    const s = new TextDecoder().decode(bo.read()).trim();
    if (s === 'big') littleEndian = false;
    else if (s !== 'little') fail(`unknown byteorder record ${JSON.stringify(s)}`);
  }
  const pklEntry = entries.get(`${archive}/data.pkl`)!;
  if (pklEntry.size > MAX_PICKLE_BYTES)
    fail(`data.pkl of ${pklEntry.size} bytes exceeds the ${MAX_PICKLE_BYTES}-byte limit`);
  const pkl = pklEntry.read();

  const storageRefs = new Map<string, StorageRef>();
  const persistentLoad = (pid: unknown): unknown => {
    if (!Array.isArray(pid) || pid.length < 5 || pid[0] !== 'storage') {
      return fail('data.pkl: persistent id is not a (storage, type, key, location, numel) tuple');
    }
    const [, type, key, , numel] = pid;
    if (!isStorageType(type)) return fail('data.pkl: persistent id names no storage class');
    if (typeof key !== 'string' || !/^[A-Za-z0-9_.-]+$/.test(key)) return fail('data.pkl: bad storage key');
    if (typeof numel !== 'number' || !Number.isSafeInteger(numel) || numel < 0)
      return fail(`data.pkl: bad element count for storage ${key}`);
    const prev = storageRefs.get(key);
    if (prev) {
      if (prev.type !== type || prev.numel !== numel)
        fail(`data.pkl: storage ${key} is described twice, differently`);
      return prev;
    }
    const ref: StorageRef = { kind: 'storage-ref', key, type, numel };
    storageRefs.set(key, ref);
    return ref;
  };
  const root = unpickle(pkl, { persistentLoad, file, label: `${archive}/data.pkl` });

  // find the state dict
  let sd: PyDict | undefined;
  const meta: Record<string, unknown> = {};
  if (root instanceof PyDict && isTensorDict(root)) {
    sd = root;
  } else if (root instanceof PyDict) {
    for (const k of STATE_DICT_KEYS) {
      const v = root.get(k);
      if (v instanceof PyDict && isTensorDict(v)) {
        sd = v;
        for (const [mk, mv] of root) {
          if (mk === k || typeof mk !== 'string') continue;
          const plain = toPlain(mv, 0);
          if (plain !== SKIP) meta[mk] = plain;
        }
        break;
      }
    }
    if (!sd) {
      const keys = [...root.keys()]
        .slice(0, 10)
        .map((x) => JSON.stringify(typeof x === 'bigint' ? String(x) : x));
      fail(
        `no state dict found: the checkpoint is a dict that is not a dict of tensors and has no ` +
          `${STATE_DICT_KEYS.join(' / ')} entry holding one (keys: ${keys.join(', ')})`,
      );
    }
  } else {
    fail(`no state dict found: the checkpoint holds ${describe(root)}, not a dict`);
  }

  // materialise
  const raw = new Map<string, Uint8Array>();
  const storageBytes = (ref: StorageRef): Uint8Array => {
    let b = raw.get(ref.key);
    if (!b) {
      const name = `${archive}/data/${ref.key}`;
      const e: ZipEntry | undefined = entries.get(name);
      if (!e) return fail(`missing storage entry ${name}`);
      const need = ref.numel * ref.type.itemSize;
      if (e.size < need)
        fail(
          `storage entry ${name} has ${e.size} bytes but its ${ref.numel} ${ref.type.name} elements need ${need}`,
        );
      b = e.read();
      if (b.length < need) fail(`storage entry ${name} has ${b.length} bytes but needs ${need}`);
      raw.set(ref.key, b);
    }
    return b;
  };
  const stateDict = new Map<string, NdArray>();
  for (const [k, t] of sd!) {
    stateDict.set(k as string, materialise(k as string, t as TensorRef, storageBytes, littleEndian, fail));
  }
  return { stateDict, meta };
}

function hasPrefix(entries: Map<string, unknown>, prefix: string): boolean {
  for (const k of entries.keys()) if (k.startsWith(prefix)) return true;
  return false;
}

function isTensorDict(d: PyDict): boolean {
  if (d.size === 0) return d.ordered; // an empty OrderedDict is an (empty) state dict
  for (const [k, v] of d) if (typeof k !== 'string' || !isTensorRef(v)) return false;
  return true;
}

function describe(x: unknown): string {
  if (isTensorRef(x)) return 'a single tensor';
  if (Array.isArray(x)) return 'a list or tuple';
  if (x === null) return 'None';
  return `a ${typeof x}`;
}

const SKIP = Symbol('skip');

function toPlain(v: unknown, depth: number): unknown {
  if (depth > 64) return SKIP;
  if (
    v === null ||
    typeof v === 'boolean' ||
    typeof v === 'number' ||
    typeof v === 'string' ||
    typeof v === 'bigint'
  )
    return v;
  if (v instanceof Uint8Array) return v;
  if (Array.isArray(v) || v instanceof Set) {
    const out: unknown[] = [];
    for (const x of v) {
      const p = toPlain(x, depth + 1);
      if (p === SKIP) return SKIP;
      out.push(p);
    }
    return out;
  }
  if (v instanceof PyDict) {
    const out: Record<string, unknown> = {};
    for (const [k, x] of v) {
      if (typeof k !== 'string' && typeof k !== 'number') return SKIP;
      const p = toPlain(x, depth + 1);
      if (p === SKIP) return SKIP;
      out[String(k)] = p;
    }
    return out;
  }
  if (typeof v === 'object' && (v as { kind?: unknown }).kind === 'device') {
    const d = v as { type: string; index: number | null };
    return d.index === null ? d.type : `${d.type}:${d.index}`;
  }
  return SKIP;
}

function materialise(
  key: string,
  t: TensorRef,
  storageBytes: (ref: StorageRef) => Uint8Array,
  littleEndian: boolean,
  fail: (msg: string) => never,
): NdArray {
  const where = `tensor ${JSON.stringify(key)}`;
  const ref = t.storage as StorageRef;
  if (typeof ref !== 'object' || ref === null || ref.kind !== 'storage-ref') fail(`${where} has no storage`);
  const dtype = ref.type.dtype;
  if (!dtype) fail(`${where} uses ${ref.type.name}, which is not supported`);
  const { shape, stride, storageOffset: offset } = t;
  if (shape.length !== stride.length) fail(`${where}: size and stride have different lengths`);
  if (shape.some((d) => d < 0) || stride.some((s) => s < 0) || offset < 0)
    fail(`${where}: negative size, stride or offset`);
  let count = 1;
  for (const d of shape) count *= d;
  if (!Number.isSafeInteger(count)) fail(`${where} is too large`);
  const size = ref.type.itemSize;
  const outDType: DType = dtype === 'bfloat16' ? 'float32' : dtype!;
  if (count === 0) return ndarrayFromBytes(outDType, [...shape], new Uint8Array(0), 0, 0, true);

  let last = offset; // highest element index the view touches
  for (let i = 0; i < shape.length; i++) last += (shape[i] - 1) * stride[i];
  if (!Number.isSafeInteger(last) || last >= ref.numel)
    fail(
      `${where} (size [${shape.join(', ')}], stride [${stride.join(', ')}], offset ${offset}) reaches element ${last} of a storage of ${ref.numel}`,
    );
  const src = storageBytes(ref);
  if ((last + 1) * size > src.length)
    fail(`${where}: storage data/${ref.key} is shorter than the tensor needs`);

  // contiguous in C order (dimensions of size 1 may have any stride)?
  let contiguous = true;
  let expect = 1;
  for (let i = shape.length - 1; i >= 0; i--) {
    if (shape[i] !== 1 && stride[i] !== expect) {
      contiguous = false;
      break;
    }
    expect *= shape[i];
  }
  let bytes: Uint8Array;
  let start: number;
  if (contiguous) {
    bytes = src;
    start = offset * size;
  } else {
    bytes = gather(src, offset, shape, stride, size, count);
    start = 0;
  }
  if (dtype === 'bfloat16')
    return {
      dtype: 'float32',
      shape: [...shape],
      data: bf16BytesToFloat32(bytes, start, count, littleEndian),
    };
  return ndarrayFromBytes(outDType, [...shape], bytes, start, count, littleEndian);
}

/** Copy the elements of a strided view, in C order, into a new contiguous byte array. */
function gather(
  src: Uint8Array,
  offset: number,
  shape: number[],
  stride: number[],
  size: number,
  count: number,
): Uint8Array {
  const out = new Uint8Array(count * size);
  const nd = shape.length;
  const idx = new Array<number>(nd).fill(0);
  let p = offset;
  for (let i = 0; i < count; i++) {
    const s = p * size;
    for (let b = 0; b < size; b++) out[i * size + b] = src[s + b];
    // increment the multi-index (last dimension fastest)
    for (let d = nd - 1; d >= 0; d--) {
      idx[d]++;
      p += stride[d];
      if (idx[d] < shape[d]) break;
      p -= stride[d] * shape[d];
      idx[d] = 0;
    }
  }
  return out;
}

export async function readPthFile(path: string): Promise<PthContents> {
  const b = await readFile(path);
  return readPth(new Uint8Array(b.buffer, b.byteOffset, b.byteLength), { file: path });
}

// ---------------------------------------------------------------------------------------------
// writer

const STORAGE_OF: Partial<Record<DType, string>> = {
  float64: 'DoubleStorage',
  float32: 'FloatStorage',
  float16: 'HalfStorage',
  int64: 'LongStorage',
  int32: 'IntStorage',
  int16: 'ShortStorage',
  int8: 'CharStorage',
  uint8: 'ByteStorage',
  bool: 'BoolStorage',
};

export interface WritePthOptions {
  /** The zip's top-level folder (default `archive`, as torch.save writes to a buffer). */
  archiveName?: string;
}

/**
 * What `torch.save({'model': stateDict, **meta})` writes: pickle protocol 2, one storage per tensor
 * (`data/0` ...), stored zip entries aligned to 64 bytes, `version` = `3\n` and `byteorder` =
 * `little`. `torch.load(f, weights_only=True)` reads it back.
 *
 * `meta` values: null, booleans, strings, bigints, numbers (integral numbers are written as
 * Python ints, others as floats; wrap a number in `PyFloat` to force a float), arrays (lists) and
 * plain objects / Maps (dicts). Note that PyTorch 1.13's weights-only loader rejects floats
 * (BINFLOAT); later versions accept them.
 *
 * Throws InputError for a malformed NdArray, a dtype PyTorch has no storage class for
 * (uint16/uint32/uint64), a `model` key in `meta` or a value that cannot be pickled.
 */
export function writePth(
  stateDict: Map<string, NdArray>,
  meta: Record<string, unknown> = {},
  options: WritePthOptions = {},
): Uint8Array {
  const archive = options.archiveName ?? 'archive';
  if (!/^[A-Za-z0-9_.-]+$/.test(archive))
    throw new InputError(`invalid archive name ${JSON.stringify(archive)}`);
  if (Object.prototype.hasOwnProperty.call(meta, 'model'))
    throw new InputError("meta cannot have a 'model' key");
  const arrays = [...stateDict];
  for (const [k, a] of arrays) {
    if (typeof k !== 'string') throw new InputError('state dict keys must be strings');
    checkNdArray(k, a);
    if (!STORAGE_OF[a.dtype]) throw new InputError(`${k}: PyTorch has no storage type for dtype ${a.dtype}`);
  }

  const w = new PickleWriter();
  w.op(0x7d); // EMPTY_DICT
  w.memoize();
  w.mark();
  w.string('model');
  w.global('collections', 'OrderedDict');
  w.op(0x29); // EMPTY_TUPLE
  w.op(0x52); // REDUCE
  w.memoize();
  for (let start = 0; start < arrays.length; start += 1000) {
    w.mark();
    arrays.slice(start, start + 1000).forEach(([k, a], j) => {
      const i = start + j;
      w.string(k);
      w.global('torch._utils', '_rebuild_tensor_v2');
      w.mark(); // (storage, offset, size, stride, requires_grad, backward_hooks)
      w.mark(); // persistent id ('storage', type, key, location, numel)
      w.string('storage', true);
      w.global('torch', STORAGE_OF[a.dtype]!);
      w.string(String(i));
      w.string('cpu', true);
      w.int(a.data.length);
      w.op(0x74); // TUPLE
      w.op(0x51); // BINPERSID
      w.int(0);
      w.intTuple(a.shape);
      w.intTuple(cStrides(a.shape));
      w.bool(false);
      w.global('collections', 'OrderedDict');
      w.op(0x29);
      w.op(0x52);
      w.op(0x74); // TUPLE
      w.op(0x52); // REDUCE
    });
    w.op(0x75); // SETITEMS
  }
  for (const [k, v] of Object.entries(meta)) {
    w.string(k);
    try {
      w.value(v);
    } catch (e) {
      if (e instanceof MedsamError) throw e;
      throw new InputError(`meta.${k}: ${(e as Error).message}`);
    }
  }
  w.op(0x75); // SETITEMS
  const pkl = w.finish();

  const enc = new TextEncoder();
  return writeZip([
    { name: `${archive}/data.pkl`, data: pkl, align: 64 },
    { name: `${archive}/byteorder`, data: enc.encode('little'), align: 64 },
    ...arrays.map(([, a], i) => ({ name: `${archive}/data/${i}`, data: ndarrayBytes(a), align: 64 })),
    { name: `${archive}/version`, data: enc.encode('3\n'), align: 64 },
  ]);
}

function cStrides(shape: readonly number[]): number[] {
  const s = new Array<number>(shape.length);
  let acc = 1;
  for (let i = shape.length - 1; i >= 0; i--) {
    s[i] = acc;
    acc *= shape[i];
  }
  return s;
}

/** `writePth` to a file, atomically (temporary file + rename). */
export async function writePthFile(
  path: string,
  stateDict: Map<string, NdArray>,
  meta: Record<string, unknown> = {},
  options: WritePthOptions = {},
): Promise<void> {
  await writeFileAtomic(path, writePth(stateDict, meta, options));
}
