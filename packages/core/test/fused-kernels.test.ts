// The fused wasm kernels (GELU forward / backward, depthwise filter gradient) against float64
// references, and the tf-ops paths the other backends take.
import { beforeAll, describe, expect, test } from 'vitest';
import { initBackend, nn, tf } from '@mcp-medsam/core';
import * as ref from '../../../test-utils/reference.js';
import { GELU_GRAD_KERNEL, GELU_KERNEL, hasGeluKernels } from '../src/kernels/gelu.js';
import { hasBatchNormKernels } from '../src/kernels/batch_norm.js';
import { normCdf } from '../src/kernels/norm_cdf.js';
import { WASM_BASE64 as GELU_WASM } from '../src/kernels/generated/gelu.js';
import { offsetOf, wasmExports, type WasmBackendLike } from '../src/kernels/wasm_module.js';

const INV_SQRT_2PI = 1 / Math.sqrt(2 * Math.PI);
const phi = (x: number) => 0.5 * (1 + ref.erf(x / Math.SQRT2));
/** d/dx GELU(x) = Φ(x) + x·φ(x), float64. */
const geluDeriv = (x: number) => phi(x) + x * Math.exp(-0.5 * x * x) * INV_SQRT_2PI;

/** n points spread over [lo, hi] (both ends included), as float32. */
function grid(lo: number, hi: number, n: number): Float32Array {
  return Float32Array.from({ length: n }, (_, i) => lo + ((hi - lo) * i) / (n - 1));
}

function leakCheck(f: () => void): void {
  const tensors = tf.memory().numTensors;
  const dataIds = tf.engine().backend.numDataIds();
  f();
  expect(tf.memory().numTensors, 'leaked tensors').toBe(tensors);
  expect(tf.engine().backend.numDataIds(), 'leaked backend data').toBe(dataIds);
}

