/**
 * Mask handling for conversion: binarising, hole filling, painting objects into a label map,
 * removing small connected components and relabelling, as the challenge pre-processing does.
 * Label maps here are Int32Array in C order with an explicit shape.
 */
import { InputError } from '@mcp-medsam/core/common';
import { type NdArray, toFloat64 } from '../dtype.js';

/**
 * Foreground of a mask image: pixels whose largest colour channel (alpha excluded) is above
 * `threshold` (default 0: any non-zero pixel). Returns (H, W) 0/1.
 */
export function binarize(mask: NdArray, threshold = 0): { data: Uint8Array; shape: [number, number] } {
  const s = mask.shape;
  if (s.length !== 2 && s.length !== 3)
    throw new InputError(`a mask must be 2D, got shape [${s.join(', ')}]`);
  const [h, w] = s;
  const c = s.length === 3 ? s[2] : 1;
  const colour = c === 2 ? 1 : c === 4 ? 3 : c;
  const v = toFloat64(mask);
  const out = new Uint8Array(h * w);
  for (let i = 0; i < h * w; i++) {
    let m = -Infinity;
    for (let k = 0; k < colour; k++) m = Math.max(m, v[i * c + k]);
    out[i] = m > threshold ? 1 : 0;
  }
  return { data: out, shape: [h, w] };
}

/**
 * Fill the holes of a binary (H, W) mask in place: background not 4-connected to the border
 * becomes foreground (scipy's `binary_fill_holes` with its default structure).
 */
export function fillHoles(mask: Uint8Array, h: number, w: number): Uint8Array {
  const outside = new Uint8Array(h * w);
  const queue = new Int32Array(h * w);
  let head = 0;
  let tail = 0;
  const push = (i: number) => {
    if (!mask[i] && !outside[i]) {
      outside[i] = 1;
      queue[tail++] = i;
    }
  };
  for (let x = 0; x < w; x++) {
    push(x);
    push((h - 1) * w + x);
  }
  for (let y = 0; y < h; y++) {
    push(y * w);
    push(y * w + w - 1);
  }
  while (head < tail) {
    const i = queue[head++];
    const y = (i / w) | 0;
    const x = i - y * w;
    if (x > 0) push(i - 1);
    if (x < w - 1) push(i + 1);
    if (y > 0) push(i - w);
    if (y < h - 1) push(i + w);
  }
  for (let i = 0; i < h * w; i++) if (!outside[i]) mask[i] = 1;
  return mask;
}

/**
 * Remove connected components smaller than `minSize` (per label: components are sets of
 * neighbouring pixels with the same label; cc3d's `dust`) from a 2D or 3D label map, in place.
 * `full` connectivity is 8 in 2D and 26 in 3D (else 4 / 6). Returns the number of pixels cleared.
 */
export function removeSmallComponents(
  labels: Int32Array,
  shape: number[],
  minSize: number,
  full = true,
): number {
  if (minSize <= 1) return 0;
  const [D, H, W] = shape.length === 2 ? [1, shape[0], shape[1]] : shape;
  const n = D * H * W;
  const seen = new Uint8Array(n);
  const queue = new Int32Array(n);
  const offsets: [number, number, number][] = [];
  for (let dz = -1; dz <= 1; dz++)
    for (let dy = -1; dy <= 1; dy++)
      for (let dx = -1; dx <= 1; dx++) {
        if (!dz && !dy && !dx) continue;
        if (D === 1 && dz) continue;
        const manhattan = Math.abs(dz) + Math.abs(dy) + Math.abs(dx);
        if (!full && manhattan > 1) continue;
        offsets.push([dz, dy, dx]);
      }
  let cleared = 0;
  for (let start = 0; start < n; start++) {
    const l = labels[start];
    if (!l || seen[start]) continue;
    let tail = 0;
    queue[tail++] = start;
    seen[start] = 1;
    for (let head = 0; head < tail; head++) {
      const i = queue[head];
      const z = (i / (H * W)) | 0;
      const r = i - z * H * W;
      const y = (r / W) | 0;
      const x = r - y * W;
      for (const [dz, dy, dx] of offsets) {
        const zz = z + dz;
        const yy = y + dy;
        const xx = x + dx;
        if (zz < 0 || zz >= D || yy < 0 || yy >= H || xx < 0 || xx >= W) continue;
        const j = (zz * H + yy) * W + xx;
        if (!seen[j] && labels[j] === l) {
          seen[j] = 1;
          queue[tail++] = j;
        }
      }
    }
    if (tail < minSize) {
      for (let k = 0; k < tail; k++) labels[queue[k]] = 0;
      cleared += tail;
    }
  }
  return cleared;
}

/** Per-label extents `[xmin, ymin, zmin, xmax, ymax, zmax]` of a 2D/3D label map. */
export function labelExtents(labels: Int32Array, shape: number[]): Map<number, number[]> {
  const [D, H, W] = shape.length === 2 ? [1, shape[0], shape[1]] : shape;
  const ext = new Map<number, number[]>();
  let i = 0;
  for (let z = 0; z < D; z++)
    for (let y = 0; y < H; y++)
      for (let x = 0; x < W; x++, i++) {
        const l = labels[i];
        if (!l) continue;
        const e = ext.get(l);
        if (!e) ext.set(l, [x, y, z, x, y, z]);
        else {
          if (x < e[0]) e[0] = x;
          if (x > e[3]) e[3] = x;
          if (y < e[1]) e[1] = y;
          if (y > e[4]) e[4] = y;
          if (z > e[5]) e[5] = z;
        }
      }
  return ext;
}
