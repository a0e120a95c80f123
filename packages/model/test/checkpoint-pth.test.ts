/**
 * PyTorch .pth checkpoints: checkpoint-a.pth (deflated zip, spec §6), small files written by real
 * torch.save 1.13 (test/fixtures/torch-*.pth: views, strides, every storage dtype), round trips
 * through writePth, and the zip variants (stored, aligned or not, big-endian).
 */
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { beforeAll, describe, expect, test } from 'vitest';
import { readZip, writeZip, float32ToBfloat16, bfloat16ToFloat32 } from '@mcp-medsam/io';
import type { NdArray } from '@mcp-medsam/io';
import {
  readPth,
  readPthFile,
  writePth,
  writePthFile,
  readCheckpoint,
  readCheckpointFile,
  PyFloat,
} from '../src/checkpoint/index.js';
import { sharedPath } from '../../../test-utils/shared.js';

const CKPT = sharedPath('fixtures/model/checkpoint-a.pth');
const FIX = path.join(path.dirname(fileURLToPath(import.meta.url)), 'fixtures');

/** [key, shape] for every state_dict entry, in state_dict order (spec §6.2). */
function specEntries(): [string, number[]][] {
  const out: [string, number[]][] = [];
  const add = (k: string, s: number[]) => out.push([k, s]);
  const bn = (p: string, c: number) => {
    add(`${p}.weight`, [c]);
    add(`${p}.bias`, [c]);
    add(`${p}.running_mean`, [c]);
    add(`${p}.running_var`, [c]);
    add(`${p}.num_batches_tracked`, []);
  };
  const wb = (p: string, o: number, i: number) => {
    add(`${p}.weight`, [o, i]);
    add(`${p}.bias`, [o]);
  };
  const conv2dBN = (p: string, o: number, i: number, k: number) => {
    add(`${p}.c.weight`, [o, i, k, k]);
    bn(`${p}.bn`, o);
  };

  // image encoder
  const ie = 'image_encoder';
  conv2dBN(`${ie}.patch_embed.seq.0`, 32, 3, 1);
  conv2dBN(`${ie}.patch_embed.seq.2`, 64, 32, 1);
  for (const b of [0, 1]) {
    const p = `${ie}.layers.0.blocks.${b}`;
    conv2dBN(`${p}.conv1`, 256, 64, 1);
    conv2dBN(`${p}.conv2`, 256, 1, 3);
    conv2dBN(`${p}.conv3`, 64, 256, 1);
  }
  const downsample = (p: string, o: number, i: number) => {
    conv2dBN(`${p}.conv1`, o, i, 1);
    conv2dBN(`${p}.conv2`, o, 1, 3);
    conv2dBN(`${p}.conv3`, o, o, 1);
  };
  downsample(`${ie}.layers.0.downsample`, 128, 64);
  const stageDefs = [
    { s: 1, C: 128, heads: 4, ws2: 49, blocks: 2, down: 160 },
    { s: 2, C: 160, heads: 5, ws2: 196, blocks: 6, down: 320 },
    { s: 3, C: 320, heads: 10, ws2: 49, blocks: 2, down: 0 },
  ];
  for (const { s, C, heads, ws2, blocks, down } of stageDefs) {
    for (let b = 0; b < blocks; b++) {
      const p = `${ie}.layers.${s}.blocks.${b}`;
      add(`${p}.attn.attention_biases`, [heads, ws2]);
      add(`${p}.attn.norm.weight`, [C]);
      add(`${p}.attn.norm.bias`, [C]);
      wb(`${p}.attn.qkv`, 3 * C, C);
      wb(`${p}.attn.proj`, C, C);
      add(`${p}.mlp.norm.weight`, [C]);
      add(`${p}.mlp.norm.bias`, [C]);
      wb(`${p}.mlp.fc1`, 4 * C, C);
      wb(`${p}.mlp.fc2`, C, 4 * C);
      conv2dBN(`${p}.local_conv`, C, 1, 3);
    }
    if (down) downsample(`${ie}.layers.${s}.downsample`, down, C);
  }
  add(`${ie}.neck.0.weight`, [256, 320, 1, 1]);
  add(`${ie}.neck.1.weight`, [256]);
  add(`${ie}.neck.1.bias`, [256]);
  add(`${ie}.neck.2.weight`, [256, 256, 3, 3]);
  add(`${ie}.neck.3.weight`, [256]);
  add(`${ie}.neck.3.bias`, [256]);

  // mask decoder
  const md = 'mask_decoder';
  const attn = (p: string, inner: number) => {
    wb(`${p}.q_proj`, inner, 256);
    wb(`${p}.k_proj`, inner, 256);
    wb(`${p}.v_proj`, inner, 256);
    wb(`${p}.out_proj`, 256, inner);
  };
  const ln = (p: string, c: number) => {
    add(`${p}.weight`, [c]);
    add(`${p}.bias`, [c]);
  };
  for (const l of [0, 1]) {
    const p = `${md}.transformer.layers.${l}`;
    attn(`${p}.self_attn`, 256);
    ln(`${p}.norm1`, 256);
    attn(`${p}.cross_attn_token_to_image`, 128);
    ln(`${p}.norm2`, 256);
    wb(`${p}.mlp.lin1`, 2048, 256);
    wb(`${p}.mlp.lin2`, 256, 2048);
    ln(`${p}.norm3`, 256);
    ln(`${p}.norm4`, 256);
    attn(`${p}.cross_attn_image_to_token`, 128);
  }
  attn(`${md}.transformer.final_attn_token_to_image`, 128);
  ln(`${md}.transformer.norm_final_attn`, 256);
  add(`${md}.iou_token.weight`, [1, 256]);
  add(`${md}.mask_tokens.weight`, [4, 256]);
  // Spec §6.2 lists {convs,c_conv,m_conv} together, but the real attribute order interleaves them
  // with conv1 / w_lin / b_lin (checked against checkpoint-a.pth).
  const decBlock = (blk: string) => {
    add(`${md}.${blk}.conv1.weight`, [256, 256, 3, 3]);
    bn(`${md}.${blk}.batch_norm1`, 256);
    add(`${md}.${blk}.conv2.weight`, [256, 256, 3, 3]);
  };
  decBlock('convs');
  add(`${md}.conv1.weight`, [256, 512, 1, 1]);
  add(`${md}.conv1.bias`, [256]);
  decBlock('c_conv');
  wb(`${md}.w_lin`, 256, 256);
  wb(`${md}.b_lin`, 256, 256);
  decBlock('m_conv');
  add(`${md}.output_upscaling.0.weight`, [256, 64, 2, 2]);
  add(`${md}.output_upscaling.0.bias`, [64]);
  ln(`${md}.output_upscaling.1`, 64);
  add(`${md}.output_upscaling.3.weight`, [64, 32, 2, 2]);
  add(`${md}.output_upscaling.3.bias`, [32]);
  for (let i = 0; i < 4; i++) {
    const p = `${md}.output_hypernetworks_mlps.${i}.layers`;
    wb(`${p}.0`, 256, 256);
    wb(`${p}.1`, 256, 256);
    wb(`${p}.2`, 32, 256);
  }
  wb(`${md}.iou_prediction_head.layers.0`, 256, 256);
  wb(`${md}.iou_prediction_head.layers.1`, 256, 256);
  wb(`${md}.iou_prediction_head.layers.2`, 4, 256);
  wb(`${md}.category_prediction_head.fc1`, 64, 256);
  wb(`${md}.category_prediction_head.fc2`, 11, 64);

  // prompt encoder
  const pe = 'prompt_encoder';
  add(`${pe}.pe_layer.positional_encoding_gaussian_matrix`, [2, 128]);
  for (let i = 0; i < 4; i++) add(`${pe}.point_embeddings.${i}.weight`, [1, 256]);
  add(`${pe}.not_a_point_embed.weight`, [1, 256]);
  add(`${pe}.no_mask_embed.weight`, [1, 256]);
  add(`${pe}.crop_nets.conv.weight`, [256, 3, 3, 3]);
  add(`${pe}.crop_nets.conv.bias`, [256]);
  for (const k of [1, 2, 3]) {
    add(`${pe}.crop_nets.conv${k}.conv1.weight`, [256, 256, 3, 3]);
    bn(`${pe}.crop_nets.conv${k}.batch_norm1`, 256);
    add(`${pe}.crop_nets.conv${k}.conv2.weight`, [256, 256, 3, 3]);
    bn(`${pe}.crop_nets.conv${k}.batch_norm2`, 256);
  }
  add(`${pe}.crop_nets.conv4.weight`, [256, 256, 5, 5]);
  add(`${pe}.crop_nets.conv4.bias`, [256]);
  for (const m of ['clip_img_mlp', 'clip_text_mlp']) {
    wb(`${pe}.${m}.fc1`, 256, 512);
    wb(`${pe}.${m}.fc2`, 256, 256);
  }
  wb(`${pe}.mlps.fc1`, 512, 512);
  wb(`${pe}.mlps.fc2`, 256, 512);
  add(`${pe}.categories.weight`, [11, 256]);
  return out;
}

