// Prompt-extension inputs in the runtime: the manifest records them, the engines check them and
// pass them to the model (the onnx engine end to end: examples/custom-prompt).
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Embedding, FormatError, initBackend, InputError, nn, tf } from '@mcp-medsam/core';
import { DECODER_INPUTS } from '@mcp-medsam/exporter';
import {
  McpMedsam,
  PromptExtension,
  TINY,
  type ExtensionInputSpec,
  type PromptEncoder,
} from '@mcp-medsam/model';
import { checkExtraInputs, readManifest, TfjsEngine, type ManifestExtraInput } from '../src/index.js';

class Taps extends PromptExtension {
  readonly name = 'taps';
  readonly inputs: ExtensionInputSpec[] = [
    { name: 'tap_xy', dtype: 'float32', shape: ['B', 'K', 2] },
    { name: 'tap_w', dtype: 'float32', shape: ['B', 'K'] },
  ];
  readonly tok: Embedding;
  constructor(dim: number) {
    super();
    this.tok = this.child('tok', new Embedding(1, dim));
  }
  embed(x: Record<string, tf.Tensor>, enc: PromptEncoder): tf.Tensor {
    return tf.tidy(() =>
      tf.add(
        tf.mul(enc.pe_layer.encodeWithCoords(x.tap_xy, 256, 256), tf.expandDims(x.tap_w, -1)),
        this.tok.weight,
      ),
    );
  }
}

const SPECS: ManifestExtraInput[] = [
  { extension: 'taps', name: 'tap_xy', dtype: 'float32', shape: ['batch', 'K', 2] },
  { extension: 'taps', name: 'tap_w', dtype: 'float32', shape: ['batch', 'K'] },
];

const taps = (n: number, k: number) => ({
  tap_xy: { data: new Float32Array(n * k * 2).fill(100), shape: [n, k, 2] },
  tap_w: { data: new Float32Array(n * k).fill(1), shape: [n, k] },
});

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'mcp-medsam-extra-'));
});
afterAll(() => rm(dir, { recursive: true, force: true }));

describe('manifest', () => {
  const write = async (extra: object, inputs: string[]) => {
    const m = {
      format: 'mcp-medsam-onnx',
      version: 1,
      files: {
        image_encoder: { file: 'e.onnx' },
        prompt_decoder: { file: 'd.onnx', inputs: inputs.map((name) => ({ name })) },
      },
      preprocessing: { embedDim: 16, embeddingSize: 64, clipDim: 512 },
      ...extra,
    };
    await writeFile(path.join(dir, 'manifest.json'), JSON.stringify(m));
    return readManifest(dir);
  };
  const promptExtensions = [{ name: 'taps', inputs: SPECS.map(({ extension: _e, ...x }) => x) }];

  it('reads the extension inputs, and needs an entry for every extra graph input', async () => {
    const m = await write({ promptExtensions }, [...DECODER_INPUTS, 'tap_xy', 'tap_w']);
    expect(m.extraInputs).toEqual(SPECS);
    expect((await write({}, [...DECODER_INPUTS])).extraInputs).toEqual([]);
    await expect(write({}, [...DECODER_INPUTS, 'tap_xy'])).rejects.toThrow(/need promptExtensions entries/);
    await expect(write({ promptExtensions }, [...DECODER_INPUTS, 'tap_w', 'tap_xy'])).rejects.toThrow(
      FormatError,
    );
    const badShape = [{ name: 'taps', inputs: [{ name: 'tap_xy', dtype: 'float32', shape: [] }] }];
    await expect(write({ promptExtensions: badShape }, [...DECODER_INPUTS, 'tap_xy'])).rejects.toThrow(
      /tap_xy: shape/,
    );
  });
});

describe('checkExtraInputs', () => {
  it('accepts matching inputs and names the extension and input otherwise', () => {
    expect(() => checkExtraInputs(SPECS, taps(2, 3), 2)).not.toThrow();
    expect(() => checkExtraInputs([], undefined, 2)).not.toThrow();
    const bad: [Record<string, { data: Float32Array | Int32Array; shape: number[] }> | undefined, RegExp][] =
      [
        [undefined, /'taps', input 'tap_xy': missing/],
        [{ ...taps(2, 3), extra: taps(2, 3).tap_w }, /unknown prompt input 'extra'/],
        [{ ...taps(2, 3), tap_w: taps(2, 4).tap_w }, /'taps', input 'tap_w'.*K = 3 from 'tap_xy'/],
        [{ ...taps(2, 3), tap_w: taps(3, 3).tap_w }, /'taps', input 'tap_w'.*the batch is 2/],
        [{ ...taps(2, 3), tap_w: { data: new Int32Array(6), shape: [2, 3] } }, /'tap_w': must be float32/],
        [{ ...taps(2, 3), tap_w: { data: new Float32Array(5), shape: [2, 3] } }, /5 values do not fit/],
      ];
    for (const [extra, message] of bad) {
      expect(() => checkExtraInputs(SPECS, extra, 2)).toThrow(InputError);
      expect(() => checkExtraInputs(SPECS, extra, 2)).toThrow(message);
    }
    expect(() => checkExtraInputs([], taps(1, 1), 1)).toThrow(/the export has no prompt extensions/);
  });
});

describe('TfjsEngine', () => {
  it('passes the extension inputs to the model', async () => {
    await initBackend({ backend: 'wasm', log: null });
    nn.setInitSeed(2);
    const model = new McpMedsam(TINY, { promptExtensions: [(c) => new Taps(c.embedDim)] });
    const engine = new TfjsEngine(model);
    const n = 2;
    const emb = tf.randomNormal([1, 64, 64, TINY.embedDim], 0, 1, 'float32', 1);
    const prompts = {
      boxes: Float32Array.of(10, 20, 100, 120, 30, 30, 200, 210),
      clipImage: new Float32Array(n * 512).fill(0.1),
      clipText: new Float32Array(n * 512).fill(-0.1),
      categoryIdx: Int32Array.of(0, 2),
      crops: new Float32Array(n * 3 * 64 * 64).fill(0.5),
      extra: taps(n, 2),
    };
    const out = await engine.decode(emb.dataSync() as Float32Array, prompts, n);
    const ref = tf.tidy(() =>
      model
        .decode(emb, {
          boxes: tf.tensor2d(prompts.boxes, [n, 4]),
          clipImage: tf.tensor2d(prompts.clipImage, [n, 512]),
          clipText: tf.tensor2d(prompts.clipText, [n, 512]),
          categoryIdx: tf.tensor1d(prompts.categoryIdx, 'int32'),
          crops: tf.tensor4d(prompts.crops, [n, 3, 64, 64]),
          extra: {
            tap_xy: tf.tensor3d(prompts.extra.tap_xy.data, [n, 2, 2]),
            tap_w: tf.tensor2d(prompts.extra.tap_w.data, [n, 2]),
          },
        })
        .lowResLogits.dataSync(),
    );
    expect(Array.from(out.lowResLogits)).toEqual(Array.from(ref));
    await expect(
      engine.decode(emb.dataSync() as Float32Array, { ...prompts, extra: undefined }, n),
    ).rejects.toThrow(/prompt extension 'taps', input 'tap_xy': missing/);
    emb.dispose();
    await engine.close();
  });
});
