import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Embedding, initBackend, InputError, Linear, nn, tf } from '@mcp-medsam/core';
import {
  McpMedsam,
  PromptExtension,
  TINY,
  stepGradients,
  type ExtensionInputSpec,
  type ForwardOutputs,
  type PromptEncoder,
  type PromptInputs,
} from '@mcp-medsam/model';

/** K weighted taps: the PE of each (x, y) scaled by its weight, plus a learned token. */
class Taps extends PromptExtension {
  readonly name: string;
  readonly inputs: ExtensionInputSpec[] = [
    { name: 'tap_xy', dtype: 'float32', shape: ['B', 'K', 2] },
    { name: 'tap_w', dtype: 'float32', shape: ['B', 'K'] },
  ];
  readonly tok: Embedding;
  constructor(dim: number, name = 'taps') {
    super();
    this.name = name;
    this.tok = this.child('tok', new Embedding(1, dim));
  }
  embed(x: Record<string, tf.Tensor>, enc: PromptEncoder): tf.Tensor {
    return tf.tidy(() => {
      const pe = enc.pe_layer.encodeWithCoords(x.tap_xy, 256, 256);
      return tf.add(tf.mul(pe, tf.expandDims(x.tap_w, -1)), this.tok.weight);
    });
  }
}

/** A dense-only extension: a per-sample scalar times a learned channel vector, on every pixel. */
class Glow extends PromptExtension {
  readonly name = 'glow';
  readonly inputs: ExtensionInputSpec[] = [{ name: 'glow', dtype: 'float32', shape: ['B', 1] }];
  readonly proj: Linear;
  constructor(dim: number) {
    super();
    this.proj = this.child('proj', new Linear(1, dim));
  }
  embed(x: Record<string, tf.Tensor>) {
    const b = x.glow.shape[0];
    const v = this.proj.forward(x.glow);
    return { dense: tf.tile(tf.reshape(v, [b, 1, 1, -1]), [1, 64, 64, 1]) };
  }
}

const taps = () => new Taps(TINY.embedDim);

beforeAll(async () => {
  await initBackend({ backend: 'wasm', log: null });
});

function prompts(b: number, k: number): PromptInputs {
  return tf.tidy(() => ({
    boxes: tf.tensor2d(
      Array.from({ length: b }, (_, i) => [20 + i, 30, 150, 200 - i]),
      [b, 4],
    ),
    clipImage: tf.randomNormal([b, 512], 0, 1, 'float32', 1),
    clipText: tf.randomNormal([b, 512], 0, 1, 'float32', 2),
    categoryIdx: tf.tensor1d(
      Array.from({ length: b }, (_, i) => i),
      'int32',
    ),
    crops: tf.randomUniform([b, 3, 64, 64], 0, 1, 'float32', 3),
    extra: {
      tap_xy: tf.randomUniform([b, k, 2], 0, 256, 'float32', 4 + k),
      tap_w: tf.randomUniform([b, k], 0.5, 1, 'float32', 5 + k),
    },
  })) as PromptInputs;
}

const dispose = (p: PromptInputs) => {
  const { extra, ...rest } = p;
  tf.dispose([...Object.values(rest), ...Object.values(extra ?? {})]);
};

