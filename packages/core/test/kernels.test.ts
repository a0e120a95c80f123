import { expect, test } from 'vitest';
import { initBackend, tf } from '@mcp-medsam/core';
import { maxAbsDiff, randomArray } from '../../../test-utils/reference.js';

/** Batched products on wasm (SIMD kernel or tfjs's fallback) against a float64 loop. */
test.each([
  [[7, 5, 3], [7, 3, 6], false, false],
  [[2, 3, 49, 32], [2, 3, 32, 49], false, false],
  [[4, 9, 16], [4, 16, 1], false, false],
  [[3, 4, 5], [3, 6, 5], false, true], // transpose flag: tfjs's kernel
  [[3, 4, 5], [1, 5, 2], false, false], // broadcast batch: tfjs's kernel
  [[1, 8, 4], [1, 4, 8], false, false], // batch 1: XNNPACK
])('wasm batched matMul %j x %j (transposeA=%s, transposeB=%s)', async (sa, sb, ta, tb) => {
  await initBackend({ backend: 'wasm', log: null });
  const na = sa.reduce((p, d) => p * d, 1);
  const nb = sb.reduce((p, d) => p * d, 1);
  const a = randomArray(na, 11);
  const b = randomArray(nb, 12);
  const got = tf.tidy(() => tf.matMul(tf.tensor(a, sa), tf.tensor(b, sb), ta, tb).dataSync());
  const [m, k] = ta ? [sa.at(-1)!, sa.at(-2)!] : [sa.at(-2)!, sa.at(-1)!];
  const n = tb ? sb.at(-2)! : sb.at(-1)!;
  const batch = Math.max(na / (m * k), nb / (k * n));
  const want = new Float64Array(batch * m * n);
  for (let q = 0; q < batch; q++) {
    const qa = na / (m * k) === 1 ? 0 : q;
    const qb = nb / (k * n) === 1 ? 0 : q;
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
  expect(maxAbsDiff(got, want)).toBeLessThan(1e-5);
});
