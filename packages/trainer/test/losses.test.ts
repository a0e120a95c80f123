import { beforeAll, describe, expect, test } from 'vitest';
import { initBackend, InputError, nn, tf, type BackendName } from '@mcp-medsam/core';
import { readNpzFile, type NdArray } from '@mcp-medsam/io';
import { sharedPath } from '../../../test-utils/shared.js';
import { randomArray } from '../../../test-utils/reference.js';
import {
  bceWithLogits,
  contrastiveLoss,
  crossEntropy,
  DEFAULT_LOSS_WEIGHTS,
  diceLoss,
  iouLoss,
  iouTarget,
  mcpMedsamLoss,
  type LossOutputs,
} from '../src/losses.js';
import { detach, noGrad } from '../src/detach.js';

// ---------------------------------------------------------------------------------------------
// float64 references, written from the formulas of spec §9.1

const sigmoid = (x: number) => 1 / (1 + Math.exp(-x));

function refDice(z: ArrayLike<number>, g: ArrayLike<number>, b: number): number {
  const n = z.length / b;
  let total = 0;
  for (let s = 0; s < b; s++) {
    let inter = 0;
    let den = 0;
    for (let i = s * n; i < (s + 1) * n; i++) {
      const p = sigmoid(z[i]);
      inter += p * g[i];
      den += g[i] * g[i] + p * p;
    }
    total += 1 - (2 * inter + 1e-5) / (den + 1e-5);
  }
  return total / b;
}

function refBce(z: ArrayLike<number>, g: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < z.length; i++)
    s += Math.max(z[i], 0) - z[i] * g[i] + Math.log1p(Math.exp(-Math.abs(z[i])));
  return s / z.length;
}

function refCe(logits: ArrayLike<number>, b: number, k: number, idx: ArrayLike<number>): number {
  let s = 0;
  for (let r = 0; r < b; r++) {
    let m = -Infinity;
    for (let j = 0; j < k; j++) m = Math.max(m, logits[r * k + j]);
    let e = 0;
    for (let j = 0; j < k; j++) e += Math.exp(logits[r * k + j] - m);
    s += m + Math.log(e) - logits[r * k + idx[r]];
  }
  return s / b;
}

function refSim(c: ArrayLike<number>, v: ArrayLike<number>, b: number, d: number): number {
  const unit = (x: ArrayLike<number>) => {
    const out = new Float64Array(b * d);
    for (let r = 0; r < b; r++) {
      let n = 0;
      for (let j = 0; j < d; j++) n += x[r * d + j] ** 2;
      n = Math.sqrt(n);
      for (let j = 0; j < d; j++) out[r * d + j] = x[r * d + j] / n;
    }
    return out;
  };
  const cu = unit(c);
  const vu = unit(v);
  const s = new Float64Array(b * b);
  const st = new Float64Array(b * b);
  for (let i = 0; i < b; i++)
    for (let j = 0; j < b; j++) {
      let acc = 0;
      for (let t = 0; t < d; t++) acc += cu[i * d + t] * vu[j * d + t];
      s[i * b + j] = acc;
      st[j * b + i] = acc;
    }
  const labels = Array.from({ length: b }, (_, i) => i);
  return 0.5 * (refCe(s, b, b, labels) + refCe(st, b, b, labels));
}

function refIouTarget(z: ArrayLike<number>, g: ArrayLike<number>, b: number): number[] {
  const n = z.length / b;
  const out: number[] = [];
  for (let s = 0; s < b; s++) {
    let inter = 0;
    let union = 0;
    for (let i = s * n; i < (s + 1) * n; i++) {
      const p = Math.fround(sigmoid(z[i])) > 0.5;
      const t = g[i] > 0;
      if (p && t) inter++;
      if (p || t) union++;
    }
    out.push(Math.fround(inter / union));
  }
  return out;
}

