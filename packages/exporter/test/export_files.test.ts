// Traced on wasm (fast); test/export.test.ts covers the cpu backend.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { initBackend, MODALITIES, nn, tf } from '@mcp-medsam/core';
import { McpMedsam, TINY } from '@mcp-medsam/model';
import { exampleDecoderInputs, exportOnnx } from '../src/index.js';
import { maxAbsDiff, ort, decoderFeeds } from './ort.js';

let model: McpMedsam;
let dir: string;

beforeAll(async () => {
  await initBackend({ backend: 'wasm', log: null });
  nn.setInitSeed(7);
  model = new McpMedsam(TINY);
  dir = mkdtempSync(path.join(tmpdir(), 'mcp-medsam-onnx-'));
});

afterAll(() => {
  model?.dispose();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

it('writes both graphs and a manifest that onnxruntime loads with every optimisation', async () => {
  const files = exportOnnx(model, { outDir: dir });
  expect(model.training).toBe(true); // the modes are restored
  const manifest = JSON.parse(readFileSync(files.manifest, 'utf8'));
  expect(manifest).toMatchObject({ preset: 'tiny', opset: 17, irVersion: 8, producer: 'mcp-medsam' });
  expect(manifest.preprocessing).toMatchObject({ imageSize: 256, cropSize: 64, clipImageSize: 224 });
  expect(manifest.modalities.map((m: { name: string }) => m.name)).toEqual([...MODALITIES]);
  expect(manifest.files.prompt_decoder.inputs).toEqual([
    { name: 'image_embeddings', dtype: 'float32', shape: ['batch', TINY.embedDim, 64, 64] },
    { name: 'boxes', dtype: 'float32', shape: ['batch', 4] },
    { name: 'clip_image', dtype: 'float32', shape: ['batch', 512] },
    { name: 'clip_text', dtype: 'float32', shape: ['batch', 512] },
    { name: 'category_idx', dtype: 'int64', shape: ['batch'] },
    { name: 'crops', dtype: 'float32', shape: ['batch', 3, 64, 64] },
  ]);

  const opts = { graphOptimizationLevel: 'all' as const, intraOpNumThreads: 1, interOpNumThreads: 1 };
  const enc = await ort.InferenceSession.create(files.encoder, opts);
  expect(enc.inputNames).toEqual(['image']);
  expect(enc.outputNames).toEqual(['image_embeddings']);
  await enc.release();

  // The decoder file at a batch size it was not traced at, against tfjs.
  const dec = await ort.InferenceSession.create(files.decoder, opts);
  model.eval();
  const x = exampleDecoderInputs(model, 4);
  const out = await dec.run(decoderFeeds(x));
  const ref = tf.tidy(() => {
    const d = model.decode(tf.transpose(x.imageEmbeddings, [0, 2, 3, 1]), x);
    return [d.lowResLogits, d.iou];
  });
  expect(Array.from(out.low_res_logits.dims)).toEqual([4, 1, 256, 256]);
  expect(maxAbsDiff(out.low_res_logits.data as Float32Array, ref[0].dataSync())).toBeLessThanOrEqual(1e-4);
  expect(maxAbsDiff(out.iou.data as Float32Array, ref[1].dataSync())).toBeLessThanOrEqual(1e-4);
  tf.dispose([...ref, ...Object.values(x)]);
  await dec.release();
});
