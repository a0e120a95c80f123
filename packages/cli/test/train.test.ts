import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { beforeAll, describe, expect, test } from 'vitest';
import { initBackend, nn } from '@mcp-medsam/core';
import { ndarray, readNpzFile, writeNpzFile } from '@mcp-medsam/io';
import { McpMedsam, TINY, saveWeights } from '@mcp-medsam/model';
import { runTrainStep } from '../src/commands/train_step.js';
import { trainConfigFromFlags } from '../src/commands/train.js';
import { randomArray } from '../../../test-utils/reference.js';

const dir = mkdtempSync(path.join(tmpdir(), 'mcp-medsam-cli-train-'));

beforeAll(async () => {
  await initBackend({ backend: 'wasm', log: null });
});

describe('train-step', () => {
  test('writes losses, every gradient and norm, and the AdamW update under the fixture names', async () => {
    nn.setInitSeed(11);
    const model = new McpMedsam(TINY);
    const weights = path.join(dir, 'tiny.safetensors');
    await saveWeights(model, weights);
    const before = new Map(model.namedParameters().map(([k, v]) => [k, new Float32Array(v.dataSync())]));
    const names = model.namedParameters().map(([k]) => k);
    model.dispose();
    const gt = new Float32Array(2 * 256 * 256);
    for (let y = 60; y < 140; y++)
      for (let x = 50; x < 170; x++) gt[y * 256 + x] = gt[65536 + y * 256 + x] = 1;
    const batch = path.join(dir, 'batch.npz');
    await writeNpzFile(batch, {
      image: ndarray('float32', [2, 3, 256, 256], randomArray(2 * 3 * 65536, 1).map(Math.abs)),
      gt2D: ndarray('float32', [2, 1, 256, 256], gt),
      boxes: ndarray('float32', [2, 1, 1, 4], new Float32Array([45, 55, 175, 145, 50, 60, 170, 140])),
      crops: ndarray('float32', [2, 3, 64, 64], randomArray(2 * 3 * 4096, 2).map(Math.abs)),
      features: ndarray('float32', [2, 1, 512], randomArray(1024, 3)),
      text_features: ndarray('float32', [2, 1, 512], randomArray(1024, 4)),
      category_idx: ndarray('int64', [2], new BigInt64Array([0n, 2n])),
    });
    const output = path.join(dir, 'step.npz');
    await runTrainStep({ weights, batch, output, preset: 'tiny' });
    const out = await readNpzFile(output);
    for (const k of ['dice', 'bce', 'iou_mse', 'sim_ce', 'cat_ce', 'total'])
      expect(Number.isFinite((out[`loss_${k}`].data as Float64Array)[0]), k).toBe(true);
    const t = (k: string) => (out[`loss_${k}`].data as Float64Array)[0];
    expect(t('total')).toBeCloseTo(
      t('dice') + t('bce') + t('iou_mse') + 0.01 * t('sim_ce') + 0.01 * t('cat_ce'),
      5,
    );
    expect(new TextDecoder().decode(out.grad_norm_keys_utf8.data as Uint8Array).split('\n')).toEqual(names);
    const none = out.grad_is_none.data as Uint8Array;
    const unused = names.filter((_, i) => none[i]);
    expect(unused.sort()).toEqual(
      [
        'prompt_encoder.no_mask_embed.weight',
        'prompt_encoder.not_a_point_embed.weight',
        'prompt_encoder.point_embeddings.0.weight',
        'prompt_encoder.point_embeddings.1.weight',
      ].sort(),
    );
    // first AdamW step: p·(1 − lr·wd) − lr·g/(|g| + eps) per element
    const lr = 2e-4;
    const wd = 1e-3;
    names.forEach((name, i) => {
      const after = out[`after.${name}`].data as Float32Array;
      const p = before.get(name)!;
      if (none[i]) {
        expect(Array.from(after), name).toEqual(Array.from(p));
        return;
      }
      const g = out[`grad.${name}`].data as Float32Array;
      let s = 0;
      for (let j = 0; j < g.length; j++) s += g[j] * g[j];
      expect((out.grad_norm.data as Float64Array)[i]).toBeCloseTo(Math.sqrt(s), 6);
      for (let j = 0; j < g.length; j += Math.max(1, g.length >> 4)) {
        const want = p[j] * (1 - lr * wd) - (lr * g[j]) / (Math.abs(g[j]) + 1e-8);
        expect(Math.abs(after[j] - want), `${name}[${j}]`).toBeLessThan(1e-7 + 1e-6 * Math.abs(want));
      }
    });
    expect(
      Object.keys(out).filter((k) => k.startsWith('bn.') && k.endsWith('num_batches_tracked')).length,
    ).toBeGreaterThan(0);
  }, 300_000);
});

describe('train flags', () => {
  test('flags lie over the config file and are validated with their names', async () => {
    const cfg = path.join(dir, 'run.yaml');
    writeFileSync(cfg, 'preset: tiny\ndata: d\nout: o\nclipVision: v.onnx\nclipText: t.json\nbatchSize: 8\n');
    const c = await trainConfigFromFlags({
      config: cfg,
      batchSize: '2',
      lossWeights: 'sim=0.1',
      lastEpochLr: 'none',
    });
    expect(c).toMatchObject({
      preset: 'tiny',
      batchSize: 2,
      lastEpochLr: null,
      lossWeights: { sim: 0.1, dice: 1 },
    });
    await expect(trainConfigFromFlags({ config: cfg, batchSize: 'two' })).rejects.toThrow(
      /--batch-size: 'two' is not a number/,
    );
    await expect(trainConfigFromFlags({ config: cfg, sampler: 'random' })).rejects.toThrow(/sampler/);
    writeFileSync(path.join(dir, 'bad.yaml'), 'preset: [tiny\n');
    await expect(trainConfigFromFlags({ config: path.join(dir, 'bad.yaml') })).rejects.toThrow(
      /bad\.yaml|not valid YAML/,
    );
    await expect(trainConfigFromFlags({ data: 'd', out: 'o' })).rejects.toThrow(/clipVision/);
  });
});
