// The same export traced on the wasm backend, where @mcp-medsam/core's fused GELU kernel
// (McpGelu) and the SIMD batched matMul run. The full preset is opt-in (MCP_MEDSAM_EXPORT_FULL=1):
// it traces the 19.6M-parameter model twice.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { initBackend, nn, tf } from '@mcp-medsam/core';
import type { McpMedsamConfig } from '@mcp-medsam/model';
import { MCP_MEDSAM, McpMedsam, TINY } from '@mcp-medsam/model';
import {
  buildOnnx,
  DECODER_INPUTS,
  DECODER_OUTPUTS,
  exampleDecoderInputs,
  exampleImage,
  traceDecoder,
  traceEncoder,
} from '../src/index.js';
import { maxAbsDiff, ort, session, decoderFeeds } from './ort.js';

const f32 = (t: tf.Tensor) => new ort.Tensor('float32', t.dataSync() as Float32Array, t.shape);

beforeAll(async () => {
  await initBackend({ backend: 'wasm', log: null });
});

function suite(config: McpMedsamConfig) {
  let model: McpMedsam;
  beforeAll(() => {
    nn.setInitSeed(7);
    model = new McpMedsam(config).eval();
  });
  afterAll(() => model?.dispose());

  it(`encoder (${config.name}) matches tfjs-wasm at batch 1 and 2`, async () => {
    const images = [exampleImage(1), exampleImage(2)];
    const t0 = Date.now();
    const runs = images.map((im) => traceEncoder(model, im));
    const kernels = new Set(runs[0].trace.calls.map((c) => c.kernel));
    const built = buildOnnx(runs[0].trace, runs[1].trace, {
      name: 'encoder',
      inputs: [{ name: 'image' }],
      outputs: ['image_embeddings'],
      batches: [1, 2],
    });
    const t1 = Date.now();
    expect(built.initializers).toContain(
      'image_encoder.layers.1.blocks.0.attn.qkv.weight:GatherV2:Transpose',
    );
    // BatchNorm folded into the convolution: a constant derived from the conv weight.
    expect(built.initializers.some((n) => n.startsWith('image_encoder.patch_embed.seq.0.c.weight:'))).toBe(
      true,
    );
    const s = await session(built.bytes);
    for (let i = 0; i < 2; i++) {
      const out = await s.run({ image: f32(images[i]) });
      const d = maxAbsDiff(out.image_embeddings.data as Float32Array, runs[i].results[0].dataSync());
      console.log(`wasm ${config.name} encoder batch ${i + 1}: max abs diff ${d}`);
      expect(d).toBeLessThanOrEqual(1e-4);
    }
    console.log(
      `wasm ${config.name} encoder: trace+build ${t1 - t0} ms, ${built.bytes.length} bytes, kernels`,
      [...kernels],
    );
    await s.release();
    tf.dispose([...images, ...runs.flatMap((r) => r.results)]);
  });

  it(`decoder (${config.name}) matches tfjs-wasm at batch 1 and 2`, async () => {
    const inputs = [exampleDecoderInputs(model, 1), exampleDecoderInputs(model, 2)];
    const runs = inputs.map((x) => traceDecoder(model, x));
    const built = buildOnnx(runs[0].trace, runs[1].trace, {
      name: 'decoder',
      inputs: DECODER_INPUTS.map((name) => ({ name, dtype: name === 'category_idx' ? 'int64' : undefined })),
      outputs: [...DECODER_OUTPUTS],
      batches: [1, 2],
    });
    const s = await session(built.bytes);
    for (let i = 0; i < 2; i++) {
      const x = inputs[i];
      const out = await s.run(decoderFeeds(x));
      const d0 = maxAbsDiff(out.low_res_logits.data as Float32Array, runs[i].results[0].dataSync());
      const d1 = maxAbsDiff(out.iou.data as Float32Array, runs[i].results[1].dataSync());
      console.log(`wasm ${config.name} decoder batch ${i + 1}: max abs diff logits ${d0} iou ${d1}`);
      expect(d0).toBeLessThanOrEqual(1e-4);
      expect(d1).toBeLessThanOrEqual(1e-4);
    }
    await s.release();
    for (const x of inputs) tf.dispose(Object.values(x));
    tf.dispose(runs.flatMap((r) => r.results));
  });
}

describe('tiny on wasm', () => suite(TINY));
describe.runIf(process.env.MCP_MEDSAM_EXPORT_FULL === '1')('mcp-medsam on wasm', () => suite(MCP_MEDSAM));
