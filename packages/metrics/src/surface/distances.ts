/**
 * Surface distances of the DeepMind method (`compute_surface_distances`), computed plane by plane
 * so that a 200x512x512 pair needs no float volume: only the z-distance to the next border
 * (Uint16 per corner) is kept for the whole box.
 *
 * Both masks are given as label maps plus the label that selects them (`map === label`), so a
 * multi-label case never materialises a binary mask. All work happens inside `box`, the
 * bounding box of the union of both masks (the reference crops to it as well).
 */
import { EnvelopeScratch, envelope1d, envelopeBuild } from './edt.js';
import { contourLengthTable2d, slabAreaTable2d, surfaceAreaTable3d } from './tables.js';

/** A label map in C order: 2D (H, W) or 3D (D, H, W). */
export type LabelData = Uint8Array | Uint16Array;

/** Inclusive bounding box, one [min, max] pair per axis. */
export type Box = number[][];

/**
 * What `compute_surface_distances` returns, unsorted: for every surface element (surfel) of the
 * ground truth its distance to the predicted surface and its area, and the same the other way.
 * Distances are Infinity when the other mask is empty.
 */
export interface SurfaceDistances {
  distancesGtToPred: Float64Array;
  surfelAreasGt: Float64Array;
  distancesPredToGt: Float64Array;
  surfelAreasPred: Float64Array;
}

/** How a 2D mask's surface is defined. */
export type Surface2d = 'slab' | 'contour';

const EMPTY = (): SurfaceDistances => ({
  distancesGtToPred: new Float64Array(0),
  surfelAreasGt: new Float64Array(0),
  distancesPredToGt: new Float64Array(0),
  surfelAreasPred: new Float64Array(0),
});

/** Append-only (distance, area) list. */
class SurfelList {
  d: Float64Array;
  a: Float64Array;
  n = 0;
  constructor(cap: number) {
    this.d = new Float64Array(Math.max(cap, 16));
    this.a = new Float64Array(Math.max(cap, 16));
  }
  grow(): void {
    const d = new Float64Array(this.d.length * 2);
    d.set(this.d);
    const a = new Float64Array(this.a.length * 2);
    a.set(this.a);
    this.d = d;
    this.a = a;
  }
  finish(): [Float64Array, Float64Array] {
    return [this.d.slice(0, this.n), this.a.slice(0, this.n)];
  }
}

/**
 * 4-bit corner codes of one voxel slice of the box, for both maps: bit 1 = (y, x), 2 = (y, x-1),
 * 4 = (y-1, x), 8 = (y-1, x-1), on the (ny+1) x (nx+1) corner grid. `sliceOffset` is the index of
 * the slice's first voxel in the maps (pass -1 for an empty slice). Returns whether any bit is set
 * in A and in B (bit 0 and bit 1 of the result).
 */
export function sliceCodes(
  gt: LabelData,
  seg: LabelData,
  label: number,
  sliceOffset: number,
  W: number,
  y0: number,
  ny: number,
  x0: number,
  nx: number,
  qA: Uint8Array,
  qB: Uint8Array,
): number {
  const X = nx + 1;
  const Y = ny + 1;
  if (sliceOffset < 0) {
    qA.fill(0, 0, X * Y);
    qB.fill(0, 0, X * Y);
    return 0;
  }
  let any = 0;
  // Row 0 of the corner grid only sees voxel row 0 (as y); row cy sees voxel rows cy-1 and cy.
  for (let cy = 0; cy < Y; cy++) {
    const o = cy * X;
    if (cy < ny) {
      let src = sliceOffset + (y0 + cy) * W + x0;
      let pa = 0;
      let pb = 0;
      for (let cx = 0; cx < nx; cx++, src++) {
        const a = gt[src] === label ? 1 : 0;
        const b = seg[src] === label ? 1 : 0;
        pa = a | (pa << 1);
        pb = b | (pb << 1);
        qA[o + cx] = pa & 3;
        qB[o + cx] = pb & 3;
        pa &= 1;
        pb &= 1;
      }
      qA[o + nx] = (pa << 1) & 3;
      qB[o + nx] = (pb << 1) & 3;
    } else {
      qA.fill(0, o, o + X);
      qB.fill(0, o, o + X);
    }
    if (cy > 0) {
      const p = o - X;
      for (let cx = 0; cx < X; cx++) {
        const a = qA[o + cx] | ((qA[p + cx] & 3) << 2);
        const b = qB[o + cx] | ((qB[p + cx] & 3) << 2);
        qA[o + cx] = a;
        qB[o + cx] = b;
        any |= (a ? 1 : 0) | (b ? 2 : 0);
      }
    } else {
      for (let cx = 0; cx < X; cx++) any |= (qA[cx] ? 1 : 0) | (qB[cx] ? 2 : 0);
    }
  }
  return any;
}

