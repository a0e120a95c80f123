import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import {
  FormatError,
  InputError,
  StateDictError,
  UnsafeCheckpointError,
  initBackend,
  nn,
  tf,
} from '@mcp-medsam/core';
import { writeZip, readZip } from '@mcp-medsam/io';
import {
  MCP_MEDSAM,
  McpMedsam,
  TINY,
  loadStateDict,
  loadWeights,
  readCheckpointFile,
  saveWeights,
  stateDictArrays,
} from '@mcp-medsam/model';
import { sharedPath } from '../../../test-utils/shared.js';

const dir = mkdtempSync(path.join(tmpdir(), 'mcp-medsam-weights-'));

beforeAll(async () => {
  await initBackend({ backend: 'cpu', log: null });
});

function tinyModel(seed: number): McpMedsam {
  nn.setInitSeed(seed);
  return new McpMedsam(TINY);
}

function sameStateDicts(a: McpMedsam, b: McpMedsam): void {
  const sa = a.stateDict();
  const sb = b.stateDict();
  expect([...sb.keys()]).toEqual([...sa.keys()]);
  for (const [k, v] of sa)
    expect(Buffer.from((sb.get(k)!.data as Float32Array).buffer)).toEqual(
      Buffer.from((v.data as Float32Array).buffer),
    );
}

test('the tiny preset has the module tree and key names of the paper model, and 81,551 parameters', () => {
  nn.setInitSeed(0);
  const tiny = new McpMedsam(TINY);
  const full = new McpMedsam(MCP_MEDSAM);
  try {
    // fewer blocks per stage and transformer layers, so a subset of the keys; the same kinds
    const tinyKeys = [...tiny.stateDict().keys()];
    const fullKeys = [...full.stateDict().keys()];
    expect(fullKeys).toEqual(expect.arrayContaining(tinyKeys));
    const kinds = (keys: string[]) => [
      ...new Set(keys.map((k) => k.replace(/\.(blocks|layers)\.\d+(?=\.)/g, '.$1.*'))),
    ];
    expect(kinds(tinyKeys)).toEqual(kinds(fullKeys));
    expect(tiny.numParameters()).toBe(81_551);
  } finally {
    tiny.dispose();
    full.dispose();
  }
});

describe('saving and loading', () => {
  test.each(['pth', 'safetensors'] as const)('save -> load through a .%s file is lossless', async (ext) => {
    const a = tinyModel(1);
    const b = tinyModel(2);
    // make the BatchNorm counters and running stats differ from their initial values
    a.image_encoder.patch_embed.seq0.bn.setBuffer('num_batches_tracked', tf.scalar(42, 'int32'));
    const file = path.join(dir, `tiny.${ext}`);
    await saveWeights(a, file);
    const r = await loadWeights(b, file);
    expect(r.kind).toBe('full');
    expect(r.format).toBe(ext);
    sameStateDicts(a, b);
    expect(b.image_encoder.patch_embed.seq0.bn.getBuffer('num_batches_tracked').dataSync()[0]).toBe(42);
    a.dispose();
    b.dispose();
  });

  test('a bare TinyViT state dict loads into the image encoder only', async () => {
    const a = tinyModel(3);
    const b = tinyModel(4);
    const encoderOnly = new Map(
      [...stateDictArrays(a)]
        .filter(([k]) => k.startsWith('image_encoder.'))
        .map(([k, v]) => [k.slice('image_encoder.'.length), v]),
    );
    const r = loadStateDict(b, encoderOnly);
    expect(r.kind).toBe('image_encoder');
    const enc = (m: McpMedsam) => m.image_encoder.stateDict();
    for (const [k, v] of enc(a))
      expect(Array.from(enc(b).get(k)!.data as Float32Array)).toEqual(Array.from(v.data as Float32Array));
    // the rest of the model is untouched
    expect(Array.from(b.mask_decoder.iou_token.weight.dataSync())).not.toEqual(
      Array.from(a.mask_decoder.iou_token.weight.dataSync()),
    );
    a.dispose();
    b.dispose();
  });

  test('checkpoint-a has the wrong shapes for the tiny preset: every mismatch is listed', async () => {
    const m = tinyModel(5);
    const err = await loadWeights(m, sharedPath('fixtures/model/checkpoint-a.pth')).catch((e) => e);
    expect(err).toBeInstanceOf(StateDictError);
    expect(err.mismatched.length).toBeGreaterThan(100);
    expect(err.mismatched[0]).toEqual({
      key: 'image_encoder.patch_embed.seq.0.c.weight',
      expected: [2, 3, 1, 1],
      got: [32, 3, 1, 1],
    });
    expect(err.message).toContain('checkpoint-a.pth: state dict does not match the model');
    m.dispose();
  });

  test('missing and extra keys are named', async () => {
    const m = tinyModel(6);
    const sd = stateDictArrays(m);
    sd.delete('prompt_encoder.categories.weight');
    sd.set('mask_decoder.not_a_layer.weight', { dtype: 'float32', shape: [1], data: new Float32Array(1) });
    const err = (() => {
      try {
        loadStateDict(m, sd, { file: 'x.pth' });
      } catch (e) {
        return e as StateDictError;
      }
    })();
    expect(err).toBeInstanceOf(StateDictError);
    expect(err!.missing).toEqual(['prompt_encoder.categories.weight']);
    expect(err!.unexpected).toEqual(['mask_decoder.not_a_layer.weight']);
    m.dispose();
  });
});

