// Float64 reference forwards and a finite-difference gradient checker for the grad tests.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '../src/backend.js';
import { conv2dFilterGrad, registerWasmGradientKernels } from '../src/grad/index.js';
import { tf } from '../src/tf.js';
import type { Tensor } from '../src/tf.js';

type Shape4 = [number, number, number, number];

/** Small seeded PRNG (mulberry32), uniform in [-1, 1). */
function rand(n: number, seed: number): Float64Array {
  let s = seed >>> 0;
  const out = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    out[i] = (((t ^ (t >>> 14)) >>> 0) / 4294967296) * 2 - 1;
  }
  return out;
}

interface Geometry {
  sh: number;
  sw: number;
  pt: number;
  pl: number;
  oh: number;
  ow: number;
}

type Pad = 'valid' | 'same' | number;

function geometry(
  xShape: Shape4,
  fShape: Shape4,
  stride: number | [number, number],
  pad: Pad,
  depthwise = false,
): Geometry {
  const info = tf.backend_util.computeConv2DInfo(xShape, fShape, stride, 1, pad, undefined, depthwise);
  return {
    sh: info.strideHeight,
    sw: info.strideWidth,
    pt: info.padInfo.top,
    pl: info.padInfo.left,
    oh: info.outHeight,
    ow: info.outWidth,
  };
}

/** conv2d NHWC, filter [kh, kw, ci, co]. */
function conv2dRef(x: Float64Array, xs: Shape4, w: Float64Array, ws: Shape4, g: Geometry): Float64Array {
  const [n, h, wd, ci] = xs;
  const [kh, kw, , co] = ws;
  const out = new Float64Array(n * g.oh * g.ow * co);
  for (let b = 0; b < n; b++)
    for (let i = 0; i < g.oh; i++)
      for (let j = 0; j < g.ow; j++)
        for (let a = 0; a < kh; a++) {
          const y = i * g.sh + a - g.pt;
          if (y < 0 || y >= h) continue;
          for (let c = 0; c < kw; c++) {
            const xx = j * g.sw + c - g.pl;
            if (xx < 0 || xx >= wd) continue;
            for (let p = 0; p < ci; p++) {
              const xv = x[((b * h + y) * wd + xx) * ci + p];
              for (let q = 0; q < co; q++)
                out[((b * g.oh + i) * g.ow + j) * co + q] += xv * w[((a * kw + c) * ci + p) * co + q];
            }
          }
        }
  return out;
}

/** depthwiseConv2d NHWC, filter [kh, kw, c, mult]; output channel c * mult + q. */
function depthwiseRef(x: Float64Array, xs: Shape4, w: Float64Array, ws: Shape4, g: Geometry): Float64Array {
  const [n, h, wd, ch] = xs;
  const [kh, kw, , mult] = ws;
  const co = ch * mult;
  const out = new Float64Array(n * g.oh * g.ow * co);
  for (let b = 0; b < n; b++)
    for (let i = 0; i < g.oh; i++)
      for (let j = 0; j < g.ow; j++)
        for (let a = 0; a < kh; a++) {
          const y = i * g.sh + a - g.pt;
          if (y < 0 || y >= h) continue;
          for (let c = 0; c < kw; c++) {
            const xx = j * g.sw + c - g.pl;
            if (xx < 0 || xx >= wd) continue;
            for (let p = 0; p < ch; p++)
              for (let q = 0; q < mult; q++)
                out[((b * g.oh + i) * g.ow + j) * co + p * mult + q] +=
                  x[((b * h + y) * wd + xx) * ch + p] * w[((a * kw + c) * ch + p) * mult + q];
          }
        }
  return out;
}

