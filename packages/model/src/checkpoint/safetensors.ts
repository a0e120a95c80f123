/**
 * safetensors reader and writer.
 *
 * Layout: an 8-byte little-endian header length N, N bytes of UTF-8 JSON (`{"name": {"dtype",
 * "shape", "data_offsets": [begin, end]}, ..., "__metadata__": {string: string}}`), then the raw
 * little-endian data; offsets are relative to the start of the data.
 *
 * dtypes: F64 F32 F16 BF16 I64 I32 I16 I8 U8 BOOL U16 U32 U64. `BF16` has no NdArray dtype, so it
 * is read as a `float32` NdArray holding the exact same values (bfloat16 is a truncated float32);
 * the writer therefore never writes BF16. F16 stays `float16` (raw half bit patterns).
 *
 * The reader is strict, like the reference implementation: the header must be a JSON object, every
 * entry's byte range must match its dtype and shape, and the ranges must tile the data section
 * exactly (no gaps, overlaps or bytes out of range); anything else is a FormatError.
 */
import { readFile } from 'node:fs/promises';
import type { DType, NdArray } from '@mcp-medsam/io';
import { writeFileAtomic } from '@mcp-medsam/io';
import { FormatError, InputError } from '@mcp-medsam/core';
import { bf16BytesToFloat32, checkNdArray, ndarrayBytes, ndarrayFromBytes, numelOf } from './common.js';

/** safetensors dtype codes and the NdArray dtype each is read into. */
const ST_TO_DTYPE: Readonly<Record<string, { dtype: DType; size: number; bf16?: true }>> = {
  F64: { dtype: 'float64', size: 8 },
  F32: { dtype: 'float32', size: 4 },
  F16: { dtype: 'float16', size: 2 },
  BF16: { dtype: 'float32', size: 2, bf16: true },
  I64: { dtype: 'int64', size: 8 },
  I32: { dtype: 'int32', size: 4 },
  I16: { dtype: 'int16', size: 2 },
  I8: { dtype: 'int8', size: 1 },
  U64: { dtype: 'uint64', size: 8 },
  U32: { dtype: 'uint32', size: 4 },
  U16: { dtype: 'uint16', size: 2 },
  U8: { dtype: 'uint8', size: 1 },
  BOOL: { dtype: 'bool', size: 1 },
};

const DTYPE_TO_ST: Readonly<Record<DType, string>> = {
  float64: 'F64',
  float32: 'F32',
  float16: 'F16',
  int64: 'I64',
  int32: 'I32',
  int16: 'I16',
  int8: 'I8',
  uint64: 'U64',
  uint32: 'U32',
  uint16: 'U16',
  uint8: 'U8',
  bool: 'BOOL',
};

/** Largest accepted JSON header (the reference implementation's limit). */
export const SAFETENSORS_MAX_HEADER_BYTES = 100_000_000;

export interface SafetensorsContents {
  /** The tensors, in the order of their data offsets (= header order for files written in order). */
  tensors: Map<string, NdArray>;
  /** `__metadata__` (string to string), `{}` when absent. */
  metadata: Record<string, string>;
  /** The safetensors dtype of each tensor as stored (e.g. `BF16` for a tensor read as float32). */
  storedDTypes: Map<string, string>;
}

export interface ReadSafetensorsOptions {
  /** File name for error messages. */
  file?: string;
}