describe('prompt extensions', () => {
  let model: McpMedsam;
  let emb: tf.Tensor;
  beforeAll(() => {
    nn.setInitSeed(3);
    model = new McpMedsam(TINY, { promptExtensions: [taps] });
    emb = tf.randomNormal([1, 64, 64, TINY.embedDim], 0, 1, 'float32', 9);
  });
  afterAll(() => {
    model?.dispose();
    emb?.dispose();
  });

  it('registers the weights after the base keys, and builds the base model as without extensions', () => {
    nn.setInitSeed(3);
    const plain = new McpMedsam(TINY);
    const base = plain.stateDict();
    const sd = model.stateDict();
    expect([...sd.keys()]).toEqual([...base.keys(), 'prompt_encoder.extensions.taps.tok.weight']);
    for (const [k, t] of base) expect(sd.get(k)!.data, k).toEqual(t.data);
    model.eval();
    expect(model.promptExtensions[0].training).toBe(false);
    model.train();
    plain.dispose();
  });

  it('takes any token count: the CLIP and modality tokens keep their places', () => {
    model.eval();
    for (const k of [1, 3]) {
      const p = prompts(2, k);
      const d = model.decode(emb, p);
      expect(d.sparse.shape).toEqual([2, 4 + k, TINY.embedDim]);
      expect(d.hs.shape).toEqual([2, 9 + k, TINY.embedDim]);
      const clipToken = tf.tidy(() => tf.reshape(tf.slice(d.sparse, [0, 2, 0], [2, 1, -1]), [2, -1]));
      expect(Array.from(d.clipVec.dataSync())).toEqual(Array.from(clipToken.dataSync()));
      tf.dispose([...Object.values(d), clipToken]);
      dispose(p);
    }
    model.train();
  });

  it('back-propagates through the extra tokens (two-phase steps included)', () => {
    model.train().setGradientCheckpointing(true);
    const p = prompts(2, 2);
    const image = tf.randomUniform([2, 3, 256, 256], 0, 1, 'float32', 7);
    const lossFn = (o: ForwardOutputs) =>
      tf.add(tf.mean(tf.sigmoid(o.low_res_logits)), tf.mean(tf.square(o.iou))) as tf.Scalar;
    const { loss, grads } = stepGradients(model, { ...p, image }, lossFn);
    expect(Number.isFinite(loss.dataSync()[0])).toBe(true);
    for (const key of [
      'prompt_encoder.extensions.taps.tok.weight',
      'mask_decoder.transformer.layers.0.self_attn.q_proj.weight',
      'image_encoder.patch_embed.seq.0.c.weight',
    ]) {
      const g = grads.get(key);
      expect(g, key).toBeDefined();
      expect(Math.max(...Array.from(g!.dataSync(), Math.abs)), key).toBeGreaterThan(0);
    }
    tf.dispose([loss, image, ...grads.values()]);
    dispose(p);
    model.setGradientCheckpointing(false);
  });

  it('adds a dense map to the crop net output', () => {
    nn.setInitSeed(4);
    const m = new McpMedsam(TINY, { promptExtensions: [taps, () => new Glow(TINY.embedDim)] }).eval();
    const p = prompts(1, 1);
    const glow = (v: number) => ({ ...p.extra!, glow: tf.tensor2d([[v]]) });
    const off = m.decode(emb, { ...p, extra: glow(0) });
    const on = m.decode(emb, { ...p, extra: glow(2) });
    const diff = tf.tidy(() => tf.max(tf.abs(tf.sub(on.lowResLogits, off.lowResLogits))).dataSync()[0]);
    expect(diff).toBeGreaterThan(0);
    expect(on.sparse.shape).toEqual([1, 5, TINY.embedDim]);
    tf.dispose([...Object.values(off), ...Object.values(on)]);
    dispose(p);
    m.dispose();
  });

  it('names the extension and the input in errors', () => {
    model.eval();
    const p = prompts(1, 2);
    const run = (m: McpMedsam, extra: Record<string, tf.Tensor> | undefined) => () =>
      tf.dispose(Object.values(m.decode(emb, { ...p, extra })));
    const { tap_xy, tap_w } = p.extra!;
    expect(run(model, { tap_xy })).toThrow(/prompt extension 'taps', input 'tap_w': missing/);
    expect(run(model, { tap_xy, tap_w, tap_z: tap_w })).toThrow(
      /unknown prompt input 'tap_z'.*taps: tap_xy, tap_w/,
    );
    const k3 = tf.zeros([1, 3]);
    expect(run(model, { tap_xy, tap_w: k3 })).toThrow(/'taps', input 'tap_w'.*\(B,K\).*K = 2 from 'tap_xy'/);
    expect(run(model, { tap_xy, tap_w: tf.zeros([1, 2], 'int32') })).toThrow(InputError);
    nn.setInitSeed(5);
    const plain = new McpMedsam(TINY).eval();
    expect(run(plain, { tap_xy })).toThrow(
      /unknown prompt input 'tap_xy' \(the model has no prompt extensions\)/,
    );
    plain.dispose();

    const declared = (ext: () => PromptExtension) => () =>
      new McpMedsam(TINY, { promptExtensions: [taps, ext] });
    const like = (name: string, inputs: ExtensionInputSpec[]) => () => {
      const t = new Taps(TINY.embedDim, name);
      Object.defineProperty(t, 'inputs', { value: inputs });
      return t;
    };
    expect(declared(taps)).toThrow(/'taps' is registered twice/);
    expect(declared(like('bad.name', []))).toThrow(/name must be letters/);
    expect(declared(like('b', [{ name: 'boxes', dtype: 'float32', shape: ['B', 4] }]))).toThrow(
      /taken by the base/,
    );
    expect(declared(like('b', [{ name: 'tap_w', dtype: 'float32', shape: ['B'] }]))).toThrow(
      /taken by prompt extension 'taps'/,
    );
    expect(declared(like('b', [{ name: 'q', dtype: 'float32', shape: [4, 'B'] }]))).toThrow(
      /start with the batch/,
    );

    class Wrong extends Taps {
      override embed(): tf.Tensor {
        return tf.zeros([1, 2, 3]);
      }
    }
    nn.setInitSeed(6);
    const wrong = new McpMedsam(TINY, { promptExtensions: [new Wrong(TINY.embedDim)] }).eval();
    expect(run(wrong, p.extra)).toThrow(
      /prompt extension 'taps': embed returned sparse tokens of shape \(1,2,3\)/,
    );
    wrong.dispose();
    k3.dispose();
    dispose(p);
  });
});