/** conv2dTranspose: x [n, ih, iw, ic], filter [kh, kw, oc, ic], output [n, H, W, oc]; g from the conv out -> x. */
function conv2dTransposeRef(
  x: Float64Array,
  xs: Shape4,
  w: Float64Array,
  ws: Shape4,
  outShape: Shape4,
  g: Geometry,
): Float64Array {
  const [n, ih, iw, ic] = xs;
  const [kh, kw, oc] = ws;
  const [, H, W] = outShape;
  const out = new Float64Array(n * H * W * oc);
  for (let b = 0; b < n; b++)
    for (let i = 0; i < ih; i++)
      for (let j = 0; j < iw; j++)
        for (let a = 0; a < kh; a++) {
          const y = i * g.sh + a - g.pt;
          if (y < 0 || y >= H) continue;
          for (let c = 0; c < kw; c++) {
            const xx = j * g.sw + c - g.pl;
            if (xx < 0 || xx >= W) continue;
            for (let q = 0; q < ic; q++) {
              const xv = x[((b * ih + i) * iw + j) * ic + q];
              for (let p = 0; p < oc; p++)
                out[((b * H + y) * W + xx) * oc + p] += xv * w[((a * kw + c) * oc + p) * ic + q];
            }
          }
        }
  return out;
}

/** matMul with transpose flags and numpy-style batch broadcasting. */
function matMulRef(
  a: Float64Array,
  as: number[],
  b: Float64Array,
  bs: number[],
  tA: boolean,
  tB: boolean,
): { out: Float64Array; shape: number[] } {
  const ar = as.length;
  const br = bs.length;
  const m = tA ? as[ar - 1] : as[ar - 2];
  const k = tA ? as[ar - 2] : as[ar - 1];
  const n = tB ? bs[br - 2] : bs[br - 1];
  const aB = as.slice(0, -2);
  const bB = bs.slice(0, -2);
  const r = Math.max(aB.length, bB.length);
  const pa = [...Array(r - aB.length).fill(1), ...aB];
  const pb = [...Array(r - bB.length).fill(1), ...bB];
  const oB = pa.map((d, i) => Math.max(d, pb[i]));
  const nO = oB.reduce((p, d) => p * d, 1);
  const out = new Float64Array(nO * m * n);
  const idx = (flat: number, shape: number[]) => {
    let off = 0;
    let stride = 1;
    let rest = flat;
    const coords: number[] = [];
    for (let i = oB.length - 1; i >= 0; i--) {
      coords[i] = rest % oB[i];
      rest = Math.floor(rest / oB[i]);
    }
    for (let i = shape.length - 1; i >= 0; i--) {
      off += (shape[i] === 1 ? 0 : coords[i]) * stride;
      stride *= shape[i];
    }
    return off;
  };
  for (let o = 0; o < nO; o++) {
    const ao = idx(o, pa) * m * k;
    const bo = idx(o, pb) * k * n;
    for (let i = 0; i < m; i++)
      for (let j = 0; j < n; j++) {
        let s = 0;
        for (let p = 0; p < k; p++) {
          const av = tA ? a[ao + p * m + i] : a[ao + i * k + p];
          const bv = tB ? b[bo + j * k + p] : b[bo + p * n + j];
          s += av * bv;
        }
        out[(o * m + i) * n + j] = s;
      }
  }
  return { out, shape: [...oB, m, n] };
}

interface Input {
  shape: number[];
  data: Float64Array;
}

function norm(v: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < v.length; i++) s += v[i] * v[i];
  return Math.sqrt(s);
}

function relErr(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let d = 0;
  for (let i = 0; i < a.length; i++) d += (a[i] - b[i]) ** 2;
  return Math.sqrt(d) / Math.max(norm(b), 1e-30);
}

/** Largest elementwise error relative to the largest reference magnitude. */
function maxErr(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let d = 0;
  let m = 0;
  for (let i = 0; i < a.length; i++) {
    d = Math.max(d, Math.abs(a[i] - b[i]));
    m = Math.max(m, Math.abs(b[i]));
  }
  return d / Math.max(m, 1e-30);
}

/** Analytic gradients of sum(f(xs) * r) (float32, on the active backend) and the forward output. */
function analyticGrads(
  inputs: Input[],
  f: (xs: Tensor[]) => Tensor,
  r: Float64Array,
): { grads: Float32Array[]; out: Float32Array; outShape: number[] } {
  return tf.tidy(() => {
    const xs = inputs.map((i) => tf.tensor(Float32Array.from(i.data), i.shape));
    const out = f(xs);
    const rt = tf.tensor(Float32Array.from(r), out.shape);
    // Upstream gradient r: the gradient of sum(f(xs) * r) without needing Sum/Mul gradients.
    const g = tf.grads((...ts: Tensor[]) => f(ts))(xs, rt);
    return {
      grads: g.map((t) => t.dataSync() as Float32Array),
      out: out.dataSync() as Float32Array,
      outShape: out.shape,
    };
  });
}

