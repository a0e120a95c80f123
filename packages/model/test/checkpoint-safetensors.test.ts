/**
 * safetensors: the small.safetensors fixture against checkpoint-a.pth, round trips for every
 * dtype, and malformed files.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import fc from 'fast-check';
import { beforeAll, describe, expect, test } from 'vitest';
import { FormatError, InputError } from '@mcp-medsam/core';
import { float32ToFloat16, float32ToBfloat16, bfloat16ToFloat32 } from '@mcp-medsam/io';
import type { DType, NdArray } from '@mcp-medsam/io';
import {
  readSafetensors,
  readSafetensorsFile,
  writeSafetensors,
  writeSafetensorsFile,
  readCheckpoint,
  readCheckpointFile,
  readPthFile,
} from '../src/checkpoint/index.js';
import { sharedPath } from '../../../test-utils/shared.js';

const SMALL = sharedPath('fixtures/model/small.safetensors');

function rawBytes(a: NdArray): Uint8Array {
  return new Uint8Array(a.data.buffer, a.data.byteOffset, a.data.byteLength);
}

function bitEqual(a: NdArray, b: NdArray): boolean {
  if (a.dtype !== b.dtype || a.shape.length !== b.shape.length || a.shape.some((d, i) => d !== b.shape[i]))
    return false;
  const x = rawBytes(a);
  const y = rawBytes(b);
  return Buffer.from(x.buffer, x.byteOffset, x.byteLength).equals(
    Buffer.from(y.buffer, y.byteOffset, y.byteLength),
  );
}

/** A safetensors file from a hand-written header object and data section. */
function craft(header: unknown, data: Uint8Array = new Uint8Array(0), headerText?: string): Uint8Array {
  const json = new TextEncoder().encode(headerText ?? JSON.stringify(header));
  const out = new Uint8Array(8 + json.length + data.length);
  new DataView(out.buffer).setBigUint64(0, BigInt(json.length), true);
  out.set(json, 8);
  out.set(data, 8 + json.length);
  return out;
}

