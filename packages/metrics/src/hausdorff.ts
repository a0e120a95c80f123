/**
 * Robust Hausdorff distance (`compute_robust_hausdorff`): for each direction, the surfels are
 * sorted by (distance, area), their areas accumulated and normalised by the total, and the
 * distance at the first index where the cumulative fraction reaches `percent`/100 is taken; the
 * result is the larger of both directions. Infinity when either side has no surfel.
 */
import type { SurfaceDistances } from './surface/distances.js';
import { pairwiseSum } from './numeric.js';

/** Percentile distance of one direction; Infinity when there is no surfel. */
export function percentileDistance(distances: Float64Array, areas: Float64Array, percent: number): number {
  const n = distances.length;
  if (n === 0) return Infinity;
  // Sort by (distance, area): group by area value (a handful of distinct values), sort each
  // group's distances natively, then merge with ties broken by the smaller area.
  const groupOf = new Map<number, number[]>();
  for (let i = 0; i < n; i++) {
    let g = groupOf.get(areas[i]);
    if (!g) groupOf.set(areas[i], (g = []));
    g.push(distances[i]);
  }
  const keys = [...groupOf.keys()].sort((a, b) => a - b);
  const lists = keys.map((k) => Float64Array.from(groupOf.get(k)!).sort());
  const heads = new Int32Array(keys.length);
  const sortedD = new Float64Array(n);
  const sortedA = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    let best = -1;
    let bestD = Infinity;
    for (let g = 0; g < lists.length; g++) {
      if (heads[g] >= lists[g].length) continue;
      const d = lists[g][heads[g]];
      if (best < 0 || d < bestD) {
        best = g;
        bestD = d;
      }
    }
    sortedD[i] = bestD;
    sortedA[i] = keys[best];
    heads[best]++;
  }
  const total = pairwiseSum(sortedA);
  const p = percent / 100.0;
  let cum = 0;
  let idx = n;
  for (let i = 0; i < n; i++) {
    cum += sortedA[i];
    if (cum / total >= p) {
      idx = i;
      break;
    }
  }
  return sortedD[Math.min(idx, n - 1)];
}

/** The robust Hausdorff distance at `percent` (95 for HD95) from surface distances. */
export function robustHausdorff(sd: SurfaceDistances, percent = 95): number {
  const a = percentileDistance(sd.distancesGtToPred, sd.surfelAreasGt, percent);
  const b = percentileDistance(sd.distancesPredToGt, sd.surfelAreasPred, percent);
  return Math.max(a, b);
}