/** Central finite differences (float64) of sum(ref(xs) * r). */
function numericGrads(
  inputs: Input[],
  ref: (xs: Float64Array[]) => Float64Array,
  r: Float64Array,
  eps = 1e-3,
): Float64Array[] {
  const data = inputs.map((i) => Float64Array.from(i.data));
  const loss = () => {
    const o = ref(data);
    let s = 0;
    for (let i = 0; i < o.length; i++) s += o[i] * r[i];
    return s;
  };
  return data.map((d) => {
    const g = new Float64Array(d.length);
    for (let e = 0; e < d.length; e++) {
      const v = d[e];
      d[e] = v + eps;
      const lp = loss();
      d[e] = v - eps;
      const lm = loss();
      d[e] = v;
      g[e] = (lp - lm) / (2 * eps);
    }
    return g;
  });
}

// ---------------------------------------------------------------------------------------------
// Cases

interface Case {
  name: string;
  inputs: Input[];
  f: (xs: Tensor[]) => Tensor;
  ref: (xs: Float64Array[]) => Float64Array;
  outSize: number;
}

let seed = 1;
const input = (shape: number[]): Input => ({
  shape,
  data: rand(
    shape.reduce((p, d) => p * d, 1),
    seed++,
  ),
});

function convCase(xs: Shape4, k: number, co: number, stride: number | [number, number], pad: Pad): Case {
  const ws: Shape4 = [k, k, xs[3], co];
  const g = geometry(xs, ws, stride, pad);
  return {
    name: `conv2d x${xs} k${k} co${co} s${stride} pad ${pad}`,
    inputs: [input(xs), input(ws)],
    f: ([x, w]) => tf.conv2d(x as tf.Tensor4D, w as tf.Tensor4D, stride, pad),
    ref: ([x, w]) => conv2dRef(x, xs, w, ws, g),
    outSize: xs[0] * g.oh * g.ow * co,
  };
}

function depthwiseCase(xs: Shape4, k: number, mult: number, stride: number, pad: Pad): Case {
  const ws: Shape4 = [k, k, xs[3], mult];
  const g = geometry(xs, ws, stride, pad, true);
  return {
    name: `depthwise x${xs} k${k} m${mult} s${stride} pad ${pad}`,
    inputs: [input(xs), input(ws)],
    f: ([x, w]) => tf.depthwiseConv2d(x as tf.Tensor4D, w as tf.Tensor4D, stride, pad),
    ref: ([x, w]) => depthwiseRef(x, xs, w, ws, g),
    outSize: xs[0] * g.oh * g.ow * xs[3] * mult,
  };
}

function transposeCase(
  xs: Shape4,
  k: number,
  oc: number,
  stride: number,
  pad: Pad,
  outHW: [number, number],
): Case {
  const ws: Shape4 = [k, k, oc, xs[3]];
  const outShape: Shape4 = [xs[0], outHW[0], outHW[1], oc];
  const g = geometry(outShape, [k, k, oc, xs[3]], stride, pad);
  return {
    name: `conv2dTranspose x${xs} k${k} oc${oc} s${stride} pad ${pad} -> ${outHW}`,
    inputs: [input(xs), input(ws)],
    f: ([x, w]) => tf.conv2dTranspose(x as tf.Tensor4D, w as tf.Tensor4D, outShape, stride, pad),
    ref: ([x, w]) => conv2dTransposeRef(x, xs, w, ws, outShape, g),
    outSize: outShape.reduce((p, d) => p * d, 1),
  };
}

function gatherCase(table: [number, number], indices: number[], indexShape: number[]): Case {
  return {
    name: `gather table${table} indices${indexShape}`,
    inputs: [input(table)],
    f: ([t]) => tf.gather(t, tf.tensor(indices, indexShape, 'int32'), 0),
    ref: ([t]) => {
      const out = new Float64Array(indices.length * table[1]);
      indices.forEach((ix, i) => {
        for (let j = 0; j < table[1]; j++) out[i * table[1] + j] = t[ix * table[1] + j];
      });
      return out;
    },
    outSize: indices.length * table[1],
  };
}

