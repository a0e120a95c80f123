import { beforeAll, describe, expect, test } from 'vitest';
import {
  BatchNorm2d,
  Conv2d,
  ConvTranspose2d,
  Embedding,
  LayerNorm,
  LayerNorm2d,
  Linear,
  Module,
  StateDictError,
  initBackend,
  nn,
  tf,
} from '@mcp-medsam/core';
import * as ref from '../../../test-utils/reference.js';

/** Fills every state-dict entry of a module with deterministic random values. */
function randomize(m: Module, seed: number): Map<string, Float32Array> {
  const values = new Map<string, Float32Array>();
  const entries = new Map();
  let s = seed;
  for (const [k, t] of m.stateDictTensors()) {
    if (t.dtype === 'int32') continue;
    const v = ref.randomArray(t.size, s++, 0.5);
    if (k.endsWith('running_var')) for (let i = 0; i < v.length; i++) v[i] = 0.5 + Math.abs(v[i]);
    values.set(k, v);
    entries.set(k, { shape: t.shape, data: v });
  }
  m.loadStateDict(entries, { strict: false });
  return values;
}

function run(m: { forward(x: tf.Tensor): tf.Tensor }, x: Float32Array, shape: number[]): Float32Array {
  return tf.tidy(() => m.forward(tf.tensor(x, shape)).dataSync() as Float32Array);
}

describe.each(['cpu', 'wasm'] as const)('nn layers on %s', (backend) => {
  beforeAll(async () => {
    await initBackend({ backend, log: null });
  });

  test('Linear on (B, L, in) inputs', () => {
    const m = new Linear(12, 7);
    const w = randomize(m, 1);
    const x = ref.randomArray(2 * 5 * 12, 9);
    const y = run(m, x, [2, 5, 12]);
    expect(ref.maxAbsDiff(y, ref.linear(x, 10, 12, w.get('weight')!, 7, w.get('bias')!))).toBeLessThan(1e-5);
    m.dispose();
  });

  test.each([
    [3, 1, 1, 1, 'padded 3x3'],
    [3, 2, 1, 1, 'stride-2 3x3 (pads top/left like PyTorch, unlike tfjs "same")'],
    [5, 1, 2, 1, '5x5'],
    [1, 1, 0, 1, '1x1 as matMul'],
    [3, 1, 1, 6, 'depthwise 3x3'],
    [3, 2, 1, 6, 'depthwise stride 2'],
  ])('Conv2d k=%i stride=%i pad=%i groups=%i: %s', (k, stride, pad, groups) => {
    const m = new Conv2d(6, 6, k, { stride, padding: pad, groups });
    const w = randomize(m, 2);
    const shape = [2, 9, 8, 6];
    const x = ref.randomArray(2 * 9 * 8 * 6, 3);
    const y = run(m, x, shape);
    const r = ref.conv2d(x, shape, w.get('weight')!, 6, k, stride, pad, groups, w.get('bias')!);
    expect(y.length).toBe(r.data.length);
    expect(ref.maxAbsDiff(y, r.data)).toBeLessThan(1e-5);
    m.dispose();
  });

  test('ConvTranspose2d k=2 s=2', () => {
    const m = new ConvTranspose2d(5, 3, 2);
    const w = randomize(m, 4);
    const shape = [2, 3, 4, 5];
    const x = ref.randomArray(2 * 3 * 4 * 5, 5);
    const y = run(m, x, shape);
    expect(ref.maxAbsDiff(y, ref.convTranspose2d(x, shape, w.get('weight')!, 3, 2, w.get('bias')!))).toBeLessThan(1e-5);
    m.dispose();
  });

  test('LayerNorm (eps 1e-5) and LayerNorm2d (eps 1e-6 over channels)', () => {
    for (const [m, eps] of [
      [new LayerNorm(16), 1e-5],
      [new LayerNorm2d(16), 1e-6],
    ] as const) {
      const w = randomize(m, 6);
      const x = ref.randomArray(3 * 16, 7, 3);
      const y = run(m, x, [1, 1, 3, 16]);
      expect(ref.maxAbsDiff(y, ref.layerNorm(x, 3, 16, w.get('weight')!, w.get('bias')!, eps))).toBeLessThan(1e-5);
      m.dispose();
    }
  });

  test('BatchNorm2d eval uses running statistics; train uses batch statistics and updates them like PyTorch', () => {
    const m = new BatchNorm2d(4);
    const w = randomize(m, 8);
    const x = ref.randomArray(2 * 3 * 3 * 4, 9, 2);
    const [g, b, rm, rv] = ['weight', 'bias', 'running_mean', 'running_var'].map((k) => w.get(k)!);
    m.eval();
    const ye = run(m, x, [2, 3, 3, 4]);
    const expectEval = Float64Array.from(x, (v, i) => ((v - rm[i % 4]) / Math.sqrt(rv[i % 4] + 1e-5)) * g[i % 4] + b[i % 4]);
    expect(ref.maxAbsDiff(ye, expectEval)).toBeLessThan(1e-5);

    m.train();
    const yt = run(m, x, [2, 3, 3, 4]);
    const n = 18;
    for (let c = 0; c < 4; c++) {
      let mean = 0;
      for (let i = c; i < x.length; i += 4) mean += x[i];
      mean /= n;
      let v = 0;
      for (let i = c; i < x.length; i += 4) v += (x[i] - mean) ** 2;
      v /= n;
      for (let i = c; i < x.length; i += 4) expect(yt[i]).toBeCloseTo(((x[i] - mean) / Math.sqrt(v + 1e-5)) * g[c] + b[c], 5);
      expect(m.getBuffer('running_mean').dataSync()[c]).toBeCloseTo(0.9 * rm[c] + 0.1 * mean, 6);
      expect(m.getBuffer('running_var').dataSync()[c]).toBeCloseTo(0.9 * rv[c] + 0.1 * v * (n / (n - 1)), 6);
    }
    expect(m.getBuffer('num_batches_tracked').dataSync()[0]).toBe(1);
    m.dispose();
  });

  test('Embedding gathers rows', () => {
    const m = new Embedding(5, 3);
    const w = randomize(m, 10).get('weight')!;
    const y = tf.tidy(() => m.forward(tf.tensor1d([4, 0, 4], 'int32')).dataSync());
    expect(Array.from(y)).toEqual([...w.slice(12, 15), ...w.slice(0, 3), ...w.slice(12, 15)]);
    m.dispose();
  });

  test('GELU is the exact erf form, not the tanh approximation', () => {
    const xs = [-6, -3, -1.5, -0.5, 0, 0.3, 1, 2.5, 5];
    const y = tf.tidy(() => nn.gelu(tf.tensor1d(xs)).dataSync());
    xs.forEach((x, i) => expect(Math.abs(y[i] - ref.gelu(x))).toBeLessThan(2e-6));
    // The tanh approximation differs from the erf form by ~1.6e-4 near |x| = 2.
    const tanhApprox = (x: number) => 0.5 * x * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (x + 0.044715 * x ** 3)));
    expect(Math.abs(ref.gelu(2.5) - tanhApprox(2.5))).toBeGreaterThan(1e-4);
  });
});