/*
 * Note on sliceCodes: rows are written first with the 2-bit x-pair of their own voxel row, then
 * (for cy > 0) combined with the previous row's x-pair shifted to bits 4/8. The previous row
 * still holds its combined 4-bit value, so its x-pair is recovered as `& 3`.
 */

/** Border corners of one mask, in plane order then row-major order. */
interface BorderList {
  n: number;
  /** In-plane corner index y * X + x. */
  pos: Int32Array;
  code: Uint8Array;
  /** Corner plane of each node. */
  plane: Int32Array;
  /** Next node of the same (y, x) column in a later plane, or -1. */
  link: Int32Array;
  /** First node of every column, or -1. */
  head: Int32Array;
  /** Nodes of plane z are planeStart[z] .. planeStart[z+1]-1. */
  planeStart: Int32Array;
}

function newBorderList(P: number, Z: number, cap: number): BorderList {
  return {
    n: 0,
    pos: new Int32Array(cap),
    code: new Uint8Array(cap),
    plane: new Int32Array(cap),
    link: new Int32Array(cap),
    head: new Int32Array(P).fill(-1),
    planeStart: new Int32Array(Z + 1),
  };
}

function growBorderList(b: BorderList): void {
  const cap = b.pos.length * 2;
  const pos = new Int32Array(cap);
  pos.set(b.pos);
  const code = new Uint8Array(cap);
  code.set(b.code);
  const plane = new Int32Array(cap);
  plane.set(b.plane);
  const link = new Int32Array(cap);
  link.set(b.link);
  b.pos = pos;
  b.code = code;
  b.plane = plane;
  b.link = link;
}

const FAR = 0x3fffffff;

/**
 * Surface distances between `gt === label` and `seg === label` of two 3D maps of shape
 * [D, H, W], inside `box` (the bounding box of their union), with `spacing[k]` applied to array
 * axis k.
 *
 * One sweep over the corner planes lists the border corners of both masks (their codes, and per
 * (y, x) column a chain through the planes). A second sweep computes, plane by plane, the exact
 * squared distance to the other mask's border: the z term from the nearest border of the column
 * below and above, then the y pass (on a transposed plane, contiguous) and the x pass, the latter
 * only on the rows holding query corners.
 */
