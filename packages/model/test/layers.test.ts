/**
 * Each layer type of the model against a float64 reference written from the spec, on the cpu
 * and wasm backends (the whole model is checked against the original on wasm in
 * forward-parity.test.ts; on cpu it would be too slow for CI).
 */
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { initBackend, tf } from '@mcp-medsam/core';
import { readNpzFile, toFloat32 } from '@mcp-medsam/io';
import { ndarrayToTensor } from '@mcp-medsam/io/tensor';
import { McpMedsam, MCP_MEDSAM, TINY, loadWeights } from '@mcp-medsam/model';
import { Attention as WindowAttention } from '../src/image_encoder/attention.js';
import { TinyViTBlock } from '../src/image_encoder/tiny_vit_block.js';
import { Attention as TwoWayAttention } from '../src/mask_decoder/transformer.js';
import { DecBlock } from '../src/mask_decoder/heads.js';
import { ResBlockPE } from '../src/prompt_encoder/crop_net.js';
import * as ref from '../../../test-utils/reference.js';
import { randomize } from '../../../test-utils/modules.js';
import { sharedPath } from '../../../test-utils/shared.js';

/** Reference TinyViT window attention on (Nw, N, C) tokens: per-head [q|k|v] layout, |Δ| bias. */
function refWindowAttention(
  x: Float32Array,
  nw: number,
  n: number,
  c: number,
  heads: number,
  ws: number,
  w: Map<string, Float32Array>,
  p = '',
) {
  const kd = c / heads;
  const xn = ref.layerNorm(x, nw * n, c, w.get(p + 'norm.weight')!, w.get(p + 'norm.bias')!, 1e-5);
  const qkv = ref.linear(xn, nw * n, c, w.get(p + 'qkv.weight')!, 3 * c, w.get(p + 'qkv.bias')!);
  const bias = w.get(p + 'attention_biases')!;
  const out = new Float64Array(nw * n * c);
  for (let b = 0; b < nw; b++)
    for (let h = 0; h < heads; h++) {
      const s = new Float64Array(n * n);
      for (let i = 0; i < n; i++)
        for (let j = 0; j < n; j++) {
          let dot = 0;
          for (let t = 0; t < kd; t++)
            dot += qkv[(b * n + i) * 3 * c + h * 3 * kd + t] * qkv[(b * n + j) * 3 * c + h * 3 * kd + kd + t];
          const off = Math.abs(Math.floor(i / ws) - Math.floor(j / ws)) * ws + Math.abs((i % ws) - (j % ws));
          s[i * n + j] = dot / Math.sqrt(kd) + bias[h * n + off];
        }
      const a = ref.softmaxRows(s, n, n);
      for (let i = 0; i < n; i++)
        for (let t = 0; t < kd; t++) {
          let v = 0;
          for (let j = 0; j < n; j++) v += a[i * n + j] * qkv[(b * n + j) * 3 * c + h * 3 * kd + 2 * kd + t];
          out[(b * n + i) * c + h * kd + t] = v;
        }
    }
  return ref.linear(out, nw * n, c, w.get(p + 'proj.weight')!, c, w.get(p + 'proj.bias')!);
}

function refBnEval(x: Float64Array, c: number, w: Map<string, Float32Array>, p: string): Float64Array {
  const [g, b, m, v] = ['weight', 'bias', 'running_mean', 'running_var'].map((k) => w.get(`${p}.${k}`)!);
  return x.map((val, i) => ((val - m[i % c]) / Math.sqrt(v[i % c] + 1e-5)) * g[i % c] + b[i % c]);
}

const lrelu = (x: number) => (x >= 0 ? x : 0.1 * x);