describe('GELU kernels on wasm', () => {
  beforeAll(async () => {
    await initBackend({ backend: 'wasm', log: null });
  });

  test('are registered', () => {
    expect(hasGeluKernels()).toBe(true);
    expect(tf.getKernel(GELU_KERNEL, 'wasm')).toBeDefined();
    expect(tf.getKernel(GELU_GRAD_KERNEL, 'wasm')).toBeDefined();
  });

  test('the exp polynomial: relative error ≤ 1.5e-7 on [-87, 0], 0 below', () => {
    const be = tf.backend() as unknown as WasmBackendLike;
    const expNeg = wasmExports(be, GELU_WASM)!.exp_neg as (a: number, b: number, n: number) => void;
    const xs = Float32Array.from([...grid(-87, 0, 100_001), -87.01, -88, -100, -1e30, -Infinity]);
    const x = tf.tensor1d(xs);
    const y = tf.zerosLike(x);
    expNeg(offsetOf(be, x), offsetOf(be, y), xs.length);
    const got = y.dataSync();
    let worst = 0;
    for (let i = 0; i < 100_001; i++) {
      const want = Math.exp(xs[i]);
      worst = Math.max(worst, Math.abs(got[i] - want) / want);
    }
    expect(worst).toBeLessThan(1.5e-7);
    expect(Array.from(got.slice(100_001))).toEqual([0, 0, 0, 0, 0]);
    tf.dispose([x, y]);
  });

  test('forward equals x·normCdf(x) bit for bit (main loop and tails) and is finite at the extremes', () => {
    for (const n of [1, 7, 16, 37, 1003]) {
      const xs = ref.randomArray(n, 100 + n, 8);
      const [got, want] = tf.tidy(() => {
        const x = tf.tensor1d(xs);
        return [nn.gelu(x).dataSync(), tf.mul(x, normCdf(x)).dataSync()];
      });
      expect(ref.countDiff(got, want), `n = ${n}`).toBe(0);
    }
    const special = [0, -0, 1e30, -1e30, 3e38, -3e38, NaN];
    const y = tf.tidy(() => nn.gelu(tf.tensor1d(special)).dataSync());
    expect(Object.is(y[0], 0)).toBe(true);
    expect(Array.from(y.slice(1, 6), Math.abs)).toEqual([0, Math.fround(1e30), 0, Math.fround(3e38), 0]);
    expect(y[2]).toBeGreaterThan(0);
    expect(y[6]).toBeNaN();
  });

  test('forward against the float64 GELU: ≤ 2.5e-7·(1 + |x|) on [-10, 10]', () => {
    // Φ's clamped rational erf (norm_cdf.wat) has ~2e-7 abs error in float32; x·Φ(x) scales it.
    const xs = grid(-10, 10, 200_003);
    const y = tf.tidy(() => nn.gelu(tf.tensor1d(xs)).dataSync());
    let worstScaled = 0;
    let worstSmall = 0;
    xs.forEach((x, i) => {
      const err = Math.abs(y[i] - ref.gelu(x));
      worstScaled = Math.max(worstScaled, err / (1 + Math.abs(x)));
      if (Math.abs(x) <= 1) worstSmall = Math.max(worstSmall, err);
    });
    expect(worstScaled).toBeLessThan(2.5e-7);
    expect(worstSmall).toBeLessThan(3e-7);
  });

  test('gradient kernel against the float64 derivative: ≤ 4e-7 on [-10, 10]; 0 or 1 far out', () => {
    const far = [1e30, -1e30, 3e38, -3e38, 40, -40];
    const xs = Float32Array.from([...grid(-10, 10, 100_003), ...far]);
    const dys = Float32Array.from([...new Array<number>(100_003).fill(1), ...ref.randomArray(far.length, 5)]);
    const got = tf.tidy(() =>
      tf.engine().runKernel(GELU_GRAD_KERNEL, { x: tf.tensor1d(xs), dy: tf.tensor1d(dys) }),
    ) as tf.Tensor;
    const g = got.dataSync();
    got.dispose();
    let worst = 0;
    for (let i = 0; i < 100_003; i++) worst = Math.max(worst, Math.abs(g[i] - dys[i] * geluDeriv(xs[i])));
    expect(worst).toBeLessThan(4e-7);
    // Φ = 1 and x·φ(x) = 0 above, both 0 below (exp's argument underflows to 0, not NaN)
    const wantFar = far.map((x, i) => (x > 0 ? Math.abs(dys[100_003 + i]) : 0));
    expect(Array.from(g.slice(100_003), Math.abs)).toEqual(wantFar);
  });

  test('training keeps one tensor per GELU and the backward frees everything else', () => {
    const x = tf.variable(tf.tensor(ref.randomArray(2 * 5 * 5 * 8, 3, 3), [2, 5, 5, 8]));
    const dy = tf.tensor(ref.randomArray(2 * 5 * 5 * 8, 4), [2, 5, 5, 8]);
    leakCheck(() => {
      const { value, grads } = tf.variableGrads(() => tf.sum(tf.mul(nn.gelu(x), dy)) as tf.Scalar, [x]);
      const g = grads[x.name].dataSync();
      const xs = x.dataSync();
      const dys = dy.dataSync();
      g.forEach((v, i) => expect(Math.abs(v - dys[i] * geluDeriv(xs[i]))).toBeLessThan(1e-6));
      tf.dispose([value, grads[x.name]]);
    });
    // Under a tape, y = gelu(x) saves x alone (tfjs keeps a clone of it), no Φ(x).
    const engine = tf.engine() as unknown as {
      startTape(): void;
      endTape(): void;
      state: { activeTape: { kernelName: string; saved?: tf.Tensor[] }[] | null };
    };
    engine.startTape();
    let y: tf.Tensor | undefined;
    try {
      y = nn.gelu(x);
      const saved = engine.state.activeTape!.map((n) => n.saved ?? []).filter((t) => t.length > 0);
      expect(saved.length).toBe(1);
      expect(saved[0].length).toBe(1);
      expect(ref.countDiff(saved[0][0].dataSync(), x.dataSync())).toBe(0);
      tf.dispose(saved[0]);
    } finally {
      engine.endTape();
      engine.state.activeTape = null;
    }
    tf.dispose([y, x, dy]);
  });
});

