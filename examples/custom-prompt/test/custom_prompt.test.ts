// The point prompt of this example, through the prompt extension interface: weights, base-model
// invariance, effect on the logits, gradients, training, the script end to end (train, export,
// onnxruntime against tfjs) and input errors.
import { readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { initBackend, InputError, nn, Rng, StateDictError, tf } from '@mcp-medsam/core';
import { buildTrainingSample, readNpzFile, type NdArray, type TrainingSample } from '@mcp-medsam/io';
import { McpMedsam, TINY, loadWeights, saveWeights, type PromptInputs } from '@mcp-medsam/model';
import { AdamW, batchFromSamples, disposeBatch, trainStep } from '@mcp-medsam/trainer';
import { OnnxEngine, TfjsEngine, type DecodePrompts } from '@mcp-medsam/runtime';
import { writeSyntheticCases } from '../cases.mjs';
import { examplePoints, pointPrompt, run, standinClip } from '../main.mjs';
import { PointPrompt, pointArrays, pointTensors } from '../point_prompt.mjs';

const EXT_KEYS = ['pos_embed', 'neg_embed', 'pad_embed'].map(
  (k) => `prompt_encoder.extensions.points.${k}.weight`,
);

let tmp: string;
let samples: TrainingSample[];
const clip = standinClip();

beforeAll(async () => {
  await initBackend({ backend: 'wasm', log: null });
  tmp = await mkdtemp(path.join(tmpdir(), 'custom-prompt-'));
  const files = await writeSyntheticCases(path.join(tmp, 'cases'), { count: 2, seed: 3 });
  samples = await Promise.all(
    files.map(async (f, i) => {
      const arrays = (await readNpzFile(f)) as { imgs: NdArray; gts: NdArray };
      return buildTrainingSample(arrays, path.basename(f), new Rng(10 + i));
    }),
  );
});

afterAll(async () => {
  if (tmp) await rm(tmp, { recursive: true, force: true });
});

const maxAbsDiff = (a: ArrayLike<number>, b: ArrayLike<number>) => {
  expect(a.length).toBe(b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
};

/** Prompt tensors of the first `n` samples, with `rows` of points. */
async function prompts(n: number, rows: number[][][]): Promise<PromptInputs> {
  const s = samples.slice(0, n);
  const cat = (f: (x: TrainingSample) => ArrayLike<number>) => s.flatMap((x) => Array.from(f(x)));
  const clipImage = new Float32Array(n * 512);
  for (let i = 0; i < n; i++) clipImage.set(await clip.vision.embed(s[i].crop224!, 1), i * 512);
  return {
    boxes: tf.tensor2d(
      cat((x) => x.box),
      [n, 4],
    ),
    clipImage: tf.tensor2d(clipImage, [n, 512]),
    clipText: tf.tensor2d(
      cat((x) => clip.text.get(x.text)),
      [n, 512],
    ),
    categoryIdx: tf.tensor1d(
      cat((x) => [x.categoryIdx]),
      'int32',
    ),
    crops: tf.tensor4d(
      cat((x) => x.crop64),
      [n, 3, 64, 64],
    ),
    extra: pointTensors(rows),
  };
}

function images(n: number): tf.Tensor4D {
  return tf.tensor4d(
    samples.slice(0, n).flatMap((s) => Array.from(s.image)),
    [n, 3, 256, 256],
  );
}

function disposePrompts(p: PromptInputs): void {
  const { extra, ...base } = p;
  tf.dispose(Object.values(base));
  if (extra) tf.dispose(Object.values(extra));
}

describe('the point prompt as a prompt extension', () => {
  it('keeps its weights under prompt_encoder.extensions.points.* and round-trips them', async () => {
    nn.setInitSeed(11);
    const model = new McpMedsam(TINY, { promptExtensions: [pointPrompt] });
    const base = new McpMedsam(TINY);
    const keys = [...model.stateDict().keys()];
    const baseKeys = [...base.stateDict().keys()];
    expect(keys.slice(0, baseKeys.length)).toEqual(baseKeys);
    expect(keys.slice(baseKeys.length)).toEqual(EXT_KEYS);
    expect(model.promptExtensions.map((e) => e.name)).toEqual(['points']);

    for (const file of ['w.safetensors', 'w.pth'].map((f) => path.join(tmp, f))) {
      await saveWeights(model, file);
      nn.setInitSeed(12);
      const back = new McpMedsam(TINY, { promptExtensions: [pointPrompt] });
      await loadWeights(back, file);
      const a = model.stateDict();
      for (const [k, t] of back.stateDict()) expect(t.data, k).toEqual(a.get(k)!.data);
      back.dispose();
    }
    // A base checkpoint lacks the extension's keys: strict loading names them, non-strict leaves them.
    const baseFile = path.join(tmp, 'base.safetensors');
    await saveWeights(base, baseFile);
    const err = await loadWeights(model, baseFile).catch((e) => e);
    expect(err).toBeInstanceOf(StateDictError);
    expect((err as StateDictError).missing).toEqual(EXT_KEYS);
    const r = await loadWeights(model, baseFile, { strict: false });
    expect(r.missing).toEqual(EXT_KEYS);
    model.dispose();
    base.dispose();
  });

  it('leaves the base model as it is: same initial weights, and the same outputs without extensions', () => {
    const build = (promptExtensions?: (typeof pointPrompt)[]) => {
      nn.setInitSeed(5);
      return promptExtensions ? new McpMedsam(TINY, { promptExtensions }) : new McpMedsam(TINY);
    };
    const plain = build();
    const none = build([]);
    const withPoints = build([pointPrompt]);
    const sd = plain.stateDict();
    for (const other of [none, withPoints]) {
      const o = other.stateDict();
      for (const [k, t] of sd) expect(o.get(k)!.data, k).toEqual(t.data);
    }
    expect([...none.stateDict().keys()]).toEqual([...sd.keys()]);

    const image = images(2);
    const inputs = tf.tidy(() => ({
      image,
      boxes: tf.tensor2d([30, 40, 150, 200, 10, 10, 90, 60], [2, 4]),
      clipImage: tf.randomNormal([2, 512], 0, 1, 'float32', 1),
      clipText: tf.randomNormal([2, 512], 0, 1, 'float32', 2),
      categoryIdx: tf.tensor1d([0, 3], 'int32'),
      crops: tf.randomUniform([2, 3, 64, 64], 0, 1, 'float32', 3),
    }));
    for (const mode of ['eval', 'train'] as const) {
      const a = plain[mode]().forward(inputs);
      const b = none[mode]().forward(inputs);
      for (const [k, t] of Object.entries(a))
        expect(Array.from((b as unknown as Record<string, tf.Tensor>)[k].dataSync()), `${mode} ${k}`).toEqual(
          Array.from(t.dataSync()),
        );
      tf.dispose([...Object.values(a), ...Object.values(b)]);
    }
    tf.dispose(Object.values(inputs));
    for (const m of [plain, none, withPoints]) m.dispose();
  });

  it('changes the logits with a positive point inside the target rather than outside', async () => {
    nn.setInitSeed(21);
    const model = new McpMedsam(TINY, { promptExtensions: [pointPrompt] }).eval();
    const { pos } = examplePoints(samples[0]);
    let outside = [0, 0];
    for (let i = 0; i < 65536; i++)
      if (!samples[0].gt2D[i]) {
        outside = [i % 256, Math.floor(i / 256)];
        break;
      }
    const emb = tf.tidy(() => model.encodeImage(images(1)));
    const logits = async (rows: number[][][]) => {
      const p = await prompts(1, rows);
      const d = model.decode(emb, p);
      const v = d.lowResLogits.dataSync().slice();
      disposePrompts(p);
      tf.dispose(Object.values(d));
      return v;
    };
    const inside = await logits([[[...pos, 1]]]);
    const out = await logits([[[...outside, 1]]]);
    const none = await logits([[[0, 0, -1]]]);
    expect(maxAbsDiff(inside, out)).toBeGreaterThan(1e-3);
    expect(maxAbsDiff(inside, none)).toBeGreaterThan(1e-3);
    // a padding point's coordinates do not matter
    expect(maxAbsDiff(none, await logits([[[200, 17, -1]]]))).toBe(0);
    emb.dispose();
    model.dispose();
  });

  it('gives its parameters non-zero gradients that match finite differences', async () => {
    nn.setInitSeed(31);
    const model = new McpMedsam(TINY, { promptExtensions: [pointPrompt] }).train();
    const ext = model.promptExtensions[0] as PointPrompt;
    const params = [ext.pos_embed.weight, ext.neg_embed.weight, ext.pad_embed.weight];
    const emb = tf.tidy(() => tf.randomNormal([2, 64, 64, TINY.embedDim], 0, 1, 'float32', 4));
    const { pos } = examplePoints(samples[0]);
    const p = await prompts(2, [
      [
        [...pos, 1],
        [20, 30, 0],
      ],
      [
        [120, 100, 1],
        [0, 0, -1],
      ],
    ]);
    const weight = tf.randomNormal([2, 1, 256, 256], 0, 1, 'float32', 5);
    const loss = () =>
      tf.tidy(() => {
        const d = model.decode(emb, p);
        return tf.add(tf.mean(tf.mul(d.lowResLogits, weight)), tf.mean(tf.square(d.iou))) as tf.Scalar;
      });
    const { value, grads } = tf.variableGrads(loss, params);
    value.dispose();
    const h = 1e-2;
    for (const v of params) {
      const g = grads[v.name].dataSync();
      const scale = Math.max(...Array.from(g, Math.abs));
      expect(scale, v.name).toBeGreaterThan(1e-6);
      for (const i of [0, 5, TINY.embedDim - 1]) {
        const at = (delta: number) => {
          const data = v.dataSync().slice();
          data[i] += delta;
          v.assign(tf.tensor(data, v.shape));
          const l = loss();
          const r = l.dataSync()[0];
          l.dispose();
          data[i] -= delta;
          v.assign(tf.tensor(data, v.shape));
          return r;
        };
        const fd = (at(h) - at(-h)) / (2 * h);
        expect(Math.abs(fd - g[i]), `${v.name}[${i}]: fd ${fd} grad ${g[i]}`).toBeLessThan(0.01 * scale);
      }
    }
    tf.dispose([emb, weight, ...Object.values(grads)]);
    disposePrompts(p);
    model.dispose();
  });

  it('trains: the batch builder draws points from the samples, and a few steps lower the loss', () => {
    nn.setInitSeed(41);
    const model = new McpMedsam(TINY, { promptExtensions: [pointPrompt] }).train();
    const clipImage = new Float32Array(2 * 512).fill(0.1);
    const clipText = new Float32Array(2 * 512).fill(-0.1);
    const sampling = (seed: number) => ({ extensions: model.promptExtensions, rng: new Rng(seed) });
    const batch = batchFromSamples(samples, clipImage, clipText, sampling(1));
    const again = batchFromSamples(samples, clipImage, clipText, sampling(1));
    expect(batch.extra!.point_coords.shape).toEqual([2, 4, 2]);
    expect(batch.extra!.point_labels.shape).toEqual([2, 4]);
    expect(Array.from(again.extra!.point_coords.dataSync())).toEqual(
      Array.from(batch.extra!.point_coords.dataSync()),
    );
    // every positive point lies on the target, every negative one off it
    const coords = batch.extra!.point_coords.dataSync();
    const labels = batch.extra!.point_labels.dataSync();
    labels.forEach((l, k) => {
      if (l < 0) return;
      const i = Math.floor(k / 4);
      const [x, y] = [coords[2 * k], coords[2 * k + 1]];
      expect(samples[i].gt2D[y * 256 + x]).toBe(l);
    });
    disposeBatch(again);

    const optimizer = new AdamW(model.namedParameters(), { lr: 2e-3 });
    const losses: number[] = [];
    for (let s = 0; s < 5; s++) {
      const r = trainStep(model, optimizer, batch, { keepGrads: s === 0 });
      losses.push(r.loss.total);
      if (r.grads) {
        for (const k of EXT_KEYS) expect(r.grads.has(k), k).toBe(true);
        tf.dispose([...r.grads.values()]);
      }
    }
    expect(losses[losses.length - 1]).toBeLessThan(losses[0]);
    disposeBatch(batch);
    optimizer.dispose();
    model.dispose();
  });

  it('rejects bad point inputs with an InputError naming the extension', async () => {
    nn.setInitSeed(51);
    const model = new McpMedsam(TINY, { promptExtensions: [pointPrompt] }).eval();
    const emb = tf.zeros([1, 64, 64, TINY.embedDim]);
    const p = await prompts(1, [[[10, 10, 1]]]);
    const good = p.extra!;
    const decode = (extra: Record<string, tf.Tensor> | undefined) => () => {
      const d = model.decode(emb, { ...p, extra });
      tf.dispose(Object.values(d));
    };
    const cases: [Record<string, tf.Tensor> | undefined, RegExp][] = [
      [undefined, /'points', input 'point_coords': missing/],
      [{ point_coords: good.point_coords }, /'points', input 'point_labels': missing/],
      [{ ...good, point_coordz: good.point_coords }, /unknown prompt input 'point_coordz'/],
      [{ ...good, point_labels: tf.tensor2d([[1, 1]]) }, /'points', input 'point_labels'.*\(B,P\).*P = 1/],
      [{ ...good, point_coords: tf.zeros([2, 1, 2]) }, /'points', input 'point_coords'.*B = 1/],
      [{ ...good, point_coords: tf.zeros([1, 1, 3]) }, /'points', input 'point_coords'.*\(B,P,2\)/],
      [{ ...good, point_labels: tf.tensor2d([[2]]) }, /'points', input 'point_labels': labels must be/],
      [
        { ...good, point_labels: tf.tensor2d([[1]], [1, 1], 'int32') },
        /'points', input 'point_labels': must be float32/,
      ],
      [{ ...good, point_coords: tf.tensor3d([[[NaN, 1]]]) }, /'points', input 'point_coords': contains NaN/],
    ];
    for (const [extra, message] of cases) {
      expect(decode(extra)).toThrow(InputError);
      expect(decode(extra)).toThrow(message);
    }
    // Declarations are checked when the extension is registered.
    expect(() => new McpMedsam(TINY, { promptExtensions: [pointPrompt, pointPrompt] })).toThrow(
      /registered twice/,
    );
    expect(
      () => new McpMedsam(TINY, { promptExtensions: [() => new PointPrompt({ embedDim: 16, name: 'a.b' })] }),
    ).toThrow(InputError);
    emb.dispose();
    disposePrompts(p);
    model.dispose();
  });
});

describe('the example script (train, export, segment with onnxruntime)', () => {
  it('runs, and the exported decoder matches tfjs within 1e-4 on a batch with padding points', async () => {
    const out = path.join(tmp, 'script');
    const r = await run({ outDir: out, steps: 3, cases: 4, log: () => {} });
    expect(r.stepLosses).toHaveLength(3);
    expect(r.stepLosses.every(Number.isFinite)).toBe(true);
    for (const v of Object.values(r.dice)) expect(v).toBeGreaterThanOrEqual(0);

    const manifest = JSON.parse(readFileSync(path.join(r.exportDir, 'manifest.json'), 'utf8'));
    expect(manifest.promptExtensions).toEqual([
      {
        name: 'points',
        inputs: [
          expect.objectContaining({ name: 'point_coords', dtype: 'float32', shape: ['batch', 'P', 2] }),
          expect.objectContaining({ name: 'point_labels', dtype: 'float32', shape: ['batch', 'P'] }),
        ],
      },
    ]);

    const onnx = await OnnxEngine.load(r.exportDir, { threads: 1 });
    const tfjs = await TfjsEngine.fromCheckpoint(r.weights, {
      preset: 'tiny',
      promptExtensions: [pointPrompt],
    });
    try {
      const [nchw] = await onnx.encode(samples[0].image, 1);
      const c = TINY.embedDim;
      const nhwc = new Float32Array(nchw.length);
      for (let ch = 0; ch < c; ch++) for (let i = 0; i < 4096; i++) nhwc[i * c + ch] = nchw[ch * 4096 + i];
      // Batch 3 and 4 points per box: sizes the graph was not traced at; padding in two rows.
      const n = 3;
      const { pos } = examplePoints(samples[0]);
      const rows = [
        [
          [...pos, 1],
          [5, 9, 0],
          [0, 0, -1],
          [0, 0, -1],
        ],
        [[...pos, 1]],
        [
          [40, 50, 0],
          [...pos, 1],
          [100, 101, 1],
          [7, 250, 0],
        ],
      ];
      const s = samples[0];
      const rep = <T extends Float32Array | Int32Array>(a: T): T => {
        const o = new (a.constructor as new (k: number) => T)(n * a.length);
        for (let i = 0; i < n; i++) o.set(a, i * a.length);
        return o;
      };
      const prompts: DecodePrompts = {
        boxes: rep(s.box),
        clipImage: rep(await clip.vision.embed(s.crop224!, 1)),
        clipText: rep(clip.text.get(s.text)),
        categoryIdx: rep(Int32Array.of(s.categoryIdx)),
        crops: rep(s.crop64),
        extra: pointArrays(rows),
      };
      const a = await onnx.decode(nchw, prompts, n);
      const b = await tfjs.decode(nhwc, prompts, n);
      expect(maxAbsDiff(a.lowResLogits, b.lowResLogits)).toBeLessThanOrEqual(1e-4);
      expect(maxAbsDiff(a.iou, b.iou)).toBeLessThanOrEqual(1e-4);

      // The engines check the extension inputs too.
      const { point_labels: _labels, ...noLabels } = prompts.extra!;
      await expect(onnx.decode(nchw, { ...prompts, extra: noLabels }, n)).rejects.toThrow(
        /prompt extension 'points', input 'point_labels': missing/,
      );
      await expect(onnx.decode(nchw, { ...prompts, extra: undefined }, n)).rejects.toThrow(InputError);
      await expect(tfjs.decode(nhwc, { ...prompts, extra: noLabels }, n)).rejects.toThrow(
        /prompt extension 'points', input 'point_labels': missing/,
      );
    } finally {
      await onnx.close();
      await tfjs.close();
    }
  });
});