function matMulCase(as: number[], bs: number[], tA: boolean, tB: boolean): Case {
  const outShape = matMulRef(
    new Float64Array(as.reduce((p, d) => p * d, 1)),
    as,
    new Float64Array(bs.reduce((p, d) => p * d, 1)),
    bs,
    tA,
    tB,
  ).shape;
  return {
    name: `matMul a${as} b${bs} tA=${tA} tB=${tB}`,
    inputs: [input(as), input(bs)],
    f: ([a, b]) => tf.matMul(a, b, tA, tB),
    ref: ([a, b]) => matMulRef(a, as, b, bs, tA, tB).out,
    outSize: outShape.reduce((p, d) => p * d, 1),
  };
}

/** leakyRelu on values kept 0.01 away from the kink (the finite differences step 1e-3). */
function leakyReluCase(shape: number[], alpha: number): Case {
  const x = input(shape);
  x.data = x.data.map((v) => v + Math.sign(v || 1) * 0.01);
  return {
    name: `leakyRelu x${shape} alpha ${alpha}`,
    inputs: [x],
    f: ([t]) => tf.leakyRelu(t, alpha),
    ref: ([t]) => t.map((v) => (v > 0 ? v : alpha * v)),
    outSize: x.data.length,
  };
}

/** Small shapes: checked against float64 finite differences. */
function smallCases(): Case[] {
  seed = 1;
  const cases: Case[] = [];
  for (const [k, stride, pad] of [
    [3, 1, 1],
    [3, 1, 'same'],
    [3, 1, 'valid'],
    [3, 2, 1],
    [3, 2, 'same'],
    [3, 2, 'valid'],
    [1, 1, 0],
    [1, 1, 'same'],
    [1, 2, 'valid'],
    [1, 2, 'same'],
    [5, 1, 2],
    [5, 2, 2],
    [5, 1, 'same'],
    [2, 2, 'valid'],
  ] as [number, number, Pad][]) {
    cases.push(convCase([2, 7, 6, 3], k, 4, stride, pad));
  }
  cases.push(convCase([1, 8, 8, 2], 3, 3, 2, 1));
  cases.push(convCase([1, 7, 9, 2], 3, 2, [2, 1], 'same'));
  for (const [k, stride, pad, mult] of [
    [3, 1, 1, 1],
    [3, 2, 1, 1],
    [3, 1, 'same', 1],
    [3, 2, 'same', 1],
    [3, 2, 'valid', 1],
    [5, 1, 2, 1],
    [3, 1, 1, 2],
  ] as [number, number, Pad, number][]) {
    cases.push(depthwiseCase([2, 7, 6, 3], k, mult, stride, pad));
  }
  cases.push(depthwiseCase([1, 8, 8, 4], 3, 1, 2, 1));
  cases.push(transposeCase([2, 3, 4, 3], 2, 5, 2, 'valid', [6, 8]));
  cases.push(transposeCase([1, 4, 4, 3], 2, 2, 2, 0, [8, 8]));
  cases.push(transposeCase([1, 4, 3, 2], 3, 3, 2, 'same', [8, 6]));
  cases.push(transposeCase([1, 5, 5, 2], 3, 2, 1, 1, [5, 5]));
  cases.push(gatherCase([7, 5], [4, 1, 3, 1, 6, 4], [6]));
  cases.push(gatherCase([5, 3], [0, 2, 2, 4, 0, 1], [2, 3]));
  for (const tA of [false, true]) {
    for (const tB of [false, true]) {
      cases.push(matMulCase(tA ? [4, 3] : [3, 4], tB ? [5, 4] : [4, 5], tA, tB));
      cases.push(matMulCase(tA ? [3, 4, 3] : [3, 3, 4], tB ? [3, 5, 4] : [3, 4, 5], tA, tB));
      cases.push(matMulCase(tA ? [2, 3, 4, 3] : [2, 3, 3, 4], tB ? [2, 3, 5, 4] : [2, 3, 4, 5], tA, tB));
      cases.push(matMulCase(tA ? [3, 4, 3] : [3, 3, 4], tB ? [5, 4] : [4, 5], tA, tB)); // shared weight
      cases.push(matMulCase(tA ? [4, 3] : [3, 4], tB ? [2, 5, 4] : [2, 4, 5], tA, tB)); // shared left side
    }
  }
  cases.push(matMulCase([2, 3, 3, 4], [3, 4, 5], false, false)); // partial broadcast (leading dims)
  cases.push(matMulCase([2, 3, 4, 3], [3, 5, 4], true, true));
  cases.push(matMulCase([1, 3, 4], [3, 5, 4], false, true));
  // The SIMD batched kernel's K blocks (256) with edge tiles (M % 4, N % 8), every flag pair,
  // and the weight-gradient path (a shared right side: x(rows, k)ᵀ·dy on wasm).
  for (const tA of [false, true])
    for (const tB of [false, true])
      cases.push(matMulCase(tA ? [2, 300, 5] : [2, 5, 300], tB ? [2, 9, 300] : [2, 300, 9], tA, tB));
  cases.push(matMulCase([2, 300, 6], [6, 3], false, false));
  cases.push(leakyReluCase([2, 3, 5, 7], 0.1)); // the SIMD loop and its scalar tail
  return cases;
}

