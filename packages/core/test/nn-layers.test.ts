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
import { randomize } from '../../../test-utils/modules.js';

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
    expect(
      ref.maxAbsDiff(y, ref.convTranspose2d(x, shape, w.get('weight')!, 3, 2, w.get('bias')!)),
    ).toBeLessThan(1e-5);
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
      expect(ref.maxAbsDiff(y, ref.layerNorm(x, 3, 16, w.get('weight')!, w.get('bias')!, eps))).toBeLessThan(
        1e-5,
      );
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
    const expectEval = Float64Array.from(
      x,
      (v, i) => ((v - rm[i % 4]) / Math.sqrt(rv[i % 4] + 1e-5)) * g[i % 4] + b[i % 4],
    );
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
      for (let i = c; i < x.length; i += 4)
        expect(yt[i]).toBeCloseTo(((x[i] - mean) / Math.sqrt(v + 1e-5)) * g[c] + b[c], 5);
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
    const xs = [-9, -6, -3, -1.5, -0.5, -1e-3, 0, 0.3, 1, 2.5, 5, 12];
    const y = tf.tidy(() => nn.gelu(tf.tensor1d(xs)).dataSync());
    // tfjs-cpu evaluates erf with a 1.5e-7 polynomial (Abramowitz-Stegun 7.1.26), wasm exactly
    xs.forEach((x, i) => expect(Math.abs(y[i] - ref.gelu(x))).toBeLessThan(2e-7 * (1 + Math.abs(x))));
    // The tanh approximation differs from the erf form by ~1.6e-4 near |x| = 2.
    const tanhApprox = (x: number) =>
      0.5 * x * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (x + 0.044715 * x ** 3)));
    expect(Math.abs(ref.gelu(2.5) - tanhApprox(2.5))).toBeGreaterThan(1e-4);
  });

  /** Central finite differences of a float64 scalar function. */
  function fd(f: (v: Float64Array) => number, v: Float64Array, h = 1e-5): Float64Array {
    const g = new Float64Array(v.length);
    for (let i = 0; i < v.length; i++) {
      const p = Float64Array.from(v);
      p[i] += h;
      const m = Float64Array.from(v);
      m[i] -= h;
      g[i] = (f(p) - f(m)) / (2 * h);
    }
    return g;
  }

  function bnTrainRef(
    x: ArrayLike<number>,
    c: number,
    g: ArrayLike<number>,
    b: ArrayLike<number>,
  ): Float64Array {
    const n = x.length / c;
    const y = new Float64Array(x.length);
    for (let ch = 0; ch < c; ch++) {
      let m = 0;
      for (let i = ch; i < x.length; i += c) m += x[i];
      m /= n;
      let v = 0;
      for (let i = ch; i < x.length; i += c) v += (x[i] - m) ** 2;
      v /= n;
      for (let i = ch; i < x.length; i += c) y[i] = ((x[i] - m) / Math.sqrt(v + 1e-5)) * g[ch] + b[ch];
    }
    return y;
  }

  test('frozen BatchNorm2d trains as it evaluates: running statistics, no update, affine gradients', () => {
    const c = 3;
    const shape = [2, 2, 3, c];
    const size = 2 * 2 * 3 * c;
    const [g, b, mean] = [ref.randomArray(c, 71), ref.randomArray(c, 72), ref.randomArray(c, 73)];
    const variance = ref.randomArray(c, 74).map((v) => 0.5 + Math.abs(v));
    const m = new BatchNorm2d(c);
    const sd = new Map([
      ['weight', { shape: [c], data: g }],
      ['bias', { shape: [c], data: b }],
      ['running_mean', { shape: [c], data: mean }],
      ['running_var', { shape: [c], data: variance }],
    ]);
    m.loadStateDict(sd, { strict: false });
    const x = ref.randomArray(size, 75, 2);
    const evalOut = run(m.eval(), x, shape);
    expect(nn.freezeBatchNorm(m)).toBe(1);
    m.train();
    expect(ref.maxAbsDiff(run(m, x, shape), evalOut)).toBeLessThan(1e-6);
    expect(Array.from(m.getBuffer('running_mean').dataSync())).toEqual(Array.from(Float32Array.from(mean)));
    expect(m.getBuffer('num_batches_tracked').dataSync()[0]).toBe(0);

    const r = Float64Array.from(ref.randomArray(size, 76));
    const forward64 = (xv: ArrayLike<number>, gv: ArrayLike<number>, bv: ArrayLike<number>) =>
      Float64Array.from(xv, (v, i) => {
        const ch = i % c;
        return ((v - mean[ch]) / Math.sqrt(variance[ch] + 1e-5)) * gv[ch] + bv[ch];
      });
    const loss = (y: Float64Array) => y.reduce((a, v, i) => a + v * r[i], 0);
    const xt = tf.variable(tf.tensor(x, shape));
    const { grads } = tf.variableGrads(
      () => tf.sum(tf.mul(m.forward(xt), tf.tensor(Float32Array.from(r), shape))) as tf.Scalar,
      [xt, m.getParam('weight'), m.getParam('bias')],
    );
    const [dx, dg, db] = [xt, m.getParam('weight'), m.getParam('bias')].map((v) => grads[v.name].dataSync());
    const [x64, g64, b64] = [Float64Array.from(x), Float64Array.from(g), Float64Array.from(b)];
    expect(
      ref.maxAbsDiff(
        dx,
        fd((v) => loss(forward64(v, g64, b64)), x64),
      ),
    ).toBeLessThan(1e-4);
    expect(
      ref.maxAbsDiff(
        dg,
        fd((v) => loss(forward64(x64, v, b64)), g64),
      ),
    ).toBeLessThan(1e-4);
    expect(
      ref.maxAbsDiff(
        db,
        fd((v) => loss(forward64(x64, g64, v)), b64),
      ),
    ).toBeLessThan(1e-4);
    expect(nn.freezeBatchNorm(m, false)).toBe(1);
    xt.dispose();
    m.dispose();
  });

  test.each(['BatchNorm2d (train)', 'LayerNorm (train)'])('%s gradients match finite differences', (kind) => {
    const c = 4;
    const shape = [2, 3, 2, c];
    const size = 2 * 3 * 2 * c;
    const x = ref.randomArray(size, 91, 2);
    const g = ref.randomArray(c, 92);
    const b = ref.randomArray(c, 93);
    const r = Float64Array.from(ref.randomArray(size, 94));
    const forward64 = (xv: ArrayLike<number>, gv: ArrayLike<number>, bv: ArrayLike<number>) =>
      kind.startsWith('Batch') ? bnTrainRef(xv, c, gv, bv) : ref.layerNorm(xv, size / c, c, gv, bv, 1e-5);
    const loss = (y: Float64Array) => y.reduce((a, v, i) => a + v * r[i], 0);
    const m = kind.startsWith('Batch') ? new BatchNorm2d(c) : new LayerNorm(c);
    m.loadStateDict(
      new Map([
        ['weight', { shape: [c], data: g }],
        ['bias', { shape: [c], data: b }],
      ]),
      { strict: false },
    );
    m.train();
    const xt = tf.variable(tf.tensor(x, shape));
    const { grads } = tf.variableGrads(
      () => tf.sum(tf.mul(m.forward(xt), tf.tensor(Float32Array.from(r), shape))) as tf.Scalar,
      [xt, m.getParam('weight'), m.getParam('bias')],
    );
    const [dx, dg, db] = [xt, m.getParam('weight'), m.getParam('bias')].map((v) => grads[v.name].dataSync());
    const x64 = Float64Array.from(x);
    const g64 = Float64Array.from(g);
    const b64 = Float64Array.from(b);
    const check = (got: ArrayLike<number>, want: Float64Array) => {
      const scale = Math.max(...Array.from(want, Math.abs));
      expect(ref.maxAbsDiff(got, want)).toBeLessThan(1e-3 * scale + 1e-5);
    };
    check(
      dx,
      fd((v) => loss(forward64(v, g64, b64)), x64),
    );
    check(
      dg,
      fd((v) => loss(forward64(x64, v, b64)), g64),
    );
    check(
      db,
      fd((v) => loss(forward64(x64, g64, v)), b64),
    );
    xt.dispose();
    m.dispose();
  });

  test('GELU gradient matches finite differences of the float64 GELU', () => {
    const xs = Array.from(ref.randomArray(64, 77, 4));
    const w = Array.from(ref.randomArray(64, 78));
    const g = tf.tidy(() =>
      tf
        .grad((x: tf.Tensor) => tf.sum(tf.mul(nn.gelu(x), tf.tensor1d(w))))(tf.tensor1d(xs))
        .dataSync(),
    );
    const h = 1e-5;
    xs.forEach((x, i) => {
      const fd = (w[i] * (ref.gelu(x + h) - ref.gelu(x - h))) / (2 * h);
      expect(Math.abs(g[i] - fd)).toBeLessThan(1e-6 + 1e-5 * Math.abs(fd));
    });
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
    for (const [k, v] of other.stateDict())
      expect(Array.from(v.data as ArrayLike<unknown>)).toEqual(
        Array.from(sd.get(k)!.data as ArrayLike<unknown>),
      );
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
    expect(err!.message).toMatch(
      /^ckpt\.pth: .*missing keys: a\.bias.*unexpected keys: a\.extra.*a\.weight expected \[2,3\] got \[3,2\]/,
    );
    expect(Array.from(net.stateDict().get('a.weight')!.data as Float32Array)).toEqual(
      Array.from(before.get('a.weight')!.data as Float32Array),
    );
    net.dispose();
  });

  test('non-strict loading reports but tolerates missing and unexpected keys', () => {
    const net = new Net();
    const sd = new Map([
      ['a.weight', { shape: [2, 3], data: new Float32Array(6).fill(1) }],
      ['zzz', { shape: [1], data: new Float32Array(1) }],
    ]);
    const r = net.loadStateDict(sd, { strict: false });
    expect(r.unexpected).toEqual(['zzz']);
    expect(r.missing).toContain('a.bias');
    expect(Array.from(net.a.weight.dataSync())).toEqual([1, 1, 1, 1, 1, 1]);
    net.dispose();
  });
});