/** Whether a state_dict key is a buffer (not a parameter) in MCP-MedSAM. */
function isBuffer(key: string): boolean {
  return (
    /\.(running_mean|running_var|num_batches_tracked)$/.test(key) ||
    key === 'prompt_encoder.pe_layer.positional_encoding_gaussian_matrix'
  );
}

/** The raw bytes of an NdArray's data. */
function rawBytes(a: NdArray): Uint8Array {
  return new Uint8Array(a.data.buffer, a.data.byteOffset, a.data.byteLength);
}

/** Bit-exact equality of two NdArrays (dtype, shape, bytes). */
function bitEqual(a: NdArray, b: NdArray): boolean {
  if (a.dtype !== b.dtype || a.shape.length !== b.shape.length || a.shape.some((d, i) => d !== b.shape[i]))
    return false;
  const x = rawBytes(a);
  const y = rawBytes(b);
  return Buffer.from(x.buffer, x.byteOffset, x.byteLength).equals(
    Buffer.from(y.buffer, y.byteOffset, y.byteLength),
  );
}

function sha256(chunks: Iterable<Uint8Array>): string {
  const h = createHash('sha256');
  for (const c of chunks) h.update(c);
  return h.digest('hex');
}

function rezip(
  bytes: Uint8Array,
  edit: (name: string, data: Uint8Array) => Uint8Array | null = (_n, d) => d,
  opts: { compress?: boolean; align?: number; extra?: { name: string; data: Uint8Array }[] } = {},
): Uint8Array {
  const out: { name: string; data: Uint8Array; compress?: boolean; align?: number }[] = [];
  for (const [name, e] of readZip(bytes)) {
    const d = edit(name, e.read().slice());
    if (d) out.push({ name, data: d, compress: opts.compress ?? false, align: opts.align });
  }
  for (const x of opts.extra ?? []) out.push({ ...x, compress: false });
  return writeZip(out);
}