/** Medium shapes: wasm against cpu. */
function mediumCases(): Case[] {
  seed = 1000;
  return [
    convCase([2, 16, 16, 24], 3, 32, 1, 1),
    convCase([2, 17, 15, 16], 3, 24, 2, 1),
    convCase([1, 16, 16, 32], 1, 48, 1, 0),
    convCase([1, 20, 20, 8], 5, 16, 2, 'same'),
    depthwiseCase([2, 16, 16, 32], 3, 1, 1, 1),
    depthwiseCase([2, 17, 17, 32], 3, 1, 2, 1),
    transposeCase([2, 8, 8, 32], 2, 16, 2, 'valid', [16, 16]),
    gatherCase(
      [50, 16],
      Array.from({ length: 40 }, (_, i) => (i * 7) % 50),
      [40],
    ),
    matMulCase([64, 48], [48, 40], false, false),
    matMulCase([64, 48], [40, 48], false, true),
    matMulCase([24, 49, 32], [24, 49, 32], false, true),
    matMulCase([2, 6, 49, 49], [2, 6, 49, 32], false, false),
    matMulCase([4, 49, 32], [32, 64], false, false),
    matMulCase([6, 49, 49], [6, 49, 32], true, false),
    matMulCase([6, 49, 32], [6, 49, 32], true, false),
    matMulCase([6, 49, 49], [6, 32, 49], false, true),
    matMulCase([2, 4096, 8], [8, 4], false, false),
    convCase([2, 64, 64, 16], 3, 16, 1, 1),
    convCase([1, 64, 64, 8], 1, 4, 1, 0),
    depthwiseCase([2, 32, 32, 8], 3, 1, 2, 1),
  ];
}

function checkAgainstFiniteDifferences(c: Case): void {
  const r = rand(c.outSize, 4242);
  const { grads, out } = analyticGrads(c.inputs, c.f, r);
  const ref = c.ref(c.inputs.map((i) => i.data));
  expect(out.length, `${c.name}: output size`).toBe(ref.length);
  expect(maxErr(out, ref), `${c.name}: forward`).toBeLessThan(1e-5);
  const numeric = numericGrads(c.inputs, c.ref, r);
  grads.forEach((g, i) => {
    expect(g.length, `${c.name}: grad ${i} size`).toBe(numeric[i].length);
    expect(relErr(g, numeric[i]), `${c.name}: grad ${i} rel. to norm`).toBeLessThan(1e-3);
    expect(maxErr(g, numeric[i]), `${c.name}: grad ${i} max`).toBeLessThan(1e-3);
  });
}

for (const backend of ['cpu', 'wasm'] as const) {
  describe(`gradients on ${backend} vs float64 finite differences`, () => {
    beforeAll(async () => {
      await initBackend({ backend, log: null });
    });
    for (const c of smallCases()) {
      it(c.name, () => {
        const before = tf.memory().numTensors;
        const dataIds = tf.engine().backend.numDataIds();
        checkAgainstFiniteDifferences(c);
        expect(tf.memory().numTensors, 'leaked tensors').toBe(before);
        expect(tf.engine().backend.numDataIds(), 'leaked backend data').toBe(dataIds);
      });
    }
  });
}