describe('small.safetensors', () => {
  let ckpt: Map<string, NdArray>;
  beforeAll(async () => {
    ckpt = (await readPthFile(sharedPath('fixtures/model/checkpoint-a.pth'))).stateDict;
  });

  test('header: names in order, metadata, stored dtypes', () => {
    const { tensors, metadata, storedDTypes } = readSafetensors(new Uint8Array(readFileSync(SMALL)));
    expect([...tensors.keys()]).toEqual([
      'prompt_encoder.pe_layer.positional_encoding_gaussian_matrix',
      'prompt_encoder.categories.weight',
      'prompt_encoder.clip_img_mlp.fc1.bias',
      'mask_decoder.convs.batch_norm1.running_var',
      'mask_decoder.convs.batch_norm1.num_batches_tracked',
      'mask_decoder.iou_token.weight',
      'extra.f16',
      'extra.bf16',
      'extra.u8',
      'extra.bool',
    ]);
    expect(metadata.format).toBe('pt');
    expect(Object.keys(metadata)).toEqual(['format', 'note']);
    expect([...storedDTypes.values()]).toEqual([
      'F32',
      'F32',
      'F32',
      'F32',
      'I64',
      'F32',
      'F16',
      'BF16',
      'U8',
      'BOOL',
    ]);
  });

  test('its six checkpoint-a entries are bit-identical to the .pth', async () => {
    const { tensors } = await readSafetensorsFile(SMALL);
    const shared = [...tensors.keys()].filter((k) => !k.startsWith('extra.'));
    expect(shared).toHaveLength(6);
    for (const k of shared) expect(bitEqual(tensors.get(k)!, ckpt.get(k)!), k).toBe(true);
    expect([
      ...(tensors.get('mask_decoder.convs.batch_norm1.num_batches_tracked')!.data as BigInt64Array),
    ]).toEqual([7n]);
  });

  test('extra.* hold the conversions of prompt_encoder.categories.weight and simple ranges', () => {
    const { tensors } = readSafetensors(new Uint8Array(readFileSync(SMALL)));
    const cat = ckpt.get('prompt_encoder.categories.weight')!.data as Float32Array;
    const f16 = tensors.get('extra.f16')!;
    expect(f16).toMatchObject({ dtype: 'float16', shape: [11, 256] });
    const h = f16.data as Uint16Array;
    for (let i = 0; i < cat.length; i++) if (h[i] !== float32ToFloat16(cat[i])) throw new Error(`f16 ${i}`);
    // BF16 comes back as float32 values (round to nearest even of the float32 weights)
    const bf = tensors.get('extra.bf16')!;
    expect(bf).toMatchObject({ dtype: 'float32', shape: [11, 256] });
    const b = bf.data as Float32Array;
    let inexact = 0;
    for (let i = 0; i < cat.length; i++) {
      if (b[i] !== bfloat16ToFloat32(float32ToBfloat16(cat[i]))) throw new Error(`bf16 ${i}`);
      if (b[i] !== cat[i]) inexact++;
    }
    expect(inexact).toBeGreaterThan(2000); // really rounded, not a copy
    const u8 = tensors.get('extra.u8')!;
    expect(u8).toMatchObject({ dtype: 'uint8', shape: [10, 20] });
    expect([...(u8.data as Uint8Array)]).toEqual(Array.from({ length: 200 }, (_, i) => i));
    const bool = tensors.get('extra.bool')!;
    expect(bool).toMatchObject({ dtype: 'bool', shape: [3] });
    expect([...(bool.data as Uint8Array)]).toEqual([1, 0, 1]);
  });

  test('readCheckpoint picks safetensors from the content', async () => {
    const c = await readCheckpointFile(SMALL);
    expect(c.format).toBe('safetensors');
    expect(c.stateDict.size).toBe(10);
    expect(c.meta.format).toBe('pt');
  });

  test('checkpoint-a written as safetensors reads back equal, in order, with the documented layout', () => {
    const bytes = writeSafetensors(ckpt, { format: 'pt' });
    const n = Number(new DataView(bytes.buffer, bytes.byteOffset).getBigUint64(0, true));
    expect(n % 8).toBe(0);
    const header = JSON.parse(new TextDecoder().decode(bytes.subarray(8, 8 + n)));
    const keys = Object.keys(header);
    expect(keys[0]).toBe('__metadata__');
    expect(keys.slice(1)).toEqual([...ckpt.keys()]);
    expect(header['mask_decoder.convs.batch_norm1.num_batches_tracked']).toMatchObject({
      dtype: 'I64',
      shape: [],
    });
    expect(header['image_encoder.patch_embed.seq.0.c.weight']).toEqual({
      dtype: 'F32',
      shape: [32, 3, 1, 1],
      data_offsets: [0, 384],
    });
    const back = readCheckpoint(bytes);
    expect(back.format).toBe('safetensors');
    expect(back.meta).toEqual({ format: 'pt' });
    expect([...back.stateDict.keys()]).toEqual([...ckpt.keys()]);
    for (const [k, a] of ckpt) if (!bitEqual(a, back.stateDict.get(k)!)) throw new Error(k);
  });
});

