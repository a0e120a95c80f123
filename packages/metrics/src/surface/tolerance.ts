/**
 * NSD without distances: whether each surfel lies within the tolerance of the other surface is
 * decided by probing the other mask's border corners at the (few) grid offsets within the
 * tolerance, nearest first. Same surfels, areas and `<= tolerance` test on the same distance
 * formula as the distance-transform path, so the value is the same; used when no Hausdorff
 * distance is wanted.
 */
import type { Box, LabelData } from './distances.js';
import { sliceCodes } from './distances.js';
import { surfaceAreaTable3d } from './tables.js';

/** Linear offsets (in a grid of row length X and plane size P) within `tolerance`, nearest first. */
function offsetsWithin(
  tolerance: number,
  spacing: readonly number[],
  r: number[],
  X: number,
  P: number,
): Int32Array {
  const list: [number, number][] = [];
  for (let dz = -r[0]; dz <= r[0]; dz++) {
    for (let dy = -r[1]; dy <= r[1]; dy++) {
      for (let dx = -r[2]; dx <= r[2]; dx++) {
        const a = dz * spacing[0];
        const b = dy * spacing[1];
        const c = dx * spacing[2];
        const d = Math.sqrt(a * a + b * b + c * c);
        if (d <= tolerance) list.push([d, dz * P + dy * X + dx]);
      }
    }
  }
  list.sort((p, q) => p[0] - q[0]);
  return Int32Array.from(list, (p) => p[1]);
}

/** Largest probe window (number of offsets) before falling back to the distance transform. */
export const MAX_PROBES = 4096;

/** The probe radius in voxels per axis, or null when the window is too large. */
export function probeRadius(tolerance: number, spacing: readonly number[]): number[] | null {
  const r = spacing.map((s) => Math.floor(tolerance / s));
  const n = r.reduce((acc, k) => acc * (2 * k + 1), 1);
  return n > MAX_PROBES * 2 ? null : r;
}

/**
 * Surface Dice at `tolerance` of `gt === label` and `seg === label` (3D maps [D, H, W], inside
 * `box`), without computing distances. NaN when both are empty. The caller checks
 * `probeRadius(tolerance, spacing)` first.
 */
export function surfaceDiceByProbing3d(
  gt: LabelData,
  seg: LabelData,
  shape: readonly number[],
  label: number,
  box: Box | null,
  spacing: readonly [number, number, number],
  tolerance: number,
): number {
  if (!box) return NaN;
  const r = probeRadius(tolerance, spacing);
  if (!r) throw new RangeError('surfaceDiceByProbing3d: tolerance window too large for the spacing');
  const [, H, W] = shape;
  const [[z0, z1], [y0, y1], [x0, x1]] = box;
  const nz = z1 - z0 + 1;
  const ny = y1 - y0 + 1;
  const nx = x1 - x0 + 1;
  const Z = nz + 1;
  const Y = ny + 1;
  const X = nx + 1;
  const P = Y * X;
  // Padded border volume: bit 1 = A border, bit 2 = B border.
  const PZ = Z + 2 * r[0];
  const PY = Y + 2 * r[1];
  const PX = X + 2 * r[2];
  const PP = PY * PX;
  const bits = new Uint8Array(PZ * PP);
  const offsets = offsetsWithin(tolerance, spacing, r, PX, PP);
  const area = surfaceAreaTable3d(spacing);
  const countA = new Float64Array(256);
  const countB = new Float64Array(256);
  const slice = (vz: number): number => (vz < 0 || vz >= nz ? -1 : (z0 + vz) * H * W);

  let qAprev = new Uint8Array(P);
  let qBprev = new Uint8Array(P);
  let qAcur = new Uint8Array(P);
  let qBcur = new Uint8Array(P);
  // Border nodes: padded linear index and code.
  let cap = 1 << 16;
  let posA = new Int32Array(cap);
  let codeA = new Uint8Array(cap);
  let posB = new Int32Array(cap);
  let codeB = new Uint8Array(cap);
  let nA = 0;
  let nB = 0;
  let lo = 0;
  for (let cz = 0; cz < Z; cz++) {
    const hi = sliceCodes(gt, seg, label, slice(cz), W, y0, ny, x0, nx, qAcur, qBcur);
    if (hi | lo) {
      const zo = (cz + r[0]) * PP + r[1] * PX + r[2];
      for (let cy = 0, c = 0; cy < Y; cy++) {
        const ro = zo + cy * PX;
        for (let cx = 0; cx < X; cx++, c++) {
          const ua = qAcur[c];
          const la = qAprev[c];
          const ub = qBcur[c];
          const lb = qBprev[c];
          if ((ua | la | ub | lb) === 0) continue;
          if (nA === cap || nB === cap) {
            cap *= 2;
            const pa = new Int32Array(cap);
            pa.set(posA);
            posA = pa;
            const ca = new Uint8Array(cap);
            ca.set(codeA);
            codeA = ca;
            const pb = new Int32Array(cap);
            pb.set(posB);
            posB = pb;
            const cb = new Uint8Array(cap);
            cb.set(codeB);
            codeB = cb;
          }
          let b = 0;
          if ((ua | la) !== 0 && (ua & la) !== 15) {
            const code = ua | (la << 4);
            posA[nA] = ro + cx;
            codeA[nA++] = code;
            countA[code]++;
            b = 1;
          }
          if ((ub | lb) !== 0 && (ub & lb) !== 15) {
            const code = ub | (lb << 4);
            posB[nB] = ro + cx;
            codeB[nB++] = code;
            countB[code]++;
            b |= 2;
          }
          bits[ro + cx] = b;
        }
      }
    }
    const tA = qAcur;
    qAcur = qAprev;
    qAprev = tA;
    const tB = qBcur;
    qBcur = qBprev;
    qBprev = tB;
    lo = hi;
  }
  const hitA = new Float64Array(256);
  const hitB = new Float64Array(256);
  const probe = (pos: Int32Array, code: Uint8Array, n: number, other: number, hit: Float64Array): void => {
    const m = offsets.length;
    for (let i = 0; i < n; i++) {
      const p = pos[i];
      for (let j = 0; j < m; j++) {
        if (bits[p + offsets[j]] & other) {
          hit[code[i]]++;
          break;
        }
      }
    }
  };
  if (nB > 0) probe(posA, codeA, nA, 2, hitA);
  if (nA > 0) probe(posB, codeB, nB, 1, hitB);
  let overlap = 0;
  let total = 0;
  for (let c = 0; c < 256; c++) {
    overlap += (hitA[c] + hitB[c]) * area[c];
    total += (countA[c] + countB[c]) * area[c];
  }
  return overlap / total;
}