/** Central differences of a float64 function of one array. */
function fd64(f: (x: Float64Array) => number, x: ArrayLike<number>, h = 1e-5): Float64Array {
  const xx = Float64Array.from(x);
  const out = new Float64Array(xx.length);
  for (let i = 0; i < xx.length; i++) {
    const x0 = xx[i];
    xx[i] = x0 + h;
    const fp = f(xx);
    xx[i] = x0 - h;
    const fm = f(xx);
    xx[i] = x0;
    out[i] = (fp - fm) / (2 * h);
  }
  return out;
}

/** max |a − b| / max |b| */
function relMaxDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let d = 0;
  let m = 0;
  for (let i = 0; i < b.length; i++) {
    d = Math.max(d, Math.abs(a[i] - b[i]));
    m = Math.max(m, Math.abs(b[i]));
  }
  return d / m;
}

const rel = (a: number, b: number) => Math.abs(a - b) / Math.abs(b);

async function useBackend(backend: BackendName): Promise<void> {
  await initBackend({ backend, log: null });
  expect(tf.getBackend()).toBe(backend);
}

// ---------------------------------------------------------------------------------------------
// the recorded training step

let npz: Record<string, NdArray>;
const scalar = (name: string) => Number((npz[name].data as Float64Array)[0]);

beforeAll(async () => {
  npz = await readNpzFile(sharedPath('fixtures/train/step-a.npz'));
});

function fixtureTensors() {
  const t = (name: string) => tf.tensor(npz[name].data as Float32Array, npz[name].shape, 'float32');
  const outputs: LossOutputs = {
    low_res_logits: t('out_logits'),
    iou: t('out_iou_pred'),
    category_logits: t('out_category_logits'),
    clip_vec: t('out_clip_vec'),
    img_vec: t('out_img_vec'),
  };
  const idx = Int32Array.from(npz.category_idx.data as BigInt64Array, Number);
  const batch = { gt: t('gt2D'), categoryIdx: tf.tensor1d(idx, 'int32') };
  return { outputs, batch, dispose: () => tf.dispose([outputs, batch] as unknown as tf.TensorContainer) };
}

describe.each(['wasm', 'cpu'] as const)('fixture step-a on %s', (backend) => {
  beforeAll(() => useBackend(backend));

  test('each loss term and the total match the PyTorch float32 values (rtol 1e-5)', () => {
    const { outputs, batch, dispose } = fixtureTensors();
    const before = tf.memory().numTensors;
    const res = mcpMedsamLoss(outputs, batch);
    const got = {
      dice: res.terms.dice.dataSync()[0],
      bce: res.terms.bce.dataSync()[0],
      iou_mse: res.terms.iou_mse.dataSync()[0],
      sim_ce: res.terms.sim_ce.dataSync()[0],
      cat_ce: res.terms.cat_ce.dataSync()[0],
      total: res.total.dataSync()[0],
    };
    const errs: Record<string, number> = {};
    for (const [k, v] of Object.entries(got)) {
      errs[k] = rel(v, scalar(`loss_${k}`));
      expect(errs[k], k).toBeLessThan(1e-5);
      // and the float64 run, which differs from the float32 one by up to 3e-5 relative
      expect(rel(v, scalar(`loss_${k}_f64`)), `${k} vs f64`).toBeLessThan(1e-4);
    }
    console.log(`[${backend}] relative error vs PyTorch float32:`, errs);

    // the standalone functions give the same numbers
    const same = (a: tf.Scalar, b: tf.Scalar) => {
      expect(a.dataSync()[0]).toBe(b.dataSync()[0]);
      a.dispose();
    };
    same(diceLoss(outputs.low_res_logits, batch.gt), res.terms.dice);
    same(bceWithLogits(outputs.low_res_logits, batch.gt), res.terms.bce);
    same(iouLoss(outputs.iou, res.iouTarget), res.terms.iou_mse);
    same(contrastiveLoss(outputs.clip_vec, outputs.img_vec), res.terms.sim_ce);
    same(crossEntropy(outputs.category_logits, batch.categoryIdx), res.terms.cat_ce);

    tf.dispose(res as unknown as tf.TensorContainer);
    expect(tf.memory().numTensors).toBe(before);
    dispose();
  });

  test('the IoU target equals out_iou_gt exactly', () => {
    const { outputs, batch, dispose } = fixtureTensors();
    const t = iouTarget(outputs.low_res_logits, batch.gt);
    expect(t.shape).toEqual([2, 1]);
    expect(Array.from(t.dataSync())).toEqual(Array.from(npz.out_iou_gt.data as Float32Array));
    expect(Array.from(t.dataSync())).toEqual(
      refIouTarget(npz.out_logits.data as Float32Array, npz.gt2D.data as Float32Array, 2),
    );
    t.dispose();
    dispose();
  });

  test('NHWC masks give the same values as NCHW', () => {
    const { outputs, batch, dispose } = fixtureTensors();
    const z = tf.reshape(outputs.low_res_logits, [2, 256, 256, 1]);
    const g = tf.reshape(batch.gt, [2, 256, 256, 1]);
    const pairs: [tf.Tensor, tf.Tensor][] = [
      [diceLoss(z, g), diceLoss(outputs.low_res_logits, batch.gt)],
      [bceWithLogits(z, g), bceWithLogits(outputs.low_res_logits, batch.gt)],
      [iouTarget(z, g), iouTarget(outputs.low_res_logits, batch.gt)],
    ];
    for (const [a, b] of pairs) expect(Array.from(a.dataSync())).toEqual(Array.from(b.dataSync()));
    tf.dispose([z, g, ...pairs.flat()]);
    dispose();
  });
});