describe.each(['cpu', 'wasm'] as const)('GELU gradient on %s', (backend) => {
  beforeAll(async () => {
    await initBackend({ backend, log: null });
  });

  test('matches the float64 derivative and finite differences, without leaks', () => {
    const xs = ref.randomArray(257, 21, 6);
    const dys = ref.randomArray(257, 22);
    leakCheck(() => {
      const g = tf.tidy(() =>
        tf
          .grad((x: tf.Tensor) => tf.sum(tf.mul(nn.gelu(x), tf.tensor1d(dys))))(tf.tensor1d(xs))
          .dataSync(),
      );
      const h = 1e-4;
      xs.forEach((x, i) => {
        const want = dys[i] * geluDeriv(x);
        expect(Math.abs(g[i] - want)).toBeLessThan(1e-6);
        const fd = (dys[i] * (ref.gelu(x + h) - ref.gelu(x - h))) / (2 * h);
        expect(Math.abs(g[i] - fd)).toBeLessThan(1e-6 + 1e-6 * Math.abs(fd));
      });
    });
  });
});

/** float64 dw[a, b, c] = Σ x[n, oy·sh − top + a, ox·sw − left + b, c]·dy[n, oy, ox, c]. */
function depthwiseFilterRef(
  x: ArrayLike<number>,
  [n, h, w, c]: number[],
  dy: ArrayLike<number>,
  info: tf.backend_util.Conv2DInfo,
): Float64Array {
  const { filterHeight: kh, filterWidth: kw, outHeight: oh, outWidth: ow } = info;
  const out = new Float64Array(kh * kw * c);
  for (let b = 0; b < n; b++)
    for (let oy = 0; oy < oh; oy++)
      for (let ox = 0; ox < ow; ox++)
        for (let a = 0; a < kh; a++) {
          const iy = oy * info.strideHeight - info.padInfo.top + a;
          if (iy < 0 || iy >= h) continue;
          for (let q = 0; q < kw; q++) {
            const ix = ox * info.strideWidth - info.padInfo.left + q;
            if (ix < 0 || ix >= w) continue;
            for (let ch = 0; ch < c; ch++)
              out[(a * kw + q) * c + ch] +=
                x[((b * h + iy) * w + ix) * c + ch] * dy[((b * oh + oy) * ow + ox) * c + ch];
          }
        }
  return out;
}

type Pad =
  | 'same'
  | 'valid'
  | number
  | [[number, number], [number, number], [number, number], [number, number]];

