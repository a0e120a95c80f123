// The exported graphs also run in onnxruntime-web (its wasm backend, here in Node), which is what a
// browser page uses: same outputs as onnxruntime-node, fp32 and int8.
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type * as OrtWeb from 'onnxruntime-web';
import { initBackend, nn } from '@mcp-medsam/core';
import { exportOnnx } from '@mcp-medsam/exporter';
import { McpMedsam, TINY } from '@mcp-medsam/model';
import { exportModel, OnnxEngine, type DecodePrompts } from '../src/index.js';

const require = createRequire(import.meta.url);
const ortWeb = require('onnxruntime-web') as typeof OrtWeb;

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'mcp-medsam-web-'));
  await initBackend({ backend: 'wasm', log: null });
  nn.setInitSeed(3);
  const model = new McpMedsam(TINY);
  exportOnnx(model, { outDir: path.join(dir, 'fp32') });
  model.dispose();
  // int8 on a tiny model wide enough for its decoder convolutions to become static QLinearConv
  // (the tiny preset's are all too small), calibrated as `mcp-medsam export --quantize int8` does.
  const wide = new McpMedsam({ ...TINY, name: 'tiny-wide', embedDim: 48 });
  const int8 = await exportModel(wide, path.join(dir, 'int8'), { quantize: 'int8' });
  expect(JSON.parse(await readFile(int8.manifest, 'utf8')).int8.decoder.staticConv).toBe(13);
  wide.dispose();
  ortWeb.env.wasm.numThreads = 1;
}, 300_000);
afterAll(() => rm(dir, { recursive: true, force: true }));

function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  expect(a.length).toBe(b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

describe.each(['fp32', 'int8'])('%s export in onnxruntime-web', (kind) => {
  it('encoder and decoder match onnxruntime-node', async () => {
    const exportDir = path.join(dir, kind);
    const node = await OnnxEngine.load(exportDir, { threads: 1 });
    const web = async (file: string) =>
      ortWeb.InferenceSession.create(new Uint8Array(await readFile(path.join(exportDir, file))), {
        executionProviders: ['wasm'],
      });
    const image = Float32Array.from({ length: 3 * 256 * 256 }, (_, i) => ((i * 7919) % 1000) / 1000);
    const [emb] = await node.encode(image, 1);
    const enc = await web('image_encoder.onnx');
    const e = (await enc.run({ image: new ortWeb.Tensor('float32', image, [1, 3, 256, 256]) }))
      .image_embeddings;
    expect(maxAbsDiff(e.data as Float32Array, emb)).toBeLessThan(kind === 'fp32' ? 1e-5 : 1e-3);

    const p: DecodePrompts = {
      boxes: Float32Array.of(30, 40, 150, 200, 10, 10, 90, 60),
      clipImage: Float32Array.from({ length: 1024 }, (_, i) => Math.sin(i)),
      clipText: Float32Array.from({ length: 1024 }, (_, i) => Math.cos(i)),
      categoryIdx: Int32Array.of(0, 3),
      crops: Float32Array.from({ length: 2 * 3 * 64 * 64 }, (_, i) => ((i * 31) % 255) / 255),
    };
    const ref = await node.decode(emb, p, 2);
    const dec = await web('prompt_decoder.onnx');
    const c = emb.length / 4096;
    const embs = new Float32Array(2 * emb.length);
    embs.set(emb);
    embs.set(emb, emb.length);
    const out = await dec.run({
      image_embeddings: new ortWeb.Tensor('float32', embs, [2, c, 64, 64]),
      boxes: new ortWeb.Tensor('float32', p.boxes, [2, 4]),
      clip_image: new ortWeb.Tensor('float32', p.clipImage, [2, 512]),
      clip_text: new ortWeb.Tensor('float32', p.clipText, [2, 512]),
      category_idx: new ortWeb.Tensor('int64', BigInt64Array.of(0n, 3n), [2]),
      crops: new ortWeb.Tensor('float32', p.crops, [2, 3, 64, 64]),
    });
    expect(maxAbsDiff(out.low_res_logits.data as Float32Array, ref.lowResLogits)).toBeLessThan(
      kind === 'fp32' ? 1e-4 : 1e-2,
    );
    await Promise.all([enc.release(), dec.release(), node.close()]);
  }, 300_000);
});