// ---------------------------------------------------------------------------------------------
// gradients, on small random inputs

describe('gradients (cpu backend)', () => {
  beforeAll(() => useBackend('cpu'));

  const B = 2;
  const H = 8;
  const W = 8;
  const N = H * W;
  // logits kept away from 0 so that no finite-difference step crosses the IoU threshold
  const z = Float64Array.from(randomArray(B * N, 11, 2), (v) => v + Math.sign(v) * 0.1);
  const g = Float64Array.from(randomArray(B * N, 12), (v) => (v > 0.1 ? 1 : 0));
  const K = 11;
  const D = 16;
  const cat = Float64Array.from(randomArray(B * K, 13, 2));
  const idx = [3, 7];
  const clip = Float64Array.from(randomArray(B * D, 14));
  const img = Float64Array.from(randomArray(B * D, 15));
  const iouPred = Float64Array.from([0.3, 0.8]);

  const f32 = (x: ArrayLike<number>, shape: number[]) => tf.tensor(Float32Array.from(x), shape, 'float32');
  // the float32 inputs as the tf code sees them, so the float64 reference uses the same values
  const r = (x: Float64Array) => Float64Array.from(Float32Array.from(x));

  /** Analytic gradient of `lossFn` at `x`, then checked against float64 central differences. */
  function checkGrad(
    name: string,
    lossFn: (x: tf.Tensor) => tf.Scalar,
    refFn: (x: Float64Array) => number,
    x: Float64Array,
    shape: number[],
    tol = 1e-4,
  ) {
    const xt = f32(x, shape);
    const value = lossFn(xt);
    expect(rel(value.dataSync()[0], refFn(r(x))), `${name} value`).toBeLessThan(1e-5);
    const grad = tf.grad(lossFn)(xt);
    const analytic = grad.dataSync();
    const numeric = fd64(refFn, r(x));
    const err = relMaxDiff(analytic, numeric);
    expect(err, `${name} gradient`).toBeLessThan(tol);
    tf.dispose([xt, value, grad]);
    return err;
  }

  /** Float32 central differences through the tf function itself at a few coordinates. */
  function checkGradF32(lossFn: (x: tf.Tensor) => tf.Scalar, x: Float64Array, shape: number[], h: number) {
    const xt = f32(x, shape);
    const analytic = tf.grad(lossFn)(xt).dataSync();
    xt.dispose();
    const scale = Math.max(...Array.from(analytic, Math.abs));
    for (const i of [0, 5, Math.floor(x.length / 2), x.length - 1]) {
      const at = (d: number) => {
        const xx = Float32Array.from(x);
        xx[i] += d;
        const t = f32(xx, shape);
        const v = lossFn(t);
        const out = v.dataSync()[0];
        tf.dispose([t, v]);
        return out;
      };
      const numeric = (at(h) - at(-h)) / (2 * h);
      expect(Math.abs(numeric - analytic[i]), `coordinate ${i}`).toBeLessThan(1e-2 * scale);
    }
  }

  test('dice and BCE w.r.t. the logits', () => {
    const gt = f32(g, [B, 1, H, W]);
    const errs = [
      checkGrad(
        'dice',
        (x) => diceLoss(x, gt),
        (x) => refDice(x, g, B),
        z,
        [B, 1, H, W],
      ),
      checkGrad(
        'bce',
        (x) => bceWithLogits(x, gt),
        (x) => refBce(x, g),
        z,
        [B, 1, H, W],
      ),
    ];
    checkGradF32((x) => diceLoss(x, gt), z, [B, 1, H, W], 1e-2);
    checkGradF32((x) => bceWithLogits(x, gt), z, [B, 1, H, W], 1e-2);
    gt.dispose();
    console.log('gradient rel. max error (dice, bce):', errs);
  });

  test('IoU MSE w.r.t. the prediction; the target carries no gradient', () => {
    const target = Float64Array.from([0.25, 0.5]);
    const tt = f32(target, [B, 1]);
    checkGrad(
      'iou',
      (x) => iouLoss(x, tt),
      (x) => ((x[0] - target[0]) ** 2 + (x[1] - target[1]) ** 2) / 2,
      iouPred,
      [B, 1],
    );
    tt.dispose();
  });

  test('cross-entropy and contrastive loss', () => {
    const it = tf.tensor1d(idx, 'int32');
    checkGrad(
      'ce',
      (x) => crossEntropy(x, it),
      (x) => refCe(x, B, K, idx),
      cat,
      [B, K],
    );
    checkGradF32((x) => crossEntropy(x, it), cat, [B, K], 1e-2);
    const ct = f32(clip, [B, D]);
    const vt = f32(img, [B, D]);
    checkGrad(
      'sim/clip',
      (x) => contrastiveLoss(x, vt),
      (x) => refSim(x, r(img), B, D),
      clip,
      [B, D],
    );
    checkGrad(
      'sim/img',
      (x) => contrastiveLoss(ct, x),
      (x) => refSim(r(clip), x, B, D),
      img,
      [B, D],
    );
    checkGradF32((x) => contrastiveLoss(x, vt), clip, [B, D], 1e-2);
    tf.dispose([it, ct, vt]);
  });

  test('the total loss differentiates through every output with the IoU target on the tape', () => {
    const vars = {
      low_res_logits: tf.variable(f32(z, [B, 1, H, W])),
      iou: tf.variable(f32(iouPred, [B, 1])),
      category_logits: tf.variable(f32(cat, [B, K])),
      clip_vec: tf.variable(f32(clip, [B, D])),
      img_vec: tf.variable(f32(img, [B, D])),
    };
    const batch = { gt: f32(g, [B, 1, H, W]), categoryIdx: tf.tensor1d(idx, 'int32') };
    const list = Object.values(vars);
    const lossFn = () => mcpMedsamLoss(vars, batch).total;
    const target = refIouTarget(r(z), g, B);
    const refTotal = (p: Record<keyof typeof vars, Float64Array>) =>
      refDice(p.low_res_logits, g, B) +
      refBce(p.low_res_logits, g) +
      ((p.iou[0] - target[0]) ** 2 + (p.iou[1] - target[1]) ** 2) / 2 +
      0.01 * refSim(p.clip_vec, p.img_vec, B, D) +
      0.01 * refCe(p.category_logits, B, K, idx);
    const base = {
      low_res_logits: r(z),
      iou: r(iouPred),
      category_logits: r(cat),
      clip_vec: r(clip),
      img_vec: r(img),
    };

    for (const mode of ['tf.variableGrads', 'nn.variableGradsEager'] as const) {
      const { value, grads } =
        mode === 'tf.variableGrads' ? tf.variableGrads(lossFn, list) : nn.variableGradsEager(lossFn, list);
      expect(rel(value.dataSync()[0], refTotal(base)), mode).toBeLessThan(1e-5);
      for (const [key, v] of Object.entries(vars) as [keyof typeof vars, tf.Variable][]) {
        const numeric = fd64((x) => refTotal({ ...base, [key]: x }), base[key]);
        expect(relMaxDiff(grads[v.name].dataSync(), numeric), `${mode} ${key}`).toBeLessThan(1e-4);
      }
      tf.dispose([value, grads] as unknown as tf.TensorContainer);
    }
    tf.dispose([list, batch] as unknown as tf.TensorContainer);
  });
});