describe('bad checkpoint files', () => {
  let bytes: Uint8Array;
  beforeAll(() => {
    bytes = new Uint8Array(readFileSync(sharedPath('fixtures/model/checkpoint-a.pth')));
  });

  test('a truncated .pth is a FormatError naming the file', async () => {
    const file = path.join(dir, 'truncated.pth');
    writeFileSync(file, bytes.subarray(0, Math.floor(bytes.length * 0.6)));
    const err = await readCheckpointFile(file).catch((e) => e);
    expect(err).toBeInstanceOf(FormatError);
    expect(err.message).toContain('truncated.pth');
  });

  test('a corrupted storage entry is a FormatError', async () => {
    const entries = readZip(bytes);
    const rebuilt = [...entries.values()].map((e) => {
      const data = new Uint8Array(e.read());
      if (e.name.endsWith('/data/3')) data.set([1, 2, 3], 0);
      return { name: e.name, data, compress: e.name.endsWith('/data/3') };
    });
    // the zip writer recomputes the CRC, so corrupt the compressed payload instead
    const z = writeZip(rebuilt);
    const entry = readZip(z).get('checkpoint-a/data/3')!;
    const bad = new Uint8Array(z);
    for (let i = 0; i < 8; i++) bad[entry.dataOffset + 4 + i] ^= 0xff;
    const file = path.join(dir, 'corrupt.pth');
    writeFileSync(file, bad);
    const m = tinyModel(7);
    const err = await loadWeights(m, file).catch((e) => e);
    expect(err).toBeInstanceOf(FormatError);
    expect(err.message).toContain('corrupt.pth');
    m.dispose();
  });

  test('a pickle with a foreign global is refused and the global named', async () => {
    const entries = readZip(bytes);
    // GLOBAL 'os system', MARK? keep it minimal: protocol 2, GLOBAL, STOP
    const evil = new Uint8Array([0x80, 0x02, ...Buffer.from('cos\nsystem\n'), 0x2e]);
    const rebuilt = [...entries.values()].map((e) => ({
      name: e.name,
      data: e.name.endsWith('data.pkl') ? evil : e.read(),
    }));
    const file = path.join(dir, 'evil.pth');
    writeFileSync(file, writeZip(rebuilt));
    const err = await readCheckpointFile(file).catch((e) => e);
    expect(err).toBeInstanceOf(UnsafeCheckpointError);
    expect(err.message).toContain('os.system');
    expect(err.message).toContain('evil.pth');
  });
});

describe('input validation', () => {
  let m: McpMedsam;
  beforeAll(() => {
    m = tinyModel(8).eval();
  });
  afterAll(() => m.dispose());

  const good = () => ({
    image: tf.zeros([1, 3, 256, 256]),
    boxes: tf.tensor([[10, 10, 50, 60]]),
    clipImage: tf.zeros([1, 1, 512]),
    clipText: tf.zeros([1, 1, 512]),
    categoryIdx: tf.tensor([2], [1], 'int32'),
    crops: tf.zeros([1, 3, 64, 64]),
  });

  test.each([
    [
      'image',
      () => ({ image: tf.zeros([1, 3, 128, 128]) }),
      /image must have shape \(B,3,256,256\), got \(1,3,128,128\)/,
    ],
    ['image NaN', () => ({ image: tf.fill([1, 3, 256, 256], NaN) }), /image contains NaN/],
    ['boxes', () => ({ boxes: tf.tensor([[1, 2, 3]]) }), /boxes must hold 4 values per sample, got \(1,3\)/],
    [
      'inverted box',
      () => ({ boxes: tf.tensor([[50, 10, 10, 60]]) }),
      /box 0 \[50, 10, 10, 60\] is inverted/,
    ],
    ['boxes NaN', () => ({ boxes: tf.tensor([[NaN, 10, 20, 60]]) }), /boxes contains NaN/],
    [
      'clip features',
      () => ({ clipImage: tf.zeros([1, 256]) }),
      /clip image features must have shape \(1,512\), got \(1,256\)/,
    ],
    [
      'category',
      () => ({ categoryIdx: tf.tensor([11], [1], 'int32') }),
      /category_idx 11 is out of range \[0, 10\]/,
    ],
    [
      'crops',
      () => ({ crops: tf.zeros([1, 3, 32, 32]) }),
      /crops must have shape \(1,3,64,64\), got \(1,3,32,32\)/,
    ],
  ])('%s', (_name, patch, message) => {
    const inputs = { ...good(), ...patch() };
    expect(() => m.forward(inputs)).toThrow(InputError);
    expect(() => m.forward(inputs)).toThrow(message);
  });
});