export function surfaceDistances3d(
  gt: LabelData,
  seg: LabelData,
  shape: readonly number[],
  label: number,
  box: Box | null,
  spacing: readonly [number, number, number],
): SurfaceDistances {
  if (!box) return EMPTY();
  const [, H, W] = shape;
  const [[z0, z1], [y0, y1], [x0, x1]] = box;
  const nz = z1 - z0 + 1;
  const ny = y1 - y0 + 1;
  const nx = x1 - x0 + 1;
  const Z = nz + 1;
  const Y = ny + 1;
  const X = nx + 1;
  const P = Y * X;
  const area = surfaceAreaTable3d(spacing);
  const slice = (vz: number): number => (vz < 0 || vz >= nz ? -1 : (z0 + vz) * H * W);

  // Sweep 1: border corners of both masks.
  let qAprev = new Uint8Array(P);
  let qBprev = new Uint8Array(P);
  let qAcur = new Uint8Array(P);
  let qBcur = new Uint8Array(P);
  const cap = Math.max(1024, Math.min(1 << 22, 4 * (Y * Z + X * Z + P)));
  const bA = newBorderList(P, Z, cap);
  const bB = newBorderList(P, Z, cap);
  const tailA = new Int32Array(P).fill(-1);
  const tailB = new Int32Array(P).fill(-1);
  let lo = 0; // q(-1) is empty
  for (let cz = 0; cz < Z; cz++) {
    bA.planeStart[cz] = bA.n;
    bB.planeStart[cz] = bB.n;
    const hi = sliceCodes(gt, seg, label, slice(cz), W, y0, ny, x0, nx, qAcur, qBcur);
    if (hi | lo) {
      for (let c = 0; c < P; c++) {
        const ua = qAcur[c];
        const la = qAprev[c];
        if ((ua | la) !== 0 && (ua & la) !== 15) {
          if (bA.n === bA.pos.length) growBorderList(bA);
          const n = bA.n++;
          bA.pos[n] = c;
          bA.code[n] = ua | (la << 4);
          bA.plane[n] = cz;
          bA.link[n] = -1;
          const t = tailA[c];
          if (t < 0) bA.head[c] = n;
          else bA.link[t] = n;
          tailA[c] = n;
        }
        const ub = qBcur[c];
        const lb = qBprev[c];
        if ((ub | lb) !== 0 && (ub & lb) !== 15) {
          if (bB.n === bB.pos.length) growBorderList(bB);
          const n = bB.n++;
          bB.pos[n] = c;
          bB.code[n] = ub | (lb << 4);
          bB.plane[n] = cz;
          bB.link[n] = -1;
          const t = tailB[c];
          if (t < 0) bB.head[c] = n;
          else bB.link[t] = n;
          tailB[c] = n;
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
  bA.planeStart[Z] = bA.n;
  bB.planeStart[Z] = bB.n;
  if (bA.n === 0 && bB.n === 0) return EMPTY();

  const work = new PlaneWork(X, Y, spacing);
  const [dA, aA] = directed(bA, bB, Z, work, area);
  const [dB, aB] = directed(bB, bA, Z, work, area);
  return { distancesGtToPred: dA, surfelAreasGt: aA, distancesPredToGt: dB, surfelAreasPred: aB };
}

/** Buffers of the per-plane distance computation. */
class PlaneWork {
  readonly X: number;
  readonly Y: number;
  readonly s0: number;
  readonly s1: number;
  readonly s2: number;
  /** Transposed plane: index x * Y + y. */
  readonly fT: Float64Array;
  /** Row-major plane: index y * X + x. */
  readonly g: Float64Array;
  readonly last: Int32Array;
  readonly next: Int32Array;
  readonly scratch: EnvelopeScratch;
  constructor(X: number, Y: number, spacing: readonly number[]) {
    this.X = X;
    this.Y = Y;
    this.s0 = spacing[0];
    this.s1 = spacing[1];
    this.s2 = spacing[2];
    this.fT = new Float64Array(X * Y);
    this.g = new Float64Array(X * Y);
    this.last = new Int32Array(X * Y);
    this.next = new Int32Array(X * Y);
    this.scratch = new EnvelopeScratch(Math.max(X, Y));
  }
}

/**
 * Distances from every border corner of `Q` to the border of `T`, with the areas of Q's codes,
 * in Q's node order.
 */
function directed(
  Q: BorderList,
  T: BorderList,
  Z: number,
  w: PlaneWork,
  area: Float64Array,
): [Float64Array, Float64Array] {
  const dist = new Float64Array(Q.n);
  const areas = new Float64Array(Q.n);
  for (let i = 0; i < Q.n; i++) areas[i] = area[Q.code[i]];
  if (Q.n === 0) return [dist, areas];
  if (T.n === 0) {
    dist.fill(Infinity);
    return [dist, areas];
  }
  const { X, Y, s0, s1, s2, fT, g, last, next, scratch } = w;
  const P = X * Y;
  // last/next: per column (transposed index), the nearest T border plane at or below / at or
  // above the current plane.
  last.fill(-FAR);
  next.fill(FAR);
  for (let c = 0; c < P; c++) {
    const h = T.head[c];
    if (h >= 0) next[(c % X) * Y + ((c / X) | 0)] = T.plane[h];
  }
  for (let cz = 0; cz < Z; cz++) {
    // Advance the column chains: borders of this plane become `last`; columns whose `next`
    // was the previous plane move on to their following border.
    if (cz > 0) {
      for (let n = T.planeStart[cz - 1], e = T.planeStart[cz]; n < e; n++) {
        const c = T.pos[n];
        const l = T.link[n];
        next[(c % X) * Y + ((c / X) | 0)] = l >= 0 ? T.plane[l] : FAR;
      }
    }
    for (let n = T.planeStart[cz], e = T.planeStart[cz + 1]; n < e; n++) {
      const c = T.pos[n];
      last[(c % X) * Y + ((c / X) | 0)] = cz;
    }
    const qs = Q.planeStart[cz];
    const qe = Q.planeStart[cz + 1];
    if (qs === qe) continue;

    // z term, in transposed layout.
    for (let i = 0; i < P; i++) {
      const a = cz - last[i];
      const b = next[i] - cz;
      const k = a < b ? a : b;
      if (k >= FAR) fT[i] = Infinity;
      else {
        const t = k * s0;
        fT[i] = t * t;
      }
    }
    // y pass: rows of fT are the columns of the plane.
    for (let x = 0, o = 0; x < X; x++, o += Y) {
      if (!envelope1d(fT, o, 1, Y, s1, fT, o, 1, scratch)) fT.fill(Infinity, o, o + Y);
    }
    transpose(fT, g, X, Y);
    // x pass at the query corners, row by row (nodes are in row-major order).
    let n = qs;
    while (n < qe) {
      const row = (Q.pos[n] / X) | 0;
      const ro = row * X;
      const k = envelopeBuild(g, ro, 1, X, s2, scratch);
      const v = scratch.v;
      const zz = scratch.z;
      const fv = scratch.fv;
      let j = 0;
      for (; n < qe && Q.pos[n] < ro + X; n++) {
        if (k === 0) {
          dist[n] = Infinity;
          continue;
        }
        const x = Q.pos[n] - ro;
        const px = x * s2;
        while (zz[j + 1] < px) j++;
        const t = (x - v[j]) * s2;
        dist[n] = Math.sqrt(fv[j] + t * t);
      }
    }
  }
  return [dist, areas];
}

/** dst[y * X + x] = src[x * Y + y], in cache-sized tiles. */
function transpose(src: Float64Array, dst: Float64Array, X: number, Y: number): void {
  const B = 32;
  for (let xb = 0; xb < X; xb += B) {
    const xe = xb + B < X ? xb + B : X;
    for (let yb = 0; yb < Y; yb += B) {
      const ye = yb + B < Y ? yb + B : Y;
      for (let x = xb; x < xe; x++) {
        const so = x * Y;
        for (let y = yb; y < ye; y++) dst[y * X + x] = src[so + y];
      }
    }
  }
}

/**
 * Surface distances between `gt === label` and `seg === label` of two 2D maps of shape [H, W],
 * inside `box`. `surface` 'slab' is the challenge's (H, W, 1) slab with spacing
 * [spacing[0], spacing[1], 1] (every foreground pixel is surface); 'contour' the textbook 2D
 * method (contour lengths of the 2x2 codes).
 */
export function surfaceDistances2d(
  gt: LabelData,
  seg: LabelData,
  shape: readonly number[],
  label: number,
  box: Box | null,
  spacing: readonly [number, number],
  surface: Surface2d,
): SurfaceDistances {
  if (!box) return EMPTY();
  const [, W] = shape;
  const [[y0, y1], [x0, x1]] = box;
  const ny = y1 - y0 + 1;
  const nx = x1 - x0 + 1;
  const Y = ny + 1;
  const X = nx + 1;
  const P = Y * X;
  const [s0, s1] = spacing;
  const weight = surface === 'slab' ? slabAreaTable2d([s0, s1, 1]) : contourLengthTable2d([s0, s1]);
  const full = surface === 'slab' ? -1 : 15;
  const qA = new Uint8Array(P);
  const qB = new Uint8Array(P);
  sliceCodes(gt, seg, label, 0, W, y0, ny, x0, nx, qA, qB);
  const fA = new Float64Array(P);
  const fB = new Float64Array(P);
  const rowQA = new Int32Array(Y);
  const rowQB = new Int32Array(Y);
  let nA = 0;
  let nB = 0;
  for (let cy = 0, c = 0; cy < Y; cy++) {
    for (let cx = 0; cx < X; cx++, c++) {
      const a = qA[c];
      const b = qB[c];
      if (a !== 0 && a !== full) {
        fA[c] = 0;
        rowQA[cy]++;
        nA++;
      } else fA[c] = Infinity;
      if (b !== 0 && b !== full) {
        fB[c] = 0;
        rowQB[cy]++;
        nB++;
      } else fB[c] = Infinity;
    }
  }
  const scratch = new EnvelopeScratch(Math.max(X, Y));
  const row = new Float64Array(X);
  const one = (
    f: Float64Array,
    hasTarget: boolean,
    rowQ: Int32Array,
    q: Uint8Array,
    nQ: number,
  ): [Float64Array, Float64Array] => {
    const list = new SurfelList(nQ);
    if (hasTarget) {
      for (let cx = 0; cx < X; cx++) {
        if (!envelope1d(f, cx, X, Y, s0, f, cx, X, scratch)) {
          for (let i = 0, o = cx; i < Y; i++, o += X) f[o] = Infinity;
        }
      }
    }
    for (let cy = 0; cy < Y; cy++) {
      if (rowQ[cy] === 0) continue;
      const o = cy * X;
      const ok = hasTarget && envelope1d(f, o, 1, X, s1, row, 0, 1, scratch);
      for (let cx = 0; cx < X; cx++) {
        const code = q[o + cx];
        if (code === 0 || code === full) continue;
        list.d[list.n] = ok ? Math.sqrt(row[cx]) : Infinity;
        list.a[list.n++] = weight[code];
      }
    }
    return list.finish();
  };
  const [dA, aA] = one(fB, nB > 0, rowQA, qA, nA);
  const [dB, aB] = one(fA, nA > 0, rowQB, qB, nB);
  return { distancesGtToPred: dA, surfelAreasGt: aA, distancesPredToGt: dB, surfelAreasPred: aB };
}

/**
 * Bounding box of (a !== 0) | (b !== 0) for 2D or 3D binary masks of `shape`; null when both
 * are empty.
 */
export function unionBox(a: ArrayLike<number>, b: ArrayLike<number>, shape: readonly number[]): Box | null {
  const nd = shape.length;
  const lo = new Array<number>(nd).fill(Infinity);
  const hi = new Array<number>(nd).fill(-1);
  const idx = new Array<number>(nd).fill(0);
  const total = shape.reduce((x, y) => x * y, 1);
  for (let i = 0; i < total; i++) {
    if (a[i] || b[i]) {
      for (let k = 0; k < nd; k++) {
        if (idx[k] < lo[k]) lo[k] = idx[k];
        if (idx[k] > hi[k]) hi[k] = idx[k];
      }
    }
    for (let k = nd - 1; k >= 0; k--) {
      if (++idx[k] < shape[k]) break;
      idx[k] = 0;
    }
  }
  if (hi[0] < 0) return null;
  return lo.map((l, k) => [l, hi[k]]);
}