describe('Module state dicts', () => {
  beforeAll(async () => {
    await initBackend({ backend: 'cpu', log: null });
  });

  class Net extends Module {
    readonly a = this.child('a', new Linear(3, 2));
    readonly bn = this.child('bn', new BatchNorm2d(2));
  }

  test('keys follow PyTorch order and names; save -> load is lossless', () => {
    const net = new Net();
    const sd = net.stateDict();
    expect([...sd.keys()]).toEqual([
      'a.weight',
      'a.bias',
      'bn.weight',
      'bn.bias',
      'bn.running_mean',
      'bn.running_var',
      'bn.num_batches_tracked',
    ]);
    expect(sd.get('bn.num_batches_tracked')!.data).toBeInstanceOf(BigInt64Array);
    const other = new Net();
    other.loadStateDict(sd);
    for (const [k, v] of other.stateDict()) expect(Array.from(v.data as ArrayLike<unknown>)).toEqual(Array.from(sd.get(k)!.data as ArrayLike<unknown>));
    net.dispose();
    other.dispose();
  });

  test('strict loading lists missing, unexpected and mismatched keys and changes nothing', () => {
    const net = new Net();
    const before = net.stateDict();
    const sd = new Map(before);
    sd.delete('a.bias');
    sd.set('a.extra', { shape: [1], data: new Float32Array(1) });
    sd.set('a.weight', { shape: [3, 2], data: new Float32Array(6).fill(9) });
    let err: StateDictError | undefined;
    try {
      net.loadStateDict(sd, { file: 'ckpt.pth' });
    } catch (e) {
      err = e as StateDictError;
    }
    expect(err).toBeInstanceOf(StateDictError);
    expect(err!.missing).toEqual(['a.bias']);
    expect(err!.unexpected).toEqual(['a.extra']);
    expect(err!.mismatched).toEqual([{ key: 'a.weight', expected: [2, 3], got: [3, 2] }]);
    expect(err!.message).toMatch(/^ckpt\.pth: .*missing keys: a\.bias.*unexpected keys: a\.extra.*a\.weight expected \[2,3\] got \[3,2\]/);
    expect(Array.from(net.stateDict().get('a.weight')!.data as Float32Array)).toEqual(Array.from(before.get('a.weight')!.data as Float32Array));
    net.dispose();
  });

  test('non-strict loading reports but tolerates missing and unexpected keys', () => {
    const net = new Net();
    const sd = new Map([['a.weight', { shape: [2, 3], data: new Float32Array(6).fill(1) }], ['zzz', { shape: [1], data: new Float32Array(1) }]]);
    const r = net.loadStateDict(sd, { strict: false });
    expect(r.unexpected).toEqual(['zzz']);
    expect(r.missing).toContain('a.bias');
    expect(Array.from(net.a.weight.dataSync())).toEqual([1, 1, 1, 1, 1, 1]);
    net.dispose();
  });
});