describe('depthwise filter gradient kernel (wasm)', () => {
  beforeAll(async () => {
    await initBackend({ backend: 'wasm', log: null });
  });

  const explicit: Pad = [
    [0, 0],
    [2, 0],
    [1, 3],
    [0, 0],
  ];
  test.each([
    [[1, 8, 8, 4], 3, 1, 1 as Pad],
    [[2, 7, 9, 3], 3, 1, 'same' as Pad],
    [[2, 9, 7, 5], 3, 2, 'same' as Pad],
    [[1, 11, 10, 6], 3, 2, 'valid' as Pad],
    [[2, 10, 9, 12], 3, 2, 1 as Pad],
    [[1, 9, 11, 7], 5, 1, 2 as Pad],
    [[1, 8, 9, 16], 3, [2, 1] as [number, number], 'same' as Pad],
    [[2, 6, 7, 8], 3, 1, explicit],
    [[1, 13, 12, 20], 4, 3, 'same' as Pad],
    [[1, 5, 6, 1], 2, 1, 'valid' as Pad],
  ] as [number[], number, number | [number, number], Pad][])(
    'x %j, k %i, stride %j, pad %j',
    (xShape, k, stride, pad) => {
      const c = xShape[3];
      const filterShape: [number, number, number, number] = [k, k, c, 1];
      const info = tf.backend_util.computeConv2DInfo(
        xShape as [number, number, number, number],
        filterShape,
        stride,
        1,
        pad,
        undefined,
        true,
      );
      const xs = ref.randomArray(
        xShape.reduce((p, d) => p * d, 1),
        31 + c,
        2,
      );
      const dys = ref.randomArray(
        info.outShape.reduce((p, d) => p * d, 1),
        32 + c,
      );
      leakCheck(() => {
        const got = tf.tidy(() =>
          (
            tf
              .engine()
              .runKernel(
                'DepthwiseConv2dNativeBackpropFilter',
                { x: tf.tensor(xs, xShape), dy: tf.tensor(dys, info.outShape) },
                { strides: stride, pad, dilations: 1, dimRoundingMode: undefined, filterShape } as never,
              ) as tf.Tensor
          ).dataSync(),
        );
        const want = depthwiseFilterRef(xs, xShape, dys, info);
        const scale = Math.max(...Array.from(want, Math.abs));
        expect(got.length).toBe(want.length);
        expect(ref.maxAbsDiff(got, want)).toBeLessThan(1e-5 * scale);
      });
    },
  );

  test('a 3x3 stage-0-like map (2, 64, 48, 256) within 2e-6 relative of float64', () => {
    const xShape = [2, 64, 48, 256];
    const size = xShape.reduce((p, d) => p * d, 1);
    const xs = ref.randomArray(size, 41, 3);
    const dys = ref.randomArray(size, 42);
    const info = tf.backend_util.computeConv2DInfo(
      xShape as [number, number, number, number],
      [3, 3, 256, 1],
      1,
      1,
      1,
      undefined,
      true,
    );
    const got = tf.tidy(() =>
      (
        tf
          .engine()
          .runKernel(
            'DepthwiseConv2dNativeBackpropFilter',
            { x: tf.tensor(xs, xShape), dy: tf.tensor(dys, xShape) },
            { strides: 1, pad: 1, dilations: 1, filterShape: [3, 3, 256, 1] } as never,
          ) as tf.Tensor
      ).dataSync(),
    );
    const want = depthwiseFilterRef(xs, xShape, dys, info);
    // Each tap sums 6144 products of size ~1: float64 totals are ~80; compare to the sum's scale.
    expect(ref.maxAbsDiff(got, want) / Math.sqrt(size / 256)).toBeLessThan(2e-6);
  });
});

/** float64 training-mode batch norm over rows of (rows, c) and its gradient for upstream dy. */
function batchNormRef(
  x: ArrayLike<number>,
  c: number,
  g: ArrayLike<number>,
  b: ArrayLike<number>,
  dy: ArrayLike<number>,
) {
  const rows = x.length / c;
  const mean = new Float64Array(c);
  const variance = new Float64Array(c);
  const y = new Float64Array(x.length);
  const dx = new Float64Array(x.length);
  const dWeight = new Float64Array(c);
  const dBias = new Float64Array(c);
  for (let ch = 0; ch < c; ch++) {
    let s = 0;
    for (let r = 0; r < rows; r++) s += x[r * c + ch];
    const m = s / rows;
    let q = 0;
    for (let r = 0; r < rows; r++) q += (x[r * c + ch] - m) ** 2;
    const v = q / rows;
    const inv = 1 / Math.sqrt(v + 1e-5);
    let sd = 0;
    let sdx = 0;
    for (let r = 0; r < rows; r++) {
      const xh = (x[r * c + ch] - m) * inv;
      y[r * c + ch] = xh * g[ch] + b[ch];
      sd += dy[r * c + ch];
      sdx += dy[r * c + ch] * xh;
    }
    for (let r = 0; r < rows; r++) {
      const xh = (x[r * c + ch] - m) * inv;
      dx[r * c + ch] = g[ch] * inv * (dy[r * c + ch] - sd / rows - (xh * sdx) / rows);
    }
    mean[ch] = m;
    variance[ch] = v;
    dWeight[ch] = sdx;
    dBias[ch] = sd;
  }
  return { mean, variance, y, dx, dWeight, dBias };
}

