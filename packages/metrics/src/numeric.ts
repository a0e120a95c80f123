/**
 * NumPy's float64 summation (pairwise, blocks of 8, as in `np.sum` / `np.mean` of a contiguous
 * array), so that means of per-label values match the reference to the last bit.
 */
export function pairwiseSum(a: ArrayLike<number>, start = 0, n = a.length - start): number {
  if (n < 8) {
    let res = -0;
    for (let i = 0; i < n; i++) res += a[start + i];
    return n === 0 ? 0 : res;
  }
  if (n <= 128) {
    const r = [
      a[start],
      a[start + 1],
      a[start + 2],
      a[start + 3],
      a[start + 4],
      a[start + 5],
      a[start + 6],
      a[start + 7],
    ];
    let i = 8;
    for (; i < n - (n % 8); i += 8) {
      for (let j = 0; j < 8; j++) r[j] += a[start + i + j];
    }
    let res = r[0] + r[1] + (r[2] + r[3]) + (r[4] + r[5] + (r[6] + r[7]));
    for (; i < n; i++) res += a[start + i];
    return res;
  }
  let n2 = Math.floor(n / 2);
  n2 -= n2 % 8;
  return pairwiseSum(a, start, n2) + pairwiseSum(a, start + n2, n - n2);
}

/** `np.mean`: NaN for an empty list, NaN if any value is NaN, ±Infinity propagate. */
export function npMean(a: ArrayLike<number>): number {
  if (a.length === 0) return NaN;
  return pairwiseSum(a) / a.length;
}

/** Mean over the non-NaN values (pandas' default `skipna`); NaN when none is left. */
export function nanMean(a: ArrayLike<number>): number {
  const kept: number[] = [];
  for (let i = 0; i < a.length; i++) if (!Number.isNaN(a[i])) kept.push(a[i]);
  return npMean(kept);
}

/** Population standard deviation (`np.std`, ddof 0) over the non-NaN values; NaN when none. */
export function nanStd(a: ArrayLike<number>): number {
  const kept: number[] = [];
  for (let i = 0; i < a.length; i++) if (!Number.isNaN(a[i])) kept.push(a[i]);
  if (kept.length === 0) return NaN;
  const m = npMean(kept);
  const sq = kept.map((x) => (x - m) * (x - m));
  return Math.sqrt(pairwiseSum(sq) / kept.length);
}