function expectSameStateDict(a: Map<string, NdArray>, b: Map<string, NdArray>) {
  expect([...a.keys()]).toEqual([...b.keys()]);
  for (const [k, x] of a) {
    if (!bitEqual(x, b.get(k)!)) throw new Error(`tensor ${k} differs`);
  }
}

describe('checkpoint-a.pth (deflated zip written by torch.save 1.13, spec §6)', () => {
  let bytes: Uint8Array;
  let sd: Map<string, NdArray>;
  let meta: Record<string, unknown>;
  beforeAll(async () => {
    bytes = new Uint8Array(readFileSync(CKPT));
    ({ stateDict: sd, meta } = await readPthFile(CKPT));
  });

  test('509 entries with exactly the keys, order and shapes of spec §6.2', () => {
    expect(sd.size).toBe(509);
    const keys = [...sd.keys()];
    expect(keys[0]).toBe('image_encoder.patch_embed.seq.0.c.weight');
    expect(keys[508]).toBe('prompt_encoder.categories.weight');
    const spec = specEntries();
    expect(spec).toHaveLength(509);
    expect(keys).toEqual(spec.map(([k]) => k));
    for (const [k, shape] of spec) expect(sd.get(k)!.shape, k).toEqual(shape);
  });

  test('shapes of selected entries', () => {
    const cases: [string, number[]][] = [
      ['image_encoder.patch_embed.seq.0.c.weight', [32, 3, 1, 1]],
      ['image_encoder.layers.0.blocks.1.conv2.c.weight', [256, 1, 3, 3]],
      ['image_encoder.layers.1.blocks.0.attn.attention_biases', [4, 49]],
      ['image_encoder.layers.2.blocks.5.attn.attention_biases', [5, 196]],
      ['image_encoder.layers.3.blocks.1.attn.qkv.weight', [960, 320]],
      ['image_encoder.layers.2.blocks.0.mlp.fc1.weight', [640, 160]],
      ['image_encoder.neck.2.weight', [256, 256, 3, 3]],
      ['mask_decoder.transformer.layers.1.cross_attn_image_to_token.out_proj.weight', [256, 128]],
      ['mask_decoder.output_upscaling.0.weight', [256, 64, 2, 2]],
      ['mask_decoder.output_upscaling.3.weight', [64, 32, 2, 2]],
      ['mask_decoder.conv1.weight', [256, 512, 1, 1]],
      ['mask_decoder.category_prediction_head.fc2.weight', [11, 64]],
      ['prompt_encoder.pe_layer.positional_encoding_gaussian_matrix', [2, 128]],
      ['prompt_encoder.crop_nets.conv4.weight', [256, 256, 5, 5]],
      ['prompt_encoder.mlps.fc1.weight', [512, 512]],
      ['mask_decoder.convs.batch_norm1.num_batches_tracked', []],
    ];
    for (const [k, s] of cases) expect(sd.get(k)?.shape, k).toEqual(s);
  });

  test('dtypes: float32 except 36 int64 num_batches_tracked scalars equal to 7', () => {
    const nbt = [...sd].filter(([k]) => k.endsWith('.num_batches_tracked'));
    expect(nbt).toHaveLength(36);
    for (const [k, a] of nbt) {
      expect(a.dtype, k).toBe('int64');
      expect(a.shape).toEqual([]);
      expect(a.data).toBeInstanceOf(BigInt64Array);
      expect([...(a.data as BigInt64Array)]).toEqual([7n]);
    }
    for (const [k, a] of sd) {
      if (k.endsWith('.num_batches_tracked')) continue;
      expect(a.dtype, k).toBe('float32');
      expect(a.data).toBeInstanceOf(Float32Array);
    }
  });

  test('19,586,051 parameter values in 400 parameters; 109 buffers', () => {
    let params = 0;
    let nParams = 0;
    let nBuffers = 0;
    for (const [k, a] of sd) {
      if (isBuffer(k)) nBuffers++;
      else {
        nParams++;
        params += a.data.length;
      }
    }
    expect(nParams).toBe(400);
    expect(nBuffers).toBe(109);
    expect(params).toBe(19_586_051);
  });

  test('values equal what PyTorch reads (sha256 and leading values computed with torch 1.13)', () => {
    // sha256 over every tensor's bytes in state_dict order, from torch.load(...)['model']
    expect(sha256([...sd.values()].map(rawBytes))).toBe(
      '07039ce1186882097be85ec82fa886b629540cb8e25581092c0d3f9de60313e7',
    );
    const cases: [string, string, number[], number][] = [
      [
        'image_encoder.patch_embed.seq.0.c.weight',
        'dfca763dc0ce38ea2926ba4db24da6e030d549a0775d1c2bbe69f71e8da2b72e',
        [-0.05098584666848183, 0.1974819451570511, 0.2373879849910736],
        -3.593784242402762,
      ],
      [
        'mask_decoder.iou_prediction_head.layers.2.bias',
        '06f6b587c0a725b74e36093e9759648b2700f6cfde1863872c380e56202cf9bb',
        [-0.09702984988689423, 0.16756518185138702, -0.06726785749197006],
        -0.0887007862329483,
      ],
      [
        'prompt_encoder.categories.weight',
        'f0faa9f79363d03145a62704afc6caa8c23760b05a4aa82d831a4bcff260d67d',
        [0.0905596986413002, 0.05772386118769646, 0.06573788076639175],
        1.3062337590090465,
      ],
      [
        'prompt_encoder.pe_layer.positional_encoding_gaussian_matrix',
        '103066fd21b95d49e6ed90683b79a6cef2765ff403e50b7557189d210f1a48ee',
        [-0.23232336342334747, -0.25311312079429626, -0.5304779410362244],
        10.015656545292586,
      ],
      [
        'image_encoder.layers.2.blocks.3.attn.attention_biases',
        'd468504cc70621fe9e5bb4138cc01eafb35782b5d83a553b8c110bfd533d8f86',
        [-0.05933701619505882, -0.007232217118144035, -0.007348968181759119],
        -1.2213268212217372,
      ],
    ];
    for (const [k, hash, first, sum] of cases) {
      const a = sd.get(k)!;
      expect(sha256([rawBytes(a)]), k).toBe(hash);
      expect([...(a.data as Float32Array).subarray(0, 3)]).toEqual(first);
      let s = 0;
      for (const v of a.data as Float32Array) s += v;
      expect(s).toBeCloseTo(sum, 9);
    }
  });

  test('meta holds the other top-level entries', () => {
    expect(meta).toEqual({ epoch: 0, loss: 1, best_loss: 1 });
  });

  test('the same archive re-zipped with stored entries (aligned or not) reads identically', () => {
    const raw = [...readZip(bytes)].map(([name, e]) => ({ name, data: e.read() }));
    for (const align of [64, undefined]) {
      const stored = writeZip(raw.map((e) => ({ ...e, align })));
      const entries = readZip(stored);
      expect([...entries.values()].every((e) => e.method === 'stored')).toBe(true);
      const r = readPth(stored);
      expectSameStateDict(r.stateDict, sd);
      expect(r.meta).toEqual(meta);
    }
  });

  test('writePth -> readPth is bit-exact, with torch.save layout (stored, 64-byte aligned, version 3)', () => {
    const out = writePth(sd, meta, { archiveName: 'checkpoint-a' });
    const entries = readZip(out);
    expect([...entries.keys()].slice(0, 3)).toEqual([
      'checkpoint-a/data.pkl',
      'checkpoint-a/byteorder',
      'checkpoint-a/data/0',
    ]);
    expect(entries.size).toBe(509 + 3);
    for (const e of entries.values()) {
      expect(e.method).toBe('stored');
      expect(e.dataOffset % 64, e.name).toBe(0);
    }
    expect(new TextDecoder().decode(entries.get('checkpoint-a/version')!.read())).toBe('3\n');
    expect(new TextDecoder().decode(entries.get('checkpoint-a/byteorder')!.read())).toBe('little');
    const back = readPth(out);
    expectSameStateDict(back.stateDict, sd);
    expect(back.meta).toEqual(meta);
    const c = readCheckpoint(out);
    expect(c.format).toBe('pth');
  });

  test('readCheckpointFile detects the format', async () => {
    const c = await readCheckpointFile(CKPT);
    expect(c.format).toBe('pth');
    expect(c.stateDict.size).toBe(509);
    expect(c.meta).toEqual({ epoch: 0, loss: 1, best_loss: 1 });
  });
});