// ---------------------------------------------------------------------------------------------
// gradient stops

describe('detach and noGrad', () => {
  beforeAll(() => useBackend('cpu'));

  test('detach is the identity with a zero gradient', () => {
    const x = tf.tensor1d([0.5, -2, 3]);
    const d = detach(x);
    expect(Array.from(d.dataSync())).toEqual([0.5, -2, 3]);
    // d/dx Σ detach(x)·x = x (the detached factor is a constant)
    const grad = tf.grad((t: tf.Tensor) => tf.sum(tf.mul(detach(t), t)) as tf.Scalar)(x);
    expect(Array.from(grad.dataSync())).toEqual([0.5, -2, 3]);
    const zero = tf.grad((t: tf.Tensor) => tf.sum(tf.square(detach(t))) as tf.Scalar)(x);
    expect(Array.from(zero.dataSync())).toEqual([0, 0, 0]);
    tf.dispose([x, d, grad, zero]);
  });

  test('tfjs cannot back-propagate through Greater; noGrad keeps it off the tape', () => {
    const x = tf.tensor1d([0.5, -2, 3]);
    const mask = (t: tf.Tensor) => tf.cast(tf.greater(t, 0), 'float32');
    // why noGrad exists: Greater has no gradient, even behind detach
    expect(() => tf.grad((t: tf.Tensor) => tf.sum(tf.mul(t, mask(t))) as tf.Scalar)(x)).toThrow(/Greater/);
    expect(() => tf.grad((t: tf.Tensor) => tf.sum(tf.mul(t, mask(detach(t)))) as tf.Scalar)(x)).toThrow(
      /Greater/,
    );
    const grad = tf.grad(
      (t: tf.Tensor) =>
        tf.sum(
          tf.mul(
            t,
            noGrad(() => mask(t)),
          ),
        ) as tf.Scalar,
    )(x);
    expect(Array.from(grad.dataSync())).toEqual([1, 0, 1]);
    // noGrad's result is a fresh tensor, its intermediates are freed
    const before = tf.memory().numTensors;
    const y = noGrad(() => x);
    expect(y).not.toBe(x);
    expect(tf.memory().numTensors).toBe(before + 1);
    tf.dispose([x, grad, y]);
  });

  test('the IoU target has no gradient and does not break tf.grad', () => {
    const z = tf.tensor(randomArray(2 * 16, 21), [2, 1, 4, 4]);
    const g = tf.tensor(
      Float32Array.from(randomArray(2 * 16, 22), (v) => (v > 0 ? 1 : 0)),
      [2, 1, 4, 4],
    );
    // d/dz [Σ z + Σ iouTarget(z)] = 1: the target is a constant
    const grad = tf.grad((t: tf.Tensor) => tf.add(tf.sum(t), tf.sum(iouTarget(t, g))) as tf.Scalar)(z);
    expect(Array.from(grad.dataSync()).every((v) => v === 1)).toBe(true);
    // alone it is not connected to z at all (like a torch.no_grad result)
    expect(() => tf.grad((t: tf.Tensor) => tf.sum(iouTarget(t, g)) as tf.Scalar)(z)).toThrow(/y=f\(x\)/);
    tf.dispose([z, g, grad]);
  });
});

