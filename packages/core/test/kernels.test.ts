import { expect, test } from 'vitest';
import { initBackend, tf } from '@mcp-medsam/core';
import { maxAbsDiff, randomArray } from '../../../test-utils/reference.js';

/** Products on wasm (the SIMD kernel, XNNPACK or tfjs's fallback) against a float64 loop. */
test.each([
  [[7, 5, 3], [7, 3, 6], false, false],
  [[2, 3, 49, 32], [2, 3, 32, 49], false, false],
  [[4, 9, 16], [4, 16, 1], false, false],
  [[3, 4, 5], [3, 6, 5], false, true],
  [[3, 5, 4], [3, 5, 6], true, false],
  [[3, 5, 4], [3, 6, 5], true, true],
  [[5, 49, 32], [5, 49, 32], false, true], // attention scores: edge tiles in M and N
  [[5, 49, 49], [5, 49, 32], true, false], // their gradient
  [[3, 4, 5], [1, 5, 2], false, false], // one side broadcast
  [[3, 5, 4], [5, 2], true, false],
  [[1, 13, 7], [3, 13, 9], true, false],
  [[2, 3, 5, 4], [3, 4, 6], false, false], // broadcast of the leading batch dims: tfjs's kernel
  [[1, 8, 4], [1, 4, 8], false, false], // batch 1 without flags: XNNPACK
  [[37, 61], [37, 29], true, false], // batch 1 with flags: the SIMD kernel
  [[61, 37], [29, 37], false, true],
  [[1000, 7], [1000, 13], true, false], // K in several blocks of 256, edge tiles in both
  [[2, 6, 700], [2, 700, 16], false, false],
  [[0, 5], [0, 3], true, false], // K = 0: zeros
])('wasm batched matMul %j x %j (transposeA=%s, transposeB=%s)', async (sa, sb, ta, tb) => {
  await initBackend({ backend: 'wasm', log: null });
  const na = sa.reduce((p, d) => p * d, 1);
  const nb = sb.reduce((p, d) => p * d, 1);
  const a = randomArray(na, 11);
  const b = randomArray(nb, 12);
  const got = tf.tidy(() => tf.matMul(tf.tensor(a, sa), tf.tensor(b, sb), ta, tb).dataSync());
  const [m, k] = ta ? [sa.at(-1)!, sa.at(-2)!] : [sa.at(-2)!, sa.at(-1)!];
  const n = tb ? sb.at(-2)! : sb.at(-1)!;
  const batch = got.length / (m * n);
  const want = new Float64Array(batch * m * n);
  for (let q = 0; q < batch; q++) {
    // batch index of each side (a broadcast side repeats)
    const qa = m * k ? q % (na / (m * k)) : 0;
    const qb = k * n ? q % (nb / (k * n)) : 0;
    for (let i = 0; i < m; i++)
      for (let j = 0; j < n; j++) {
        let s = 0;
        for (let t = 0; t < k; t++) {
          const av = ta ? a[qa * m * k + t * m + i] : a[qa * m * k + i * k + t];
          const bv = tb ? b[qb * k * n + j * k + t] : b[qb * k * n + t * n + j];
          s += av * bv;
        }
        want[(q * m + i) * n + j] = s;
      }
  }
  expect(got.length).toBe(want.length);
  // float32 sums of up to 1000 products of values in [-1, 1)
  expect(maxAbsDiff(got, want)).toBeLessThan(k > 100 ? 1e-4 : 1e-5);
});