describe.each(['cpu', 'wasm'] as const)('model layers on %s', (backend) => {
  beforeAll(async () => {
    await initBackend({ backend, log: null });
  });

  test('TinyViT window attention (per-head qkv layout, relative position bias)', () => {
    const m = new WindowAttention(64, 32, 2, 3).eval();
    const w = randomize(m, 11);
    const x = ref.randomArray(2 * 9 * 64, 12);
    const y = tf.tidy(() => m.forward(tf.tensor(x, [2, 9, 64])).dataSync());
    expect(ref.maxAbsDiff(y, refWindowAttention(x, 2, 9, 64, 2, 3, w))).toBeLessThan(2e-5);
    m.dispose();
  });

  test('TinyViT block: zero padding before the attention LayerNorm, no mask, non-residual local conv', () => {
    // resolution 5 with window 3: padded to 6, 2x2 windows, the padded tokens act as keys.
    const [r, c, ws] = [5, 32, 3];
    const m = new TinyViTBlock(c, r, 1, ws, 2, 3).eval();
    const w = randomize(m, 21);
    const x = ref.randomArray(r * r * c, 22);
    const y = tf.tidy(() => m.forward(tf.tensor(x, [1, r * r, c])).dataSync());

    const hp = 6;
    const nwin = (hp / ws) ** 2;
    const win = new Float32Array(nwin * ws * ws * c); // zero padding
    const where: number[] = []; // window token -> source pixel or -1
    for (let wi = 0; wi < hp / ws; wi++)
      for (let wj = 0; wj < hp / ws; wj++)
        for (let a = 0; a < ws; a++)
          for (let b = 0; b < ws; b++) {
            const [i, j] = [wi * ws + a, wj * ws + b];
            const t = ((wi * (hp / ws) + wj) * ws + a) * ws + b;
            where[t] = i < r && j < r ? i * r + j : -1;
            if (where[t] >= 0) for (let ch = 0; ch < c; ch++) win[t * c + ch] = x[where[t] * c + ch];
          }
    const att = refWindowAttention(win, nwin, ws * ws, c, 1, ws, w, 'attn.');
    const x1 = Float64Array.from(x);
    where.forEach((src, t) => {
      if (src >= 0) for (let ch = 0; ch < c; ch++) x1[src * c + ch] += att[t * c + ch];
    });
    const conv = ref.conv2d(x1, [1, r, r, c], w.get('local_conv.c.weight')!, c, 3, 1, 1, c).data;
    const x2 = refBnEval(conv, c, w, 'local_conv.bn');
    const hidden = ref
      .linear(
        ref.layerNorm(x2, r * r, c, w.get('mlp.norm.weight')!, w.get('mlp.norm.bias')!, 1e-5),
        r * r,
        c,
        w.get('mlp.fc1.weight')!,
        2 * c,
        w.get('mlp.fc1.bias')!,
      )
      .map(ref.gelu);
    const mlp = ref.linear(hidden, r * r, 2 * c, w.get('mlp.fc2.weight')!, c, w.get('mlp.fc2.bias')!);
    expect(
      ref.maxAbsDiff(
        y,
        x2.map((v, i) => v + mlp[i]),
      ),
    ).toBeLessThan(5e-5);
    m.dispose();
  });

  test('two-way transformer attention (contiguous heads, downsample 2)', () => {
    const m = new TwoWayAttention(32, 4, 2);
    const w = randomize(m, 31);
    const [q, k] = [ref.randomArray(5 * 32, 32), ref.randomArray(7 * 32, 33)];
    const y = tf.tidy(() => {
      const kt = tf.tensor(k, [1, 7, 32]);
      return m.forward(tf.tensor(q, [1, 5, 32]), kt, kt).dataSync();
    });
    const proj = (x: Float32Array, rows: number, name: string) =>
      ref.linear(x, rows, 32, w.get(`${name}.weight`)!, 16, w.get(`${name}.bias`)!);
    const [qp, kp, vp] = [proj(q, 5, 'q_proj'), proj(k, 7, 'k_proj'), proj(k, 7, 'v_proj')];
    const o = new Float64Array(5 * 16);
    for (let h = 0; h < 4; h++) {
      const s = new Float64Array(5 * 7);
      for (let i = 0; i < 5; i++)
        for (let j = 0; j < 7; j++)
          for (let t = 0; t < 4; t++) s[i * 7 + j] += (qp[i * 16 + h * 4 + t] * kp[j * 16 + h * 4 + t]) / 2;
      const a = ref.softmaxRows(s, 5, 7);
      for (let i = 0; i < 5; i++)
        for (let t = 0; t < 4; t++)
          for (let j = 0; j < 7; j++) o[i * 16 + h * 4 + t] += a[i * 7 + j] * vp[j * 16 + h * 4 + t];
    }
    expect(
      ref.maxAbsDiff(y, ref.linear(o, 5, 16, w.get('out_proj.weight')!, 32, w.get('out_proj.bias')!)),
    ).toBeLessThan(2e-5);
    m.dispose();
  });

  test('decoder Block (no second BN, no final activation) and crop-net Block (BN2 and final LeakyReLU)', () => {
    const shape = [1, 4, 5, 8];
    const x = ref.randomArray(4 * 5 * 8, 41);
    const dec = new DecBlock(8).eval();
    const wd = randomize(dec, 42);
    const yd = tf.tidy(() => dec.forward(tf.tensor(x, shape)).dataSync());
    const hd = refBnEval(
      ref.conv2d(x, shape, wd.get('conv1.weight')!, 8, 3, 1, 1, 1).data,
      8,
      wd,
      'batch_norm1',
    ).map(lrelu);
    const expectDec = ref
      .conv2d(hd, shape, wd.get('conv2.weight')!, 8, 3, 1, 1, 1)
      .data.map((v, i) => v + x[i]);
    expect(ref.maxAbsDiff(yd, expectDec)).toBeLessThan(2e-5);

    const pe = new ResBlockPE(8).eval();
    const wp = randomize(pe, 43);
    const yp = tf.tidy(() => pe.forward(tf.tensor(x, shape)).dataSync());
    const hp = refBnEval(
      ref.conv2d(x, shape, wp.get('conv1.weight')!, 8, 3, 1, 1, 1).data,
      8,
      wp,
      'batch_norm1',
    ).map(lrelu);
    const h2 = refBnEval(
      ref.conv2d(hp, shape, wp.get('conv2.weight')!, 8, 3, 1, 1, 1).data,
      8,
      wp,
      'batch_norm2',
    );
    expect(
      ref.maxAbsDiff(
        yp,
        h2.map((v, i) => lrelu(v + x[i])),
      ),
    ).toBeLessThan(2e-5);
    dec.dispose();
    pe.dispose();
  });
});