describe.each(['cpu', 'wasm'] as const)('batchNormTrain on %s', (backend) => {
  beforeAll(async () => {
    await initBackend({ backend, log: null });
  });

  test('uses the fused kernels on wasm only', () => {
    expect(hasBatchNormKernels()).toBe(backend === 'wasm');
  });

  test.each([
    [[2, 5, 7, 4], 0, 1],
    [[1, 9, 6, 5], 3, 0.5],
    [[2, 8, 8, 7], -2, 3],
    [[1, 16, 16, 256], 0, 1],
    [[2, 3, 5], 1, 2],
  ])('x %j (mean %d, scale %d) against float64, forward and backward', (shape, shift, scale) => {
    const size = shape.reduce((p, d) => p * d, 1);
    const c = shape.at(-1)!;
    const xs = ref.randomArray(size, 51 + c, scale).map((v) => v + shift);
    const dys = ref.randomArray(size, 52 + c);
    const g = ref.randomArray(c, 53).map((v) => v + 1.5);
    const b = ref.randomArray(c, 54);
    const want = batchNormRef(xs, c, g, b, dys);
    const x = tf.variable(tf.tensor(xs, shape));
    const gamma = tf.variable(tf.tensor1d(g));
    const beta = tf.variable(tf.tensor1d(b));
    const dy = tf.tensor(dys, shape);
    leakCheck(() => {
      const stats: Float32Array[] = [];
      const { value, grads } = tf.variableGrads(() => {
        const r = nn.batchNormTrain(x, gamma, beta, 1e-5);
        stats.push(r.mean.dataSync() as Float32Array, r.variance.dataSync() as Float32Array);
        tf.dispose([r.mean, r.variance]);
        return tf.sum(tf.mul(r.y, dy)) as tf.Scalar;
      }, [x, gamma, beta]);
      const y = tf.tidy(() => {
        const r = nn.batchNormTrain(x, gamma, beta, 1e-5);
        tf.dispose([r.mean, r.variance]);
        return r.y.dataSync();
      });
      const rel = (got: ArrayLike<number>, w: Float64Array) =>
        ref.maxAbsDiff(got, w) / Math.max(...Array.from(w, Math.abs));
      // float64 sums on wasm; tfjs's float32 average pool on cpu
      const tol = backend === 'wasm' ? 3e-7 : 3e-6;
      expect(ref.maxAbsDiff(stats[0], want.mean) / (Math.abs(shift) + scale)).toBeLessThan(tol);
      expect(rel(stats[1], want.variance)).toBeLessThan(tol);
      expect(ref.maxAbsDiff(y, want.y)).toBeLessThan(2e-6);
      expect(rel(grads[x.name].dataSync(), want.dx)).toBeLessThan(2e-6);
      expect(rel(grads[gamma.name].dataSync(), want.dWeight)).toBeLessThan(1e-5);
      expect(rel(grads[beta.name].dataSync(), want.dBias)).toBeLessThan(1e-5);
      tf.dispose([value, ...Object.values(grads)]);
    });
    tf.dispose([x, gamma, beta, dy]);
  });
});

describe('Identity on wasm', () => {
  beforeAll(async () => {
    await initBackend({ backend: 'wasm', log: null });
  });

  test('tf.clone shares the data and frees it with the last reference', () => {
    leakCheck(() => {
      const be = tf.backend() as unknown as WasmBackendLike;
      const a = tf.tensor([1.5, -2, 3]);
      const b = tf.clone(a);
      expect(offsetOf(be, b)).toBe(offsetOf(be, a));
      a.dispose();
      expect(Array.from(b.dataSync())).toEqual([1.5, -2, 3]);
      const c = tf.add(b, 1);
      b.dispose();
      expect(Array.from(c.dataSync())).toEqual([2.5, -1, 4]);
      c.dispose();
    });
  });
});