describe('files written by real torch.save (PyTorch 1.13)', () => {
  const views = () => readPth(new Uint8Array(readFileSync(path.join(FIX, 'torch-views.pth'))));

  test('views sharing one storage, offsets, transposes, steps, expand (stride 0) and permute are materialised in C order', () => {
    const { stateDict: sd, meta } = views();
    expect(meta).toEqual({});
    expect([...sd.keys()]).toEqual([
      'base',
      't',
      'slice',
      'step',
      'row',
      'expanded',
      'scalar_i64',
      'big_i64',
      'f64',
      'f16',
      'bf16',
      'i32',
      'i16',
      'i8',
      'u8',
      'bool',
      'empty',
      'param',
      'perm',
    ]);
    const base = (i: number, j: number) => i * 6 + j; // arange(24).reshape(4, 6)
    const f32 = (k: string) => [...(sd.get(k)!.data as Float32Array)];
    expect(sd.get('base')!.shape).toEqual([4, 6]);
    expect(f32('base')).toEqual(Array.from({ length: 24 }, (_, i) => i));
    expect(sd.get('t')!.shape).toEqual([6, 4]);
    expect(f32('t')).toEqual(Array.from({ length: 24 }, (_, n) => base(n % 4, Math.floor(n / 4))));
    expect(sd.get('slice')!.shape).toEqual([2, 3]);
    expect(f32('slice')).toEqual([base(1, 2), base(1, 3), base(1, 4), base(2, 2), base(2, 3), base(2, 4)]);
    expect(sd.get('step')!.shape).toEqual([4, 3]);
    expect(f32('step')).toEqual([0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22]);
    expect(sd.get('row')!.shape).toEqual([6]);
    expect(f32('row')).toEqual([12, 13, 14, 15, 16, 17]);
    expect(sd.get('expanded')!.shape).toEqual([2, 3]);
    expect(f32('expanded')).toEqual([0, 1, 2, 0, 1, 2]);
    // permute(2, 0, 1) of arange(24, float64).reshape(2, 3, 4): out[k, i, j] = i*12 + j*4 + k
    const perm = sd.get('perm')!;
    expect(perm.dtype).toBe('float64');
    expect(perm.shape).toEqual([4, 2, 3]);
    const expPerm: number[] = [];
    for (let k = 0; k < 4; k++)
      for (let i = 0; i < 2; i++) for (let j = 0; j < 3; j++) expPerm.push(i * 12 + j * 4 + k);
    expect([...(perm.data as Float64Array)]).toEqual(expPerm);
    // views own their data: changing one does not change another
    (sd.get('t')!.data as Float32Array)[0] = 99;
    expect(f32('base')[0]).toBe(0);
  });

  test('every storage dtype, 0-d, empty and Parameter tensors', () => {
    const { stateDict: sd } = views();
    const get = (k: string) => sd.get(k)!;
    expect(get('scalar_i64')).toMatchObject({ dtype: 'int64', shape: [] });
    expect([...(get('scalar_i64').data as BigInt64Array)]).toEqual([7n]);
    expect([...(get('big_i64').data as BigInt64Array)]).toEqual([-(2n ** 62n), 2n ** 40n + 3n, -1n]);
    expect(get('f64').dtype).toBe('float64');
    expect([...(get('f64').data as Float64Array)]).toEqual([-1, -0.5, 0, 0.5, 1]);
    expect(get('f16').dtype).toBe('float16');
    // 1.5, -2.25, 65504 (max half), 6e-8 -> the smallest subnormal 2^-24
    expect([...(get('f16').data as Uint16Array)]).toEqual([0x3e00, 0xc080, 0x7bff, 0x0001]);
    // bfloat16 is read as float32 with the same value
    expect(get('bf16').dtype).toBe('float32');
    expect([...(get('bf16').data as Float32Array)]).toEqual([
      1,
      -3.140625,
      bfloat16ToFloat32(float32ToBfloat16(1e30)),
    ]);
    expect(get('i32')).toMatchObject({ dtype: 'int32', shape: [2, 2] });
    expect([...(get('i32').data as Int32Array)]).toEqual([-5, 6, 2 ** 31 - 1, -(2 ** 31)]);
    expect(get('i16').dtype).toBe('int16');
    expect([...(get('i16').data as Int16Array)]).toEqual([-300, 300]);
    expect(get('i8').dtype).toBe('int8');
    expect([...(get('i8').data as Int8Array)]).toEqual([-128, 127, 0]);
    expect(get('u8').dtype).toBe('uint8');
    expect([...(get('u8').data as Uint8Array)]).toEqual([250, 251, 252, 253, 254, 255]);
    expect(get('bool').dtype).toBe('bool');
    expect([...(get('bool').data as Uint8Array)]).toEqual([1, 0, 1]);
    expect(get('empty')).toMatchObject({ dtype: 'float32', shape: [0, 3] });
    expect(get('empty').data.length).toBe(0);
    expect(get('param')).toMatchObject({ dtype: 'float32', shape: [1, 2] });
    expect([...(get('param').data as Float32Array)]).toEqual([0.25, -0.5]);
  });

  test('a wrapped checkpoint: the state dict under "state_dict", plain values in meta, the optimizer left out', () => {
    const { stateDict, meta } = readPth(new Uint8Array(readFileSync(path.join(FIX, 'torch-wrapped.pth'))));
    expect([...stateDict.keys()]).toEqual(['w', 'b']);
    expect([...(stateDict.get('w')!.data as Float32Array)]).toEqual([1, 2]);
    expect(stateDict.get('b')).toMatchObject({ dtype: 'float32', shape: [] });
    expect([...(stateDict.get('b')!.data as Float32Array)]).toEqual([0.5]);
    expect(meta).toEqual({
      epoch: 3,
      note: 'hi',
      sizes: [1, 2, [3, 4]],
      flag: true,
      none: null,
      big: 2n ** 70n,
      lr: 0.5,
    });
  });

  test('a big-endian archive (byteorder "big") reads the same values', () => {
    const { stateDict } = views();
    stateDict.delete('bf16'); // (read as float32; writePth has no bfloat16)
    const le = writePth(stateDict);
    const arrays = [...stateDict.values()];
    const be = rezip(le, (name, data) => {
      if (name === 'archive/byteorder') return new TextEncoder().encode('big');
      const m = /^archive\/data\/(\d+)$/.exec(name);
      if (m) {
        const size = arrays[Number(m[1])].data.BYTES_PER_ELEMENT;
        for (let i = 0; i < data.length; i += size) data.subarray(i, i + size).reverse();
      }
      return data;
    });
    expectSameStateDict(readPth(be).stateDict, stateDict);
  });

  test('a bfloat16 storage in a big-endian archive', () => {
    // the torch-written file, with its storages byte-swapped and a byteorder record added
    const bytes = new Uint8Array(readFileSync(path.join(FIX, 'torch-views.pth')));
    const le = readPth(bytes).stateDict;
    // element size of each storage data/<key>, from the pickle (pickletools): 0 base (Float; t, slice,
    // step and row are views of it), 1 expanded, 2 scalar_i64, 3 big_i64, 4 f64, 5 f16, 6 bf16, 7 i32,
    // 8 i16, 9 i8, 10 u8, 11 bool, 12 empty, 13 param, 14 perm
    const elemSizes = [4, 4, 8, 8, 8, 2, 2, 4, 2, 1, 1, 1, 4, 4, 8];
    const be = rezip(
      bytes,
      (name, data) => {
        const m = /^torch-views\/data\/(\d+)$/.exec(name);
        if (m) {
          const size = elemSizes[Number(m[1])];
          for (let i = 0; i < data.length; i += size) data.subarray(i, i + size).reverse();
        }
        return data;
      },
      { extra: [{ name: 'torch-views/byteorder', data: new TextEncoder().encode('big') }] },
    );
    expectSameStateDict(readPth(be).stateDict, le);
  });

  test('writePth output of the torch-written tensors reads back bit-exactly; files are written atomically', async () => {
    const { stateDict } = views();
    const meta = {
      epoch: 12,
      lr: new PyFloat(1),
      name: 'run',
      tags: ['a', 'b'],
      nested: { x: [1, 2.5] },
      big: 2n ** 64n,
      none: null,
    };
    const dir = mkdtempSync(path.join(tmpdir(), 'ckpt-'));
    try {
      const f = path.join(dir, 'out.pth');
      await writePthFile(f, stateDict, meta);
      const back = await readPthFile(f);
      expectSameStateDict(back.stateDict, stateDict);
      expect(back.meta).toEqual({
        epoch: 12,
        lr: 1,
        name: 'run',
        tags: ['a', 'b'],
        nested: { x: [1, 2.5] },
        big: 2n ** 64n,
        none: null,
      });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