describe('prompt encoder with checkpoint-a on cpu', () => {
  let model: McpMedsam;
  beforeAll(async () => {
    await initBackend({ backend: 'cpu', log: null });
    model = new McpMedsam(MCP_MEDSAM).eval();
    await loadWeights(model, sharedPath('fixtures/model/checkpoint-a.pth'));
  });
  afterAll(() => model?.dispose());

  test.each(['ct', 'endo'])(
    'sparse tokens (box PE, CLIP content MLP, modality fusion) of forward-a-%s',
    async (name) => {
      const fx = await readNpzFile(sharedPath(`fixtures/model/forward-a-${name}.npz`));
      const pe = model.prompt_encoder;
      const got = tf.tidy(() => {
        const t = (n: string) => ndarrayToTensor(fx[n], n);
        const clip = tf.reshape(pe.clip_img_mlp.forward(t('clip_img')), [1, 1, 256]);
        return tf
          .concat([pe.embedBoxes(t('box256')), clip, pe.embedModality(t('clip_txt'), t('category_idx'))], 1)
          .dataSync();
      });
      expect(ref.maxAbsDiff(got, toFloat32(fx.sparse))).toBeLessThan(2e-5);
    },
  );

  test('dense positional encoding', async () => {
    const fx = await readNpzFile(sharedPath('fixtures/model/forward-a-ct.npz'));
    const got = tf.tidy(() => tf.transpose(model.prompt_encoder.densePe(), [0, 3, 1, 2]).dataSync());
    expect(ref.maxAbsDiff(got, toFloat32(fx.dense_pe))).toBeLessThan(1e-4);
  });
});

test('the tiny preset gives the same outputs on cpu and wasm', async () => {
  const outputs: Float32Array[] = [];
  for (const backend of ['cpu', 'wasm'] as const) {
    await initBackend({ backend, log: null });
    tf.util.assert(true, () => '');
    const { setInitSeed } = (await import('@mcp-medsam/core')).nn;
    setInitSeed(5);
    const m = new McpMedsam(TINY).eval();
    const o = tf.tidy(() => {
      const out = m.forward({
        image: tf.tensor(ref.randomArray(3 * 256 * 256, 51).map(Math.abs), [1, 3, 256, 256]),
        boxes: tf.tensor([[20, 30, 120, 160]]),
        clipImage: tf.tensor(ref.randomArray(512, 52), [1, 512]),
        clipText: tf.tensor(ref.randomArray(512, 53), [1, 512]),
        categoryIdx: tf.tensor([3], [1], 'int32'),
        crops: tf.tensor(ref.randomArray(3 * 64 * 64, 54).map(Math.abs), [1, 3, 64, 64]),
      });
      return out.low_res_logits.dataSync() as Float32Array;
    });
    outputs.push(o);
    m.dispose();
  }
  expect(outputs[0].length).toBe(256 * 256);
  expect(ref.maxAbsDiff(outputs[0], outputs[1])).toBeLessThan(1e-4);
});