/** Sums over leading axes (the SIMD column sum) and others (tfjs's kernel) against float64 sums. */
test.each([
  [[4096, 32], [0], false],
  [[64, 2, 49, 49], [0], false],
  [[2, 64, 64, 16], [0, 1, 2], true],
  [[7, 3], [0], true],
  [[5, 6, 7], [1, 0], false],
  [[9, 5], [1], false], // innermost: tfjs's kernel
  [[3, 4, 5], [0, 2], false], // not a leading run: tfjs's kernel
  [[6], [0], false], // a full reduction: tfjs's kernel
])('wasm sum of %j over %j (keepDims %s)', async (shape, axes, keepDims) => {
  await initBackend({ backend: 'wasm', log: null });
  const n = shape.reduce((p, d) => p * d, 1);
  const x = randomArray(n, 13);
  const t = tf.tensor(x, shape);
  const got = tf.sum(t, axes, keepDims);
  const kept = shape.map((d, i) => (axes.includes(i) ? 1 : d));
  expect(got.shape).toEqual(keepDims ? kept : shape.filter((_, i) => !axes.includes(i)));
  const want = new Float64Array(kept.reduce((p, d) => p * d, 1));
  const strides = shape.map((_, i) => shape.slice(i + 1).reduce((p, d) => p * d, 1));
  for (let f = 0; f < n; f++) {
    let o = 0;
    for (let i = 0; i < shape.length; i++)
      if (!axes.includes(i)) o = o * shape[i] + (Math.floor(f / strides[i]) % shape[i]);
    want[o] += x[f];
  }
  // float32 running sums: the rounding error grows with the number of terms
  const terms = n / want.length;
  expect(maxAbsDiff(got.dataSync(), want)).toBeLessThan(2e-7 * terms + 1e-6);
  tf.dispose([t, got]);
});

/** Broadcasting add / sub / mul (the SIMD rows, or tfjs's kernel) against float32 arithmetic, exactly. */
test.each([
  [[64, 16, 8], [8]], // suffix: a bias
  [[8], [64, 16, 8]],
  [
    [64, 16, 8],
    [64, 16, 1],
  ], // prefix: a per-row value
  [
    [64, 16, 1],
    [64, 16, 8],
  ],
  [
    [6, 1, 16, 16],
    [6, 1, 16, 1],
  ],
  [
    [5, 1, 8],
    [1, 8],
  ],
  [
    [1, 5, 8],
    [1, 1, 8],
  ], // unit axes of the output take no part
  [
    [1, 5, 8],
    [1, 5, 1],
  ],
  [
    [2, 4, 3, 8],
    [1, 4, 1, 8],
  ], // neither pattern: tfjs's kernel
  [[7, 6], [6]], // rows of 6 values: tfjs's kernel
  [
    [7, 8],
    [7, 8],
  ], // same shapes: tfjs's kernel
  [[7, 8], []], // a scalar: tfjs's kernel
])('wasm broadcast binary ops %j with %j', async (sa, sb) => {
  await initBackend({ backend: 'wasm', log: null });
  const a = randomArray(
    sa.reduce((p, d) => p * d, 1),
    21,
  );
  const b = randomArray(
    sb.reduce((p, d) => p * d, 1),
    22,
  );
  const out = tf.broadcast_util.assertAndGetBroadcastShape(sa, sb);
  const r = out.length;
  const idx = (shape: number[], o: number[]) => {
    const s = [...Array<number>(r - shape.length).fill(1), ...shape];
    return s.reduce((f, d, i) => f * d + (d === 1 ? 0 : o[i]), 0);
  };
  const ops: [string, (x: tf.Tensor, y: tf.Tensor) => tf.Tensor, (x: number, y: number) => number][] = [
    ['add', tf.add, (x, y) => x + y],
    ['sub', tf.sub, (x, y) => x - y],
    ['mul', tf.mul, (x, y) => x * y],
  ];
  for (const [name, op, f] of ops) {
    const got = tf.tidy(() => {
      const t = op(tf.tensor(a, sa), tf.tensor(b, sb));
      expect(t.shape, name).toEqual(out);
      return t.dataSync();
    });
    const n = out.reduce((p, d) => p * d, 1);
    let bad = 0;
    for (let flat = 0; flat < n; flat++) {
      const o: number[] = [];
      for (let i = r - 1, rest = flat; i >= 0; i--) {
        o[i] = rest % out[i];
        rest = Math.floor(rest / out[i]);
      }
      const want = Math.fround(f(Math.fround(a[idx(sa, o)]), Math.fround(b[idx(sb, o)])));
      if (got[flat] !== want) bad++;
    }
    expect(bad, name).toBe(0);
  }
});