/** Parse a safetensors file. Throws FormatError for anything malformed. */
export function readSafetensors(
  bytes: Uint8Array,
  options: ReadSafetensorsOptions = {},
): SafetensorsContents {
  const file = options.file;
  const fail = (msg: string): never => {
    throw new FormatError(`safetensors: ${msg}`, { file });
  };
  if (bytes.length < 8) fail(`file of ${bytes.length} bytes is too short for a header`);
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const n64 = dv.getBigUint64(0, true);
  if (n64 > BigInt(SAFETENSORS_MAX_HEADER_BYTES))
    fail(`header length ${n64} exceeds ${SAFETENSORS_MAX_HEADER_BYTES} bytes`);
  const n = Number(n64);
  if (8 + n > bytes.length)
    fail(`header length ${n} runs past the end of the ${bytes.length}-byte file (truncated?)`);
  if (n < 2) fail(`header length ${n} is too small`);
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(bytes.subarray(8, 8 + n));
  } catch {
    return fail('header is not valid UTF-8');
  }
  if (text[0] !== '{') fail('header does not start with "{"');
  let header: unknown;
  try {
    header = JSON.parse(text);
  } catch (e) {
    return fail(`header is not valid JSON (${(e as Error).message})`);
  }
  if (typeof header !== 'object' || header === null || Array.isArray(header))
    return fail('header is not a JSON object');

  const dataStart = 8 + n;
  const dataLen = bytes.length - dataStart;
  const metadata: Record<string, string> = {};
  interface Entry {
    name: string;
    st: string;
    shape: number[];
    begin: number;
    end: number;
    order: number;
  }
  const entries: Entry[] = [];
  let order = 0;
  for (const [name, raw] of Object.entries(header as Record<string, unknown>)) {
    if (name === '__metadata__') {
      if (typeof raw !== 'object' || raw === null || Array.isArray(raw))
        fail('__metadata__ is not an object');
      for (const [k, v] of Object.entries(raw as Record<string, unknown>)) {
        if (typeof v !== 'string') fail(`__metadata__.${k} is not a string`);
        metadata[k] = v as string;
      }
      continue;
    }
    const where = `tensor ${JSON.stringify(name)}`;
    if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) fail(`${where} is not an object`);
    const {
      dtype,
      shape,
      data_offsets: offs,
    } = raw as { dtype?: unknown; shape?: unknown; data_offsets?: unknown };
    if (typeof dtype !== 'string' || !Object.prototype.hasOwnProperty.call(ST_TO_DTYPE, dtype))
      fail(`${where} has unsupported dtype ${JSON.stringify(dtype)}`);
    if (!Array.isArray(shape) || shape.some((d) => !Number.isSafeInteger(d) || d < 0))
      fail(`${where} has an invalid shape ${JSON.stringify(shape)}`);
    if (!Array.isArray(offs) || offs.length !== 2 || offs.some((d) => !Number.isSafeInteger(d) || d < 0))
      fail(`${where} has invalid data_offsets ${JSON.stringify(offs)}`);
    const [begin, end] = offs as number[];
    const info = ST_TO_DTYPE[dtype as string];
    const count = numelOf(shape as number[]);
    if (!Number.isSafeInteger(count * info.size)) fail(`${where} is too large`);
    if (end < begin) fail(`${where} has data_offsets [${begin}, ${end}] that end before they begin`);
    if (end - begin !== count * info.size)
      fail(
        `${where}: data_offsets [${begin}, ${end}] hold ${end - begin} bytes but ${dtype} [${(shape as number[]).join(', ')}] needs ${count * info.size}`,
      );
    if (end > dataLen)
      fail(
        `${where}: data_offsets [${begin}, ${end}] run past the ${dataLen}-byte data section (truncated?)`,
      );
    entries.push({ name, st: dtype as string, shape: [...(shape as number[])], begin, end, order: order++ });
  }

  entries.sort((a, b) => a.begin - b.begin || a.end - b.end || a.order - b.order);
  let expected = 0;
  for (const e of entries) {
    if (e.begin < expected)
      fail(`tensor ${JSON.stringify(e.name)} overlaps the previous tensor (offset ${e.begin} < ${expected})`);
    if (e.begin > expected)
      fail(
        `gap in the data section before tensor ${JSON.stringify(e.name)} (offset ${e.begin}, expected ${expected})`,
      );
    expected = e.end;
  }
  if (expected !== dataLen) fail(`the tensors cover ${expected} bytes but the data section has ${dataLen}`);

  const tensors = new Map<string, NdArray>();
  const storedDTypes = new Map<string, string>();
  for (const e of entries) {
    const info = ST_TO_DTYPE[e.st];
    const count = numelOf(e.shape);
    const arr: NdArray = info.bf16
      ? {
          dtype: 'float32',
          shape: e.shape,
          data: bf16BytesToFloat32(bytes, dataStart + e.begin, count, true),
        }
      : ndarrayFromBytes(info.dtype, e.shape, bytes, dataStart + e.begin, count, true);
    tensors.set(e.name, arr);
    storedDTypes.set(e.name, e.st);
  }
  return { tensors, metadata, storedDTypes };
}

/**
 * Serialise tensors (in the Map's order, contiguous offsets from 0) with optional `__metadata__`
 * (written first). The header is padded with spaces to a multiple of 8 bytes. Throws InputError
 * for a malformed NdArray, a non-string metadata value or a tensor named `__metadata__`.
 */
export function writeSafetensors(
  tensors: Map<string, NdArray>,
  metadata?: Record<string, string>,
): Uint8Array {
  // The header is assembled by hand: a JS object would move integer-like names ("0", "12") first.
  const fields: string[] = [];
  if (metadata && Object.keys(metadata).length > 0) {
    for (const [k, v] of Object.entries(metadata)) {
      if (typeof v !== 'string') throw new InputError(`safetensors metadata ${k} is not a string`);
    }
    fields.push(`"__metadata__":${JSON.stringify(metadata)}`);
  }
  let offset = 0;
  const parts: Uint8Array[] = [];
  for (const [name, a] of tensors) {
    if (typeof name !== 'string') throw new InputError('tensor names must be strings');
    if (name === '__metadata__') throw new InputError('a tensor cannot be named __metadata__');
    checkNdArray(name, a);
    const b = ndarrayBytes(a);
    const entry = {
      dtype: DTYPE_TO_ST[a.dtype],
      shape: [...a.shape],
      data_offsets: [offset, offset + b.length],
    };
    fields.push(`${JSON.stringify(name)}:${JSON.stringify(entry)}`);
    offset += b.length;
    parts.push(b);
  }
  let json = new TextEncoder().encode(`{${fields.join(',')}}`);
  const padded = Math.ceil(json.length / 8) * 8;
  if (padded !== json.length) {
    const p = new Uint8Array(padded).fill(0x20);
    p.set(json);
    json = p;
  }
  const out = new Uint8Array(8 + json.length + offset);
  new DataView(out.buffer).setBigUint64(0, BigInt(json.length), true);
  out.set(json, 8);
  let o = 8 + json.length;
  for (const b of parts) {
    out.set(b, o);
    o += b.length;
  }
  return out;
}

export async function readSafetensorsFile(path: string): Promise<SafetensorsContents> {
  const bytes = await readFile(path);
  return readSafetensors(new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength), { file: path });
}

/** Write atomically (temporary file + rename). */
export async function writeSafetensorsFile(
  path: string,
  tensors: Map<string, NdArray>,
  metadata?: Record<string, string>,
): Promise<void> {
  await writeFileAtomic(path, writeSafetensors(tensors, metadata));
}

/** Exposed for tests and tools: bytes per element of each safetensors dtype. */
export function safetensorsDTypeSize(st: string): number | undefined {
  return Object.prototype.hasOwnProperty.call(ST_TO_DTYPE, st) ? ST_TO_DTYPE[st].size : undefined;
}
