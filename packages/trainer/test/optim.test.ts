import { readFileSync } from 'node:fs';
import { beforeAll, describe, expect, test } from 'vitest';
import { initBackend, InputError, tf } from '@mcp-medsam/core';
import { readNpzFile, type NdArray } from '@mcp-medsam/io';
import { readPthFile } from '@mcp-medsam/model';
import { sharedPath } from '../../../test-utils/shared.js';
import { randomArray } from '../../../test-utils/reference.js';
import {
  AdamW,
  ADAMW_DEFAULTS,
  clipGradNorm,
  GradAccumulator,
  gradNorms,
  PLATEAU_DEFAULTS,
  ReduceLROnPlateau,
  type ReduceLROnPlateauState,
} from '../src/optim/index.js';

beforeAll(async () => {
  await initBackend({ log: null });
});

const f32 = Math.fround;

function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  expect(a.length).toBe(b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

/** PyTorch 1.13 AdamW for one parameter, in float64 (the test's reference). */
class RefAdamW {
  m: Float64Array;
  v: Float64Array;
  step = 0;
  constructor(
    public p: Float64Array,
    public lr = 2e-4,
    public wd = 1e-3,
    public b1 = 0.9,
    public b2 = 0.999,
    public eps = 1e-8,
  ) {
    this.m = new Float64Array(p.length);
    this.v = new Float64Array(p.length);
  }
  update(g: ArrayLike<number>): void {
    this.step += 1;
    const bc1 = 1 - this.b1 ** this.step;
    const bc2 = 1 - this.b2 ** this.step;
    for (let i = 0; i < this.p.length; i++) {
      this.p[i] *= 1 - this.lr * this.wd;
      this.m[i] = this.b1 * this.m[i] + (1 - this.b1) * g[i];
      this.v[i] = this.b2 * this.v[i] + (1 - this.b2) * g[i] * g[i];
      this.p[i] -= ((this.lr / bc1) * this.m[i]) / (Math.sqrt(this.v[i]) / Math.sqrt(bc2) + this.eps);
    }
  }
}

// ---------------------------------------------------------------------------------------------
// AdamW against the recorded PyTorch step

describe('AdamW replay of step-a', () => {
  let npz: Record<string, NdArray>;
  let ckpt: Map<string, NdArray>;
  let meta: {
    grad_params: string[];
    grad_none: string[];
    grad_all_zero: string[];
    optimizer: Record<string, unknown>;
  };

  beforeAll(async () => {
    npz = await readNpzFile(sharedPath('fixtures/train/step-a.npz'));
    ckpt = (await readPthFile(sharedPath('fixtures/model/checkpoint-a.pth'))).stateDict;
    meta = JSON.parse(readFileSync(sharedPath('fixtures/train/step-a.json'), 'utf8'));
  });

  test('the fixture used the defaults', () => {
    expect(meta.optimizer).toEqual({
      name: 'AdamW',
      lr: ADAMW_DEFAULTS.lr,
      betas: ADAMW_DEFAULTS.betas,
      eps: ADAMW_DEFAULTS.eps,
      weight_decay: ADAMW_DEFAULTS.weightDecay,
      amsgrad: false,
    });
  });

  test('one step from the checkpoint with the stored gradients gives after.<name> (1e-6 abs)', () => {
    const names = [...meta.grad_params, ...meta.grad_none];
    const vars = new Map(
      names.map((n) => {
        const a = ckpt.get(n)!;
        return [n, tf.variable(tf.tensor(a.data as Float32Array, a.shape, 'float32'), true, `adamw-${n}`)];
      }),
    );
    const grads = new Map(
      meta.grad_params.map((n) => [
        n,
        tf.tensor(npz[`grad.${n}`].data as Float32Array, npz[`grad.${n}`].shape),
      ]),
    );
    const opt = new AdamW(vars);
    const before = tf.memory().numTensors;
    opt.step(grads);
    // two moment variables per parameter with a gradient, nothing else left behind
    expect(tf.memory().numTensors).toBe(before + 2 * grads.size);

    let worst = 0;
    let worstName = '';
    for (const n of meta.grad_params) {
      const d = maxAbsDiff(vars.get(n)!.dataSync(), npz[`after.${n}`].data as Float32Array);
      if (d > worst) [worst, worstName] = [d, n];
      expect(d, n).toBeLessThan(1e-6);
      expect(opt.stepCount(n)).toBe(1);
    }
    console.log(
      `AdamW replay: max |ours - after| = ${worst.toExponential(2)}${worstName ? ` (${worstName})` : ''}`,
    );

    // no gradient: untouched (no decay either), no state
    for (const n of meta.grad_none) {
      expect(Array.from(vars.get(n)!.dataSync()), n).toEqual(Array.from(ckpt.get(n)!.data as Float32Array));
      expect(opt.stepCount(n)).toBe(0);
    }
    expect(Object.keys(opt.state().params).sort()).toEqual([...meta.grad_params].sort());

    // an all-zero gradient: decayed only, p·(1 − lr·wd) in float32
    const zero = 'mask_decoder.output_hypernetworks_mlps.1.layers.0.weight';
    expect(meta.grad_all_zero).toContain(zero);
    expect((npz[`grad.${zero}`].data as Float32Array).every((v) => v === 0)).toBe(true);
    const decay = f32(1 - 2e-4 * 1e-3);
    const p0 = ckpt.get(zero)!.data as Float32Array;
    expect(Array.from(vars.get(zero)!.dataSync())).toEqual(Array.from(p0, (v) => f32(v * decay)));

    opt.dispose();
    tf.dispose([[...vars.values()], [...grads.values()]]);
  });

  test('gradNorms of the stored gradients match grad_norm', () => {
    const all = JSON.parse(readFileSync(sharedPath('fixtures/train/step-a.json'), 'utf8'))
      .param_names as string[];
    const grads = new Map(
      meta.grad_params.map((n) => [
        n,
        tf.tensor(npz[`grad.${n}`].data as Float32Array, npz[`grad.${n}`].shape),
      ]),
    );
    const norms = gradNorms(grads);
    const ref = npz.grad_norm.data as Float64Array;
    for (const n of meta.grad_params) {
      const expected = ref[all.indexOf(n)];
      const got = norms.get(n)!;
      if (expected === 0) expect(got, n).toBe(0);
      else expect(Math.abs(got - expected) / expected, n).toBeLessThan(1e-5);
    }
    tf.dispose([...grads.values()]);
  });
});

// ---------------------------------------------------------------------------------------------
// AdamW semantics

describe('AdamW', () => {
  const shapes: Record<string, number[]> = { w: [3, 4], b: [4], e: [2, 2] };
  const params = (seed: number) =>
    Object.entries(shapes).map(
      ([n, s], i) =>
        [
          n,
          tf.variable(
            tf.tensor(
              randomArray(
                s.reduce((a, c) => a * c, 1),
                seed + i,
              ),
              s,
            ),
          ),
        ] as const,
    );
  const gradsAt = (step: number, names = Object.keys(shapes)) =>
    new Map(
      names.map((n, i) => [
        n,
        tf.tensor(
          randomArray(
            shapes[n].reduce((a, c) => a * c, 1),
            100 * step + i,
          ),
          shapes[n],
        ),
      ]),
    );

  test('several steps, an lr change and per-parameter step counts follow PyTorch (float64 reference)', () => {
    const vars = params(1);
    const refs = new Map(vars.map(([n, v]) => [n, new RefAdamW(Float64Array.from(v.dataSync()))]));
    const opt = new AdamW(vars, { weightDecay: 0.05 });
    for (const r of refs.values()) r.wd = 0.05;
    // step 1: every parameter; step 2: 'e' has no gradient; steps 3-4 with a new lr
    const plan: [number, string[]][] = [
      [1, ['w', 'b', 'e']],
      [2, ['w', 'b']],
      [3, ['w', 'b', 'e']],
      [4, ['w', 'b', 'e']],
    ];
    for (const [step, names] of plan) {
      if (step === 3) {
        opt.lr = 5e-5;
        for (const r of refs.values()) r.lr = 5e-5;
      }
      const grads = gradsAt(step, names);
      opt.step(grads);
      for (const n of names) refs.get(n)!.update(grads.get(n)!.dataSync());
      tf.dispose([...grads.values()]);
    }
    expect(opt.stepCount('w')).toBe(4);
    expect(opt.stepCount('e')).toBe(3);
    const st = opt.state();
    for (const [n, v] of vars) {
      const r = refs.get(n)!;
      expect(maxAbsDiff(v.dataSync(), r.p), n).toBeLessThan(1e-6);
      expect(maxAbsDiff(st.params[n].exp_avg, r.m), n).toBeLessThan(1e-7);
      expect(maxAbsDiff(st.params[n].exp_avg_sq, r.v), n).toBeLessThan(1e-8);
      expect(st.params[n].step).toBe(r.step);
    }
    expect(st.options).toEqual({ lr: 5e-5, betas: [0.9, 0.999], eps: 1e-8, weightDecay: 0.05 });
    opt.dispose();
    tf.dispose(vars.map(([, v]) => v));
  });

  test('state() -> loadState() continues identically (two steps = one + restore + one)', () => {
    const a = params(7);
    const optA = new AdamW(a);
    const g1 = gradsAt(1);
    const g2 = gradsAt(2, ['w', 'b']);
    optA.step(g1);
    const snapshot = optA.state();
    const values = new Map(a.map(([n, v]) => [n, v.dataSync().slice()]));
    optA.step(g2);

    // a fresh optimizer over fresh variables holding the values after step 1
    const b = Object.keys(shapes).map((n) => [n, tf.variable(tf.tensor(values.get(n)!, shapes[n]))] as const);
    const optB = new AdamW(b, { lr: 1 });
    optB.loadState(snapshot);
    expect(optB.lr).toBe(ADAMW_DEFAULTS.lr);
    expect(optB.stepCount('w')).toBe(1);
    optB.step(g2);
    for (const [[n, va], [, vb]] of a.map((e, i) => [e, b[i]] as const))
      expect(Array.from(vb.dataSync()), n).toEqual(Array.from(va.dataSync()));
    const sa = optA.state();
    const sb = optB.state();
    expect(sb).toEqual(sa);

    // the snapshot is a copy: later steps do not change it
    expect(snapshot.params.w.step).toBe(1);
    optA.dispose();
    optB.dispose();
    tf.dispose([...a.map(([, v]) => v), ...b.map(([, v]) => v), ...g1.values(), ...g2.values()]);
  });

  test('validation and disposal', () => {
    const vars = params(3);
    const opt = new AdamW(vars);
    const bad: [string, () => unknown][] = [
      ['unknown grad', () => opt.step(new Map([['nope', tf.zeros([4])]]))],
      ['grad shape', () => opt.step(new Map([['b', tf.zeros([5])]]))],
      ['grad dtype', () => opt.step(new Map([['b', tf.zeros([4], 'int32')]]))],
      ['not a map', () => opt.step({ b: tf.zeros([4]) } as never)],
      ['negative lr', () => (opt.lr = -1)],
      ['NaN lr', () => new AdamW(vars, { lr: NaN })],
      ['beta 1', () => new AdamW(vars, { betas: [1, 0.999] })],
      ['duplicate', () => new AdamW([vars[0], vars[0]])],
      ['not a variable', () => new AdamW([['x', tf.zeros([2]) as tf.Variable]])],
      [
        'state for unknown',
        () =>
          opt.loadState({
            options: opt.options,
            params: {
              zz: { step: 1, shape: [1], exp_avg: new Float32Array(1), exp_avg_sq: new Float32Array(1) },
            },
          }),
      ],
      [
        'state shape',
        () =>
          opt.loadState({
            options: opt.options,
            params: {
              b: { step: 1, shape: [4], exp_avg: new Float32Array(3), exp_avg_sq: new Float32Array(4) },
            },
          }),
      ],
    ];
    for (const [name, f] of bad) expect(f, name).toThrow(InputError);
    // a failed step changed nothing
    expect(opt.stepCount('b')).toBe(0);
    const before = tf.memory().numTensors;
    const g = gradsAt(1);
    opt.step(g);
    tf.dispose([...g.values()]);
    expect(tf.memory().numTensors).toBe(before + 6);
    opt.dispose();
    expect(tf.memory().numTensors).toBe(before);
    expect(() => opt.step(new Map())).toThrow(InputError);
    tf.dispose(vars.map(([, v]) => v));
  });
});

// ---------------------------------------------------------------------------------------------
// ReduceLROnPlateau

describe('ReduceLROnPlateau', () => {
  const run = (metrics: number[], options = {}, lr = 2e-4) => {
    const holder = { lr };
    const s = new ReduceLROnPlateau(holder, options);
    return { lrs: metrics.map((m) => s.step(m)), s, holder };
  };

  test('defaults are the original script’s', () => {
    expect(PLATEAU_DEFAULTS).toEqual({
      mode: 'min',
      factor: 0.9,
      patience: 5,
      threshold: 1e-4,
      thresholdMode: 'rel',
      cooldown: 0,
      minLr: 0,
      eps: 1e-8,
    });
  });

  test('a plateau of 6 bad epochs reduces once; the count restarts after a reduction', () => {
    // epoch 1 sets the best; epochs 2-7 are 6 bad epochs (> patience 5) -> reduce at epoch 7
    const { lrs, s } = run([1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1]);
    const r1 = 2e-4 * 0.9;
    expect(lrs.slice(0, 6)).toEqual(Array(6).fill(2e-4));
    expect(lrs[6]).toBe(r1);
    // and 6 more bad epochs (8-13) reduce again at epoch 13
    expect(lrs.slice(7, 12)).toEqual(Array(5).fill(r1));
    expect(lrs[12]).toBe(r1 * 0.9);
    expect(s.numBadEpochs).toBe(0);
    expect(s.lastEpoch).toBe(13);
    expect(s.best).toBe(1);
  });

  test('5 bad epochs are not enough; an improvement resets the count', () => {
    expect(run([1, 1, 1, 1, 1, 1]).lrs.every((v) => v === 2e-4)).toBe(true);
    const { lrs, s } = run([1, 1, 1, 1, 1, 1, 0.5, 1, 1, 1, 1, 1]);
    expect(lrs.every((v) => v === 2e-4)).toBe(true);
    expect(s.numBadEpochs).toBe(5);
    expect(s.best).toBe(0.5);
  });

  test('the relative threshold: an improvement must beat best·(1 − 1e-4) strictly', () => {
    // 0.9999 = 1·(1 − 1e-4) is not better, so epochs 2-7 are bad
    const edge = run([1, 0.9999, 0.9999, 0.9999, 0.9999, 0.9999, 0.9999]);
    expect(edge.lrs[6]).toBe(2e-4 * 0.9);
    expect(edge.s.best).toBe(1);
    // 0.99989 is better: it becomes the best and nothing is reduced
    const better = run([1, 0.99989, 0.99989, 0.99989, 0.99989, 0.99989, 0.99989]);
    expect(better.lrs[6]).toBe(2e-4);
    expect(better.s.best).toBe(0.99989);
    expect(better.s.numBadEpochs).toBe(5);
    // abs mode: metric < best − threshold
    const absEdge = run([1, 0.95], { thresholdMode: 'abs', threshold: 0.05 });
    expect([absEdge.s.best, absEdge.s.numBadEpochs]).toEqual([1, 1]);
    const abs = run([1, 0.95, 0.9], { thresholdMode: 'abs', threshold: 0.05 });
    expect([abs.s.best, abs.s.numBadEpochs]).toEqual([0.9, 0]);
  });

  test('NaN counts as a bad epoch; max mode; cooldown; minLr and eps', () => {
    const nan = run([1, NaN, NaN, NaN, NaN, NaN, NaN]);
    expect(nan.lrs[6]).toBe(2e-4 * 0.9);
    const max = run([1, 1.5, 1.5, 1.5, 1.5, 1.5, 1.5, 1.5], { mode: 'max' });
    expect(max.s.best).toBe(1.5);
    expect(max.lrs[7]).toBe(2e-4 * 0.9);
    // cooldown 2 with patience 0: reduce, then two ignored epochs, then reduce again
    const cd = run([1, 1, 1, 1, 1, 1], { patience: 0, cooldown: 2 }, 1);
    expect(cd.lrs).toEqual([1, 0.9, 0.9, 0.9, 0.9 * 0.9, 0.9 * 0.9]);
    // the floor
    const floor = run([1, 1, 1, 1], { patience: 0, factor: 0.5, minLr: 0.3 }, 1);
    expect(floor.lrs).toEqual([1, 0.5, 0.3, 0.3]);
    // a reduction smaller than eps is skipped
    const tiny = run([1, 1], { patience: 0, factor: 0.5 }, 1e-8);
    expect(tiny.lrs).toEqual([1e-8, 1e-8]);
  });

  test('drives an AdamW lr', () => {
    const v = tf.variable(tf.zeros([2]));
    const opt = new AdamW([['v', v]]);
    const s = new ReduceLROnPlateau(opt);
    for (let i = 0; i < 7; i++) s.step(1);
    expect(opt.lr).toBe(2e-4 * 0.9);
    opt.dispose();
    v.dispose();
  });

  test('state round trip (also through JSON, with the initial infinite best)', () => {
    const metrics = [3, 2, 2.5, 2.5, 2.5, 2.5, 2.5, 2.5, 1.9, 2, 2, 2, 2, 2, 2, 2, 2];
    for (const cut of [0, 4, 8]) {
      const full = run(metrics, { cooldown: 1 });
      const part = run(metrics.slice(0, cut), { cooldown: 1 });
      const state = JSON.parse(JSON.stringify(part.s.state())) as ReduceLROnPlateauState;
      if (cut === 0) expect(state.best).toBeNull();
      const holder = { lr: part.holder.lr };
      const resumed = new ReduceLROnPlateau(holder, { factor: 0.5 });
      resumed.loadState(state);
      expect(resumed.state()).toEqual(part.s.state());
      const rest = metrics.slice(cut).map((m) => resumed.step(m));
      expect([...part.lrs, ...rest]).toEqual(full.lrs);
      expect(resumed.state()).toEqual(full.s.state());
    }
    expect(() => new ReduceLROnPlateau({ lr: 1 }, { factor: 1 })).toThrow(InputError);
    expect(() => new ReduceLROnPlateau({ lr: 1 }, { patience: 1.5 })).toThrow(InputError);
    expect(() =>
      new ReduceLROnPlateau({ lr: 1 }).loadState({ ...run([]).s.state(), numBadEpochs: -1 }),
    ).toThrow(InputError);
  });
});

// ---------------------------------------------------------------------------------------------
// clipping, norms, accumulation

describe('clipGradNorm and gradNorms', () => {
  const sizes: Record<string, number[]> = { big: [600, 500], mid: [64, 33], small: [7], scalar: [] };
  const make = (scale: number) =>
    new Map(
      Object.entries(sizes).map(([n, s], i) => [
        n,
        tf.tensor(
          randomArray(
            s.reduce((a, c) => a * c, 1),
            40 + i,
            scale,
          ),
          s,
        ) as tf.Tensor,
      ]),
    );
  const norm64 = (x: ArrayLike<number>) => Math.sqrt(Array.from(x).reduce((a, v) => a + v * v, 0));

  test('total norm and scaling match a float64 reference', () => {
    const grads = make(0.01);
    const host = new Map([...grads].map(([n, g]) => [n, Float64Array.from(g.dataSync())]));
    const per = new Map([...host].map(([n, g]) => [n, norm64(g)]));
    const total = norm64([...per.values()]);
    const norms = gradNorms(grads);
    for (const [n, v] of per) expect(Math.abs(norms.get(n)! - v) / v, n).toBeLessThan(1e-6);

    const olds = [...grads.values()];
    const before = tf.memory().numTensors;
    const maxNorm = 0.5;
    const got = clipGradNorm(grads, maxNorm);
    expect(Math.abs(got - total) / total).toBeLessThan(1e-6);
    expect(total).toBeGreaterThan(maxNorm);
    expect(tf.memory().numTensors).toBe(before);
    expect(olds.every((t) => t.isDisposed)).toBe(true);
    const coef = maxNorm / (total + 1e-6);
    for (const [n, g] of grads) {
      const ref = Array.from(host.get(n)!, (v) => v * coef);
      const scale = ref.reduce((m, v) => Math.max(m, Math.abs(v)), 0);
      expect(maxAbsDiff(g.dataSync(), ref) / scale, n).toBeLessThan(1e-6);
    }
    // after clipping the total norm is maxNorm
    expect(Math.abs(norm64([...gradNorms(grads).values()]) - maxNorm)).toBeLessThan(1e-6);
    tf.dispose([...grads.values()]);
  });

  test('below the limit the values are unchanged; empty maps and null entries', () => {
    const grads = make(0.001);
    const host = new Map([...grads].map(([n, g]) => [n, Array.from(g.dataSync())]));
    grads.set('none', null as unknown as tf.Tensor);
    const total = clipGradNorm(grads as Map<string, tf.Tensor | null>, 1e3);
    expect(total).toBeGreaterThan(0);
    for (const [n, v] of host) expect(Array.from(grads.get(n)!.dataSync()), n).toEqual(v);
    expect(grads.get('none')).toBeNull();
    expect(clipGradNorm(new Map(), 1)).toBe(0);
    expect(gradNorms(new Map()).size).toBe(0);
    expect(() => clipGradNorm(grads, -1)).toThrow(InputError);
    expect(() => clipGradNorm(grads, NaN)).toThrow(InputError);
    grads.delete('none');
    tf.dispose([...grads.values()]);
  });
});

describe('GradAccumulator', () => {
  test('mean of k micro-batches, a parameter missing from one, disposal', () => {
    const before = tf.memory().numTensors;
    const acc = new GradAccumulator();
    const host: Record<string, Float64Array> = { a: new Float64Array(6), b: new Float64Array(3) };
    for (let k = 0; k < 3; k++) {
      const grads = new Map<string, tf.Tensor | null>([
        ['a', tf.tensor(randomArray(6, 70 + k), [2, 3])],
        ['b', k === 1 ? null : tf.tensor(randomArray(3, 80 + k), [3])],
      ]);
      // inside a caller's tidy: the running sums must survive it
      tf.tidy(() => acc.add(grads));
      for (const [n, g] of grads) if (g) g.dataSync().forEach((v, i) => (host[n][i] += v));
      tf.dispose([...grads.values()].filter((g): g is tf.Tensor => g !== null));
    }
    expect(acc.count).toBe(3);
    expect(acc.names.sort()).toEqual(['a', 'b']);
    const mean = acc.mean();
    expect(
      maxAbsDiff(
        mean.get('a')!.dataSync(),
        Array.from(host.a, (v) => v / 3),
      ),
    ).toBeLessThan(1e-7);
    expect(
      maxAbsDiff(
        mean.get('b')!.dataSync(),
        Array.from(host.b, (v) => v / 3),
      ),
    ).toBeLessThan(1e-7);
    expect(() => acc.add(new Map([['a', tf.zeros([6])]]))).toThrow(InputError);
    expect(acc.count).toBe(3);
    tf.dispose([...mean.values()]);
    acc.reset();
    expect(acc.count).toBe(0);
    // only the rejected zeros tensor is left
    expect(tf.memory().numTensors).toBe(before + 1);
  });
});