describe('writeSafetensors / readSafetensors', () => {
  const allDTypes = (): Map<string, NdArray> => {
    const m = new Map<string, NdArray>();
    const add = (name: string, dtype: DType, shape: number[], data: NdArray['data']) =>
      m.set(name, { dtype, shape, data });
    add('f64', 'float64', [2, 3], new Float64Array([0, -0, 1e-310, Number.MAX_VALUE, -Infinity, NaN]));
    add('f32', 'float32', [3], new Float32Array([1.5, -2.5e-40, Infinity]));
    add('f16', 'float16', [2, 2], new Uint16Array([0x3c00, 0x8001, 0x7e01, 0xfc00]));
    add('i64', 'int64', [2], new BigInt64Array([-(2n ** 63n), 2n ** 63n - 1n]));
    add('i32', 'int32', [2], new Int32Array([-(2 ** 31), 2 ** 31 - 1]));
    add('i16', 'int16', [2], new Int16Array([-32768, 32767]));
    add('i8', 'int8', [2], new Int8Array([-128, 127]));
    add('u64', 'uint64', [1], new BigUint64Array([2n ** 64n - 1n]));
    add('u32', 'uint32', [1], new Uint32Array([2 ** 32 - 1]));
    add('u16', 'uint16', [1], new Uint16Array([65535]));
    add('u8', 'uint8', [1, 1, 2], new Uint8Array([0, 255]));
    add('bool', 'bool', [3], new Uint8Array([1, 0, 1]));
    add('scalar', 'float32', [], new Float32Array([42]));
    add('empty', 'int64', [0, 4], new BigInt64Array(0));
    add('10', 'float32', [1], new Float32Array([10])); // integer-like names keep their place
    add('2', 'float32', [1], new Float32Array([2]));
    return m;
  };

  test('bit-exact round trip of every dtype, 0-d and empty tensors, in insertion order', () => {
    const src = allDTypes();
    const bytes = writeSafetensors(src, { a: '1', b: 'two' });
    const { tensors, metadata, storedDTypes } = readSafetensors(bytes);
    expect(metadata).toEqual({ a: '1', b: 'two' });
    expect([...tensors.keys()]).toEqual([...src.keys()]);
    for (const [k, a] of src) expect(bitEqual(a, tensors.get(k)!), k).toBe(true);
    // the header text itself lists the entries in insertion order (integer-like names too)
    const n = Number(new DataView(bytes.buffer).getBigUint64(0, true));
    const text = new TextDecoder().decode(bytes.subarray(8, 8 + n));
    const positions = ['__metadata__', ...src.keys()].map((k) => text.indexOf(`${JSON.stringify(k)}:`));
    expect(positions.every((p, i) => p >= 0 && (i === 0 || p > positions[i - 1]))).toBe(true);
    expect(storedDTypes.get('u64')).toBe('U64');
    expect(storedDTypes.get('bool')).toBe('BOOL');
  });

  test('header padded with spaces to a multiple of 8; no __metadata__ when none given', () => {
    for (let len = 1; len <= 9; len++) {
      const m = new Map<string, NdArray>([
        ['x'.repeat(len), { dtype: 'uint8', shape: [1], data: new Uint8Array([len]) }],
      ]);
      const b = writeSafetensors(m);
      const n = Number(new DataView(b.buffer).getBigUint64(0, true));
      expect(n % 8).toBe(0);
      const text = new TextDecoder().decode(b.subarray(8, 8 + n));
      expect(text.trimEnd()).toBe(
        JSON.stringify({ ['x'.repeat(len)]: { dtype: 'U8', shape: [1], data_offsets: [0, 1] } }),
      );
      expect(/^[^ ]*} *$/.test(text)).toBe(true);
      expect(b.length).toBe(8 + n + 1);
    }
  });

  test('an unaligned input buffer is read correctly', () => {
    const b = writeSafetensors(allDTypes());
    const shifted = new Uint8Array(b.length + 3);
    shifted.set(b, 3);
    const r = readSafetensors(shifted.subarray(3));
    for (const [k, a] of allDTypes()) expect(bitEqual(a, r.tensors.get(k)!), k).toBe(true);
  });

  test('files are written atomically and read back', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'st-'));
    try {
      const f = path.join(dir, 'x.safetensors');
      await writeSafetensorsFile(f, allDTypes(), { k: 'v' });
      const r = await readSafetensorsFile(f);
      expect(r.metadata).toEqual({ k: 'v' });
      expect(r.tensors.size).toBe(16);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('writer input errors', () => {
    const bad = (m: Map<string, NdArray>, meta?: Record<string, string>) => () => writeSafetensors(m, meta);
    expect(bad(new Map([['x', { dtype: 'float32', shape: [2], data: new Float32Array(3) }]]))).toThrow(
      InputError,
    );
    expect(
      bad(new Map([['x', { dtype: 'float32', shape: [2], data: new Float64Array(2) as never }]])),
    ).toThrow(InputError);
    expect(bad(new Map([['__metadata__', { dtype: 'uint8', shape: [0], data: new Uint8Array(0) }]]))).toThrow(
      InputError,
    );
    expect(bad(new Map(), { a: 1 as never })).toThrow(InputError);
  });
});