// ---------------------------------------------------------------------------------------------
// validation

describe('input validation', () => {
  beforeAll(() => useBackend('cpu'));

  const make = (b = 2, hw = 8) => ({
    outputs: {
      low_res_logits: tf.zeros([b, 1, hw, hw]),
      iou: tf.zeros([b, 1]),
      category_logits: tf.zeros([b, 11]),
      clip_vec: tf.ones([b, 16]),
      img_vec: tf.ones([b, 16]),
    } as LossOutputs,
    batch: { gt: tf.ones([b, 1, hw, hw]), categoryIdx: tf.zeros([b], 'int32') },
  });

  test('bad shapes, dtypes, indices and weights give InputErrors', () => {
    const { outputs, batch } = make();
    const cases: [string, () => unknown][] = [
      ['logits rank 3', () => diceLoss(tf.zeros([2, 8, 8]), tf.zeros([2, 8, 8]))],
      ['two channels', () => bceWithLogits(tf.zeros([2, 2, 8, 8]), tf.zeros([2, 2, 8, 8]))],
      ['gt shape', () => diceLoss(outputs.low_res_logits, tf.zeros([2, 1, 8, 4]))],
      [
        'gt dtype',
        () => iouTarget(outputs.low_res_logits, tf.complex(tf.zeros([2, 1, 8, 8]), tf.zeros([2, 1, 8, 8]))),
      ],
      ['int logits', () => diceLoss(tf.zeros([2, 1, 8, 8], 'int32'), batch.gt)],
      ['iou shape', () => iouLoss(tf.zeros([2, 2]), tf.zeros([2, 2]))],
      ['iou mismatch', () => iouLoss(tf.zeros([2, 1]), tf.zeros([3, 1]))],
      ['ce float idx', () => crossEntropy(outputs.category_logits, tf.zeros([2]))],
      ['ce idx range', () => crossEntropy(outputs.category_logits, tf.tensor1d([0, 11], 'int32'))],
      ['ce negative idx', () => crossEntropy(outputs.category_logits, tf.tensor1d([-1, 0], 'int32'))],
      ['ce idx length', () => crossEntropy(outputs.category_logits, tf.tensor1d([0], 'int32'))],
      ['sim shapes', () => contrastiveLoss(tf.ones([2, 16]), tf.ones([2, 8]))],
      ['sim rank', () => contrastiveLoss(tf.ones([16]), tf.ones([16]))],
      ['batch mismatch', () => mcpMedsamLoss({ ...outputs, iou: tf.zeros([3, 1]) }, batch)],
      ['iou (B,)', () => mcpMedsamLoss({ ...outputs, iou: tf.zeros([2]) }, batch)],
      [
        'missing output',
        () => mcpMedsamLoss({ ...outputs, img_vec: undefined } as unknown as LossOutputs, batch),
      ],
      ['gt batch', () => mcpMedsamLoss(outputs, { ...batch, gt: tf.ones([1, 1, 8, 8]) })],
      ['negative weight', () => mcpMedsamLoss(outputs, batch, { sim: -1 })],
      ['NaN weight', () => mcpMedsamLoss(outputs, batch, { dice: NaN })],
      ['unknown weight', () => mcpMedsamLoss(outputs, batch, { seg: 1 } as never)],
    ];
    for (const [name, f] of cases) expect(f, name).toThrow(InputError);
  });

  test('weights: defaults, overrides, and a zero weight drops the term', () => {
    expect(DEFAULT_LOSS_WEIGHTS).toEqual({ dice: 1, bce: 1, iou: 1, sim: 0.01, cat: 0.01 });
    const { outputs, batch } = make();
    const terms = mcpMedsamLoss(outputs, batch).terms;
    const v = (s: tf.Scalar) => s.dataSync()[0];
    const only = mcpMedsamLoss(outputs, batch, { dice: 0, bce: 0, iou: 0, sim: 0, cat: 2 });
    expect(v(only.total)).toBeCloseTo(2 * v(terms.cat_ce), 6);
    const none = mcpMedsamLoss(outputs, batch, { dice: 0, bce: 0, iou: 0, sim: 0, cat: 0 });
    expect(v(none.total)).toBe(0);
    // bool and int32 ground truth are accepted
    const asBool = diceLoss(outputs.low_res_logits, tf.cast(batch.gt, 'bool'));
    expect(v(asBool)).toBe(v(terms.dice));
  });
});