describe('wasm gradients match cpu on medium shapes', () => {
  const cpu = new Map<string, { grads: Float32Array[]; out: Float32Array }>();
  beforeAll(async () => {
    await initBackend({ backend: 'cpu', log: null });
    for (const c of mediumCases()) cpu.set(c.name, analyticGrads(c.inputs, c.f, rand(c.outSize, 77)));
    await initBackend({ backend: 'wasm', log: null });
  });
  for (const c of mediumCases()) {
    it(c.name, () => {
      const before = tf.memory().numTensors;
      const dataIds = tf.engine().backend.numDataIds();
      const w = analyticGrads(c.inputs, c.f, rand(c.outSize, 77));
      const ref = cpu.get(c.name);
      expect(ref).toBeDefined();
      expect(relErr(w.out, ref!.out), 'forward').toBeLessThan(1e-5);
      w.grads.forEach((g, i) => expect(relErr(g, ref!.grads[i]), `grad ${i}`).toBeLessThan(1e-5));
      expect(tf.memory().numTensors).toBe(before);
      expect(tf.engine().backend.numDataIds()).toBe(dataIds);
    });
  }
});

describe('the conv filter gradient without the SIMD matMul (im2col form) equals the kernel', () => {
  beforeAll(async () => {
    await initBackend({ backend: 'wasm', log: null });
  });
  for (const [xs, k, co, stride, pad] of [
    [[2, 9, 8, 5], 3, 6, 1, 1],
    [[1, 9, 9, 4], 3, 5, 2, 'same'],
    [[2, 6, 6, 3], 1, 4, 1, 0],
  ] as [Shape4, number, number, number, Pad][]) {
    it(`x${xs} k${k} co${co} s${stride} pad ${pad}`, () => {
      const [got, want] = tf.tidy(() => {
        const x = tf.tensor4d(
          Float32Array.from(
            rand(
              xs.reduce((p, d) => p * d, 1),
              5,
            ),
          ),
          xs,
        );
        const g = geometry(xs, [k, k, xs[3], co], stride, pad);
        const dy = tf.tensor4d(Float32Array.from(rand(xs[0] * g.oh * g.ow * co, 6)), [xs[0], g.oh, g.ow, co]);
        const filterShape: Shape4 = [k, k, xs[3], co];
        const kernel = tf.engine().runKernel('Conv2DBackpropFilter', { x, dy }, {
          strides: stride,
          pad,
          dataFormat: 'NHWC',
          dimRoundingMode: undefined,
          filterShape,
        } as unknown as tf.NamedAttrMap) as Tensor;
        return [conv2dFilterGrad(x, dy, filterShape, stride, pad, undefined).dataSync(), kernel.dataSync()];
      });
      expect(maxErr(got, want)).toBeLessThan(1e-5);
    });
  }
});

describe('registration', () => {
  afterAll(async () => {
    await initBackend({ backend: 'wasm', log: null });
  });
  it('is idempotent and quiet', async () => {
    const warnings: unknown[] = [];
    const warn = console.warn;
    console.warn = (...args: unknown[]) => void warnings.push(args);
    try {
      await initBackend({ backend: 'wasm', log: null });
      const k = tf.getKernel('Conv2DBackpropFilter', 'wasm');
      registerWasmGradientKernels();
      registerWasmGradientKernels();
      await initBackend({ backend: 'cpu', log: null });
      await initBackend({ backend: 'wasm', log: null });
      expect(tf.getKernel('Conv2DBackpropFilter', 'wasm')).toBe(k);
      for (const name of [
        'Conv2DBackpropInput',
        'DepthwiseConv2dNativeBackpropInput',
        'DepthwiseConv2dNativeBackpropFilter',
        'UnsortedSegmentSum',
      ]) {
        expect(tf.getKernel(name, 'wasm'), name).toBeDefined();
      }
    } finally {
      console.warn = warn;
    }
    expect(warnings).toEqual([]);
  });
});