describe('malformed safetensors -> FormatError', () => {
  const good = () =>
    writeSafetensors(
      new Map<string, NdArray>([
        ['a', { dtype: 'float32', shape: [2], data: new Float32Array([1, 2]) }],
        ['b', { dtype: 'int16', shape: [3], data: new Int16Array([1, 2, 3]) }],
      ]),
    );
  const expectFormat = (b: Uint8Array, re?: RegExp) => {
    let err: unknown;
    try {
      readSafetensors(b, { file: 'x.safetensors' });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(FormatError);
    expect((err as FormatError).code).toBe('E_FORMAT');
    expect((err as FormatError).file).toBe('x.safetensors');
    if (re) expect((err as Error).message).toMatch(re);
  };

  test('every truncation of a valid file', () => {
    const b = good();
    for (let cut = 0; cut < b.length; cut++) expectFormat(b.subarray(0, cut));
  });

  test('header length beyond the bound or the file', () => {
    const b = good();
    const huge = b.slice();
    new DataView(huge.buffer).setBigUint64(0, 2n ** 40n, true);
    expectFormat(huge, /exceeds/);
    const over = b.slice();
    new DataView(over.buffer).setBigUint64(0, BigInt(b.length), true);
    expectFormat(over, /past the end/);
  });

  test('bad header contents', () => {
    const f32 = new Uint8Array(8);
    expectFormat(craft(null, f32, '[1,2]'), /start with/);
    expectFormat(craft(null, f32, '{"a": '), /JSON/);
    expectFormat(craft({ a: { dtype: 'F8_E4M3', shape: [8], data_offsets: [0, 8] } }, f32), /dtype/);
    expectFormat(craft({ a: { dtype: 'F32', shape: [-2], data_offsets: [0, 8] } }, f32), /shape/);
    expectFormat(craft({ a: { dtype: 'F32', shape: [2], data_offsets: [0] } }, f32), /data_offsets/);
    expectFormat(craft({ a: { dtype: 'F32', shape: [3], data_offsets: [0, 8] } }, f32), /needs 12/);
    expectFormat(craft({ a: { dtype: 'F32', shape: [2], data_offsets: [8, 0] } }, f32), /end before/);
    expectFormat(
      craft({ __metadata__: { a: 1 }, a: { dtype: 'F32', shape: [2], data_offsets: [0, 8] } }, f32),
      /metadata/,
    );
    expectFormat(craft({ a: 5 }, f32), /not an object/);
  });

  test('offsets out of range, overlapping, with gaps or not covering the data', () => {
    const d = new Uint8Array(16);
    const t = (o: number[]) => ({ dtype: 'F32', shape: [2], data_offsets: o });
    expectFormat(craft({ a: t([12, 20]) }, d), /past/);
    expectFormat(craft({ a: t([0, 8]), b: t([4, 12]) }, d), /overlaps/);
    expectFormat(craft({ a: t([0, 8]), b: t([0, 8]) }, d), /overlaps/);
    expectFormat(craft({ a: t([0, 8]), b: { dtype: 'F32', shape: [1], data_offsets: [12, 16] } }, d), /gap/);
    expectFormat(craft({ a: t([0, 8]) }, d), /cover 8 bytes but the data section has 16/);
    // fine: out-of-order header, zero-size tensors anywhere
    const ok = readSafetensors(
      craft({ b: t([8, 16]), e: { dtype: 'F32', shape: [0], data_offsets: [8, 8] }, a: t([0, 8]) }, d),
    );
    expect([...ok.tensors.keys()]).toEqual(['a', 'e', 'b']);
  });

  test('random corruption of a valid file gives a FormatError or a valid result, nothing else', () => {
    const b = good();
    fc.assert(
      fc.property(fc.integer({ min: 0, max: b.length - 1 }), fc.integer({ min: 0, max: 255 }), (i, v) => {
        const c = b.slice();
        c[i] = v;
        try {
          const r = readSafetensors(c);
          expect(r.tensors.size).toBeGreaterThan(0);
        } catch (e) {
          expect(e).toBeInstanceOf(FormatError);
        }
      }),
      { numRuns: 500 },
    );
  });
});
