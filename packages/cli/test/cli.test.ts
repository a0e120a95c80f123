import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { beforeAll, describe, expect, test } from 'vitest';
import { InputError, initBackend, nn, tf } from '@mcp-medsam/core';
import { readNpzFile, toFloat32, writeNpzFile, ndarray } from '@mcp-medsam/io';
import { McpMedsam, TINY, saveWeights } from '@mcp-medsam/model';
import { buildProgram } from '../src/main.js';
import { runForward } from '../src/commands/forward.js';
import { maxAbsDiff, randomArray } from '../../../test-utils/reference.js';

const dir = mkdtempSync(path.join(tmpdir(), 'mcp-medsam-cli-'));

beforeAll(async () => {
  process.env.MCP_MEDSAM_BACKEND = 'wasm';
  await initBackend({ backend: 'wasm', log: null });
});

test('--help lists every command', () => {
  const help = buildProgram().helpInformation();
  for (const c of ['demo', 'forward', 'evaluate', 'inspect', 'convert', 'train', 'train-step'])
    expect(help).toContain(c);
});

describe('forward', () => {
  const weights = path.join(dir, 'tiny.safetensors');
  const inputs = path.join(dir, 'inputs.npz');
  let model: McpMedsam;

  beforeAll(async () => {
    nn.setInitSeed(3);
    model = new McpMedsam(TINY).eval();
    await saveWeights(model, weights);
    await writeNpzFile(inputs, {
      image: ndarray('float32', [1, 3, 256, 256], randomArray(3 * 256 * 256, 1).map(Math.abs)),
      box256: ndarray('float32', [1, 1, 4], new Float32Array([20, 30, 140, 120])),
      clip_img: ndarray('float32', [1, 1, 512], randomArray(512, 2)),
      clip_txt: ndarray('float32', [1, 1, 512], randomArray(512, 3)),
      category_idx: ndarray('int64', [1], new BigInt64Array([4n])),
      crop64: ndarray('float32', [1, 3, 64, 64], randomArray(3 * 64 * 64, 4).map(Math.abs)),
    });
  });

  test('writes every output and tap, equal to the library call', async () => {
    const out = path.join(dir, 'out.npz');
    await runForward({ weights, inputs, output: out, preset: 'tiny' });
    const got = await readNpzFile(out);
    expect(Object.keys(got).sort()).toEqual(
      [
        'category_logits',
        'clip_vec',
        'dense',
        'dense_pe',
        'hs',
        'image_embedding',
        'img_vec',
        'iou',
        'keys',
        'low_res_logits',
        'sparse',
        'tap_layers_0',
        'tap_layers_1',
        'tap_layers_2',
        'tap_layers_3',
        'tap_patch_embed',
      ].sort(),
    );
    expect(got.low_res_logits.shape).toEqual([1, 1, 256, 256]);
    const arrays = await readNpzFile(inputs);
    const direct = tf.tidy(() =>
      model
        .forward({
          image: tf.tensor(toFloat32(arrays.image), arrays.image.shape),
          boxes: tf.tensor(toFloat32(arrays.box256), arrays.box256.shape),
          clipImage: tf.tensor(toFloat32(arrays.clip_img), arrays.clip_img.shape),
          clipText: tf.tensor(toFloat32(arrays.clip_txt), arrays.clip_txt.shape),
          categoryIdx: tf.tensor([4], [1], 'int32'),
          crops: tf.tensor(toFloat32(arrays.crop64), arrays.crop64.shape),
        })
        .low_res_logits.dataSync(),
    );
    expect(maxAbsDiff(toFloat32(got.low_res_logits), direct)).toBe(0);
  });

  test('a missing input array is an InputError naming the file and the array', async () => {
    const bad = path.join(dir, 'bad.npz');
    const arrays = await readNpzFile(inputs);
    delete arrays.crop64;
    await writeNpzFile(bad, arrays);
    const err = await runForward({
      weights,
      inputs: bad,
      output: path.join(dir, 'x.npz'),
      preset: 'tiny',
    }).catch((e) => e);
    expect(err).toBeInstanceOf(InputError);
    expect(err.message).toContain('bad.npz');
    expect(err.message).toContain("missing array 'crop64'");
  });

  test('a wrong input shape is an InputError naming the file', async () => {
    const bad = path.join(dir, 'badshape.npz');
    const arrays = await readNpzFile(inputs);
    arrays.crop64 = ndarray('float32', [1, 3, 32, 32]);
    await writeNpzFile(bad, arrays);
    const err = await runForward({
      weights,
      inputs: bad,
      output: path.join(dir, 'y.npz'),
      preset: 'tiny',
    }).catch((e) => e);
    expect(err).toBeInstanceOf(InputError);
    expect(err.message).toMatch(/badshape\.npz: crops must have shape \(1,3,64,64\), got \(1,3,32,32\)/);
  });
});