describe.each(['cpu', 'wasm'] as const)('gradient checkpointing on %s', (backend) => {
  beforeAll(async () => {
    await initBackend({ backend, log: null });
  });

  class Block extends Module {
    readonly conv = this.child('conv', new Conv2d(3, 5, 3, { padding: 1 }));
    readonly bn = this.child('bn', new BatchNorm2d(5));
    readonly lin = this.child('lin', new Linear(5, 3));
    forward(x: tf.Tensor): tf.Tensor {
      return tf.tidy(() => this.lin.forward(nn.gelu(this.bn.forward(this.conv.forward(x)))));
    }
  }

  test('gives the same gradients and updates BatchNorm statistics once', () => {
    const results = [false, true].map((on) => {
      const block = new Block();
      randomize(block, 101);
      block.train().setGradientCheckpointing(on);
      const x = tf.variable(tf.tensor(ref.randomArray(2 * 4 * 4 * 3, 102), [2, 4, 4, 3]));
      const w = tf.tensor(ref.randomArray(2 * 4 * 4 * 3, 103), [2, 4, 4, 3]);
      const vars = [x, ...block.namedParameters().map(([, p]) => p)];
      const { value, grads } = tf.variableGrads(
        () =>
          tf.sum(
            tf.mul(
              nn.checkpoint(block, x, (t) => block.forward(t)),
              w,
            ),
          ) as tf.Scalar,
        vars,
      );
      const out = {
        loss: value.dataSync()[0],
        grads: vars.map((v) => Array.from(grads[v.name].dataSync())),
        mean: Array.from(block.bn.getBuffer('running_mean').dataSync()),
        count: block.bn.getBuffer('num_batches_tracked').dataSync()[0],
      };
      block.dispose();
      x.dispose();
      return out;
    });
    const [plain, ckpt] = results;
    expect(ckpt.count).toBe(1);
    expect(ckpt.mean).toEqual(plain.mean);
    expect(ckpt.loss).toBeCloseTo(plain.loss, 5);
    plain.grads.forEach((g, i) => expect(ref.maxAbsDiff(ckpt.grads[i], g)).toBeLessThan(1e-5));
  });
});

describe.each(['cpu', 'wasm'] as const)('variableGradsEager on %s', (backend) => {
  beforeAll(async () => {
    await initBackend({ backend, log: null });
  });

  test('equals tf.variableGrads (shared inputs, custom gradients, checkpointed blocks) and frees the tape', () => {
    const conv = new Conv2d(3, 4, 3, { padding: 1 });
    const bn = new BatchNorm2d(4);
    const lin = new Linear(4, 2);
    const unused = tf.variable(tf.ones([2]));
    [conv, bn, lin].forEach((m, i) => randomize(m, 200 + i));
    conv.train().setGradientCheckpointing(true);
    const x = tf.variable(tf.tensor(ref.randomArray(2 * 5 * 5 * 3, 210), [2, 5, 5, 3]));
    const vars = [x, unused, ...[conv, bn, lin].flatMap((m) => m.namedParameters().map(([, p]) => p))];
    const loss = () => {
      const h = nn.checkpoint(conv, x, (t) => conv.forward(t));
      const a = nn.gelu(bn.forward(h));
      // `a` feeds two consumers: its gradient is accumulated before it is used
      return tf.add(tf.sum(tf.square(lin.forward(a))), tf.mul(tf.sum(a), 0.3)) as tf.Scalar;
    };
    const before = tf.memory().numTensors;
    const plain = tf.variableGrads(loss, vars);
    const eager = nn.variableGradsEager(loss, vars);
    expect(eager.value.dataSync()[0]).toBeCloseTo(plain.value.dataSync()[0], 5);
    expect(Object.keys(eager.grads).sort()).toEqual(Object.keys(plain.grads).sort());
    expect(eager.grads[unused.name]).toBeUndefined();
    for (const [k, g] of Object.entries(plain.grads))
      expect(ref.maxAbsDiff(eager.grads[k].dataSync(), g.dataSync())).toBeLessThan(1e-5);
    tf.dispose([plain.value, eager.value, ...Object.values(plain.grads), ...Object.values(eager.grads)]);
    // nothing but the running statistics' replacements is left behind
    expect(tf.memory().numTensors).toBe(before);
    [conv, bn, lin].forEach((m) => m.dispose());
    x.dispose();
    unused.dispose();
  });

  test('with dy: the vector-Jacobian product, equal to the gradient of sum(f · dy)', () => {
    const lin = new Linear(3, 4);
    randomize(lin, 220);
    const x = tf.variable(tf.tensor(ref.randomArray(5 * 3, 221), [5, 3]));
    const dy = tf.tensor(ref.randomArray(5 * 4, 222), [5, 4]);
    const vars = [x, ...lin.namedParameters().map(([, p]) => p)];
    const f = () => nn.gelu(lin.forward(x));
    const plain = tf.variableGrads(() => tf.sum(tf.mul(f(), dy)) as tf.Scalar, vars);
    const vjp = nn.variableGradsEager(f, vars, { dy });
    expect(vjp.value.shape).toEqual([5, 4]);
    for (const [k, g] of Object.entries(plain.grads))
      expect(ref.maxAbsDiff(vjp.grads[k].dataSync(), g.dataSync())).toBeLessThan(1e-5);
    expect(() => nn.variableGradsEager(f, vars, { dy: tf.zeros([4, 5]) })).toThrow(/dy has shape \[4,5\]/);
    expect(() => nn.variableGradsEager(f, vars)).toThrow(/must return a scalar/);
    tf.dispose([plain.value, vjp.value, dy, ...Object.values(plain.grads), ...Object.values(vjp.grads)]);
    lin.dispose();
    x.dispose();
  });
});
