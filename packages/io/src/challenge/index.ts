/**
 * The CVPR 2024 "MedSAM on Laptop" npz layout: reading and validating a case, the modality from
 * the file name, tight boxes from a label map and writing `segs`.
 *
 * | dims | key | content |
 * |---|---|---|
 * | 2D | `imgs` | (H,W,3) or (H,W), values 0..255 |
 * | 3D | `imgs` | (D,H,W), values 0..255 |
 * | both | `gts` | integer label map of the image's spatial shape, 0 = background |
 * | 2D | `boxes` | (N,4) `[x_min, y_min, x_max, y_max]` |
 * | 3D | `boxes` | (N,6) `[x_min, y_min, z_min, x_max, y_max, z_max]` |
 * | 3D | `spacing` | (3,) in `(x, y, z)` order, the reverse of the array axes |
 */
import path from 'node:path';
import {
  InputError,
  MODALITIES,
  MODALITY_ALIASES,
  type Modality,
  parseModality,
} from '@mcp-medsam/core/common';
import { type NdArray, ndarray, numel, toFloat64 } from '../dtype.js';
import { readNpzFile, writeNpzFile } from '../npz.js';

/** A validated challenge case. */
export interface ChallengeCase {
  /** File name without directory and `.npz`. */
  name: string;
  dims: 2 | 3;
  modality: Modality;
  /** Row of the category embedding (spec §3.4). */
  categoryIdx: number;
  imgs: NdArray;
  gts?: NdArray;
  boxes?: NdArray;
  spacing?: number[];
}

/**
 * The raw modality token of a challenge file name (`2D_X-Ray_a.npz` → 'X-Ray') and the dims its
 * `2D`/`3D` prefix names; not checked against the known modalities (see `modalityFromFileName`).
 */
export function fileNameToken(name: string): { token: string; dims?: 2 | 3 } {
  const base = path.basename(name).replace(/\.npz$/i, '');
  const tokens = base.split('_');
  // `2D`/`3D`, and the challenge's own `2DBox`/`3DBox` prefixes (its inference takes token 1 always).
  if (/^[23]D/.test(tokens[0]) && !(tokens[0] in MODALITY_ALIASES))
    return { token: tokens[1] ?? '', dims: tokens[0].startsWith('2D') ? 2 : 3 };
  return { token: tokens[0] };
}

/**
 * The modality named by a challenge file name, as the original code reads it: split the base
 * name on `_`, take token 0, or token 1 when token 0 is `2D`/`3D` (or another token starting
 * with them, such as the challenge demo's `2DBox`); aliases (`X-Ray`, `Mammo`,
 * `Microscope`...) map to the canonical name (`Microscope` -> `Microscopy`, as inference does).
 * Unknown tokens give an InputError naming the file.
 */
export function modalityFromFileName(name: string): {
  modality: Modality;
  categoryIdx: number;
  dims?: 2 | 3;
} {
  const { token, dims } = fileNameToken(name);
  const modality = parseModality(token, name);
  return { modality, categoryIdx: MODALITIES.indexOf(modality), dims };
}

const INT_DTYPES = new Set([
  'bool',
  'int8',
  'uint8',
  'int16',
  'uint16',
  'int32',
  'uint32',
  'int64',
  'uint64',
]);

function minMax(a: NdArray): [number, number, boolean] {
  const v = toFloat64(a);
  let lo = Infinity;
  let hi = -Infinity;
  let nan = false;
  for (let i = 0; i < v.length; i++) {
    const x = v[i];
    if (Number.isNaN(x)) nan = true;
    else {
      if (x < lo) lo = x;
      if (x > hi) hi = x;
    }
  }
  return [lo, hi, nan];
}

/**
 * Check a case's arrays: shapes, dtypes, value ranges and boxes. Throws an InputError naming
 * `file` and the problem.
 */
export function validateChallengeCase(
  arrays: Record<string, NdArray>,
  dims: 2 | 3,
  file?: string,
): { imgs: NdArray; gts?: NdArray; boxes?: NdArray; spacing?: number[] } {
  const fail = (msg: string): never => {
    throw new InputError(msg, { file });
  };
  const imgs = arrays.imgs;
  if (!imgs) fail(`no 'imgs' array (has: ${Object.keys(arrays).join(', ') || 'none'})`);
  const s = imgs.shape;
  if (dims === 2) {
    if (!(s.length === 2 || (s.length === 3 && s[2] === 3)))
      fail(`2D 'imgs' must be (H,W,3) or (H,W), got shape [${s.join(', ')}]`);
  } else if (s.length !== 3) fail(`3D 'imgs' must be (D,H,W), got shape [${s.join(', ')}]`);
  if (s.some((d) => d < 1)) fail(`'imgs' is empty (shape [${s.join(', ')}])`);
  if (imgs.dtype !== 'uint8') {
    if (imgs.dtype === 'float16' || imgs.dtype === 'bool') fail(`'imgs' has unsupported dtype ${imgs.dtype}`);
    const [lo, hi, nan] = minMax(imgs);
    if (nan) fail(`'imgs' (${imgs.dtype}) contains NaN`);
    if (lo < 0 || hi > 255) fail(`'imgs' (${imgs.dtype}) values must lie in [0, 255], got [${lo}, ${hi}]`);
  }
  const spatial = dims === 2 ? s.slice(0, 2) : s;

  let gts: NdArray | undefined = arrays.gts;
  if (gts) {
    if (!INT_DTYPES.has(gts.dtype)) fail(`'gts' must be an integer label map, got dtype ${gts.dtype}`);
    if (gts.shape.length !== spatial.length || gts.shape.some((d, i) => d !== spatial[i]))
      fail(`'gts' shape [${gts.shape.join(', ')}] does not match the image's [${spatial.join(', ')}]`);
    const [lo] = minMax(gts);
    if (lo < 0) fail(`'gts' has negative labels (min ${lo})`);
  } else gts = undefined;

  let boxes: NdArray | undefined = arrays.boxes;
  if (boxes) {
    const k = dims === 2 ? 4 : 6;
    const b = boxes.shape;
    if (b.length === 1 && b[0] === 0) boxes = ndarray('int64', [0, k]);
    else if (b.length !== 2 || b[1] !== k)
      fail(`'boxes' must be (N,${k}) for a ${dims}D case, got shape [${b.join(', ')}]`);
    const v = toFloat64(boxes);
    const [H, W] = dims === 2 ? [s[0], s[1]] : [s[1], s[2]];
    const D = dims === 3 ? s[0] : 1;
    const n = boxes.shape[0];
    const axes = dims === 2 ? (['x', 'y'] as const) : (['x', 'y', 'z'] as const);
    const limit = { x: W, y: H, z: D };
    const half = k / 2;
    for (let i = 0; i < n; i++) {
      const row = Array.from(v.subarray(i * k, i * k + k));
      const txt = `box ${i} [${row.join(', ')}]`;
      if (!row.every(Number.isFinite)) fail(`${txt} has non-finite values`);
      axes.forEach((ax, j) => {
        const lo = row[j];
        const hi = row[j + half];
        if (hi < lo) fail(`${txt} is inverted (${ax}_max < ${ax}_min)`);
        // A 3D box may span a single slice (z_max = z_min); in x and y that would select no pixel.
        if (hi === lo && ax !== 'z') fail(`${txt} is empty (${ax}_max = ${ax}_min)`);
        // Max coordinates may equal the size: inference crops half-open ranges [min:max].
        if (lo < 0 || hi > limit[ax]) fail(`${txt} is out of bounds (${ax} must lie in [0, ${limit[ax]}])`);
      });
    }
  } else boxes = undefined;

  let spacing: number[] | undefined;
  if (arrays.spacing) {
    const sp = Array.from(toFloat64(arrays.spacing));
    if (sp.length !== (dims === 3 ? 3 : sp.length) || sp.length < 2 || sp.length > 3)
      fail(`'spacing' must hold ${dims === 3 ? 3 : '2 or 3'} values, got ${sp.length}`);
    if (!sp.every((x) => Number.isFinite(x) && x > 0))
      fail(`'spacing' must be positive, got [${sp.join(', ')}]`);
    spacing = sp;
  }
  return { imgs, gts, boxes, spacing };
}

/** Read and validate a challenge npz file. */
export async function readChallengeCase(file: string): Promise<ChallengeCase> {
  const arrays = await readNpzFile(file);
  const name = path.basename(file).replace(/\.npz$/i, '');
  const { modality, categoryIdx } = modalityFromFileName(name);
  // Inference takes the 3D path for names starting with 3D; names without a 2D/3D prefix (training
  // files such as MedSAM2's `CT_Lesion_...`) are 3D when imgs is (D,H,W) rather than (H,W,3).
  const imgs = arrays.imgs;
  const dims: 2 | 3 = name.startsWith('3D')
    ? 3
    : name.startsWith('2D') || !imgs || imgs.shape.length !== 3 || imgs.shape[2] === 3
      ? 2
      : 3;
  return { name, dims, modality, categoryIdx, ...validateChallengeCase(arrays, dims, file) };
}

/** Label ids present in a label map (ascending, 0 excluded). */
export function labelIds(gts: NdArray): number[] {
  const v = toFloat64(gts);
  const seen = new Set<number>();
  for (let i = 0; i < v.length; i++) if (v[i] !== 0) seen.add(v[i]);
  return [...seen].sort((a, b) => a - b);
}

/**
 * Tight boxes of every label of a (H,W) or (D,H,W) label map: rows `[x_min, y_min, x_max, y_max]`
 * (2D) or `[x_min, y_min, z_min, x_max, y_max, z_max]` (3D), max inclusive, one per label id in
 * ascending order (`labels`), as int64.
 */
export function boxesFromLabels(gts: NdArray): { labels: number[]; boxes: NdArray<'int64'> } {
  const s = gts.shape;
  if (s.length !== 2 && s.length !== 3)
    throw new InputError(`boxesFromLabels: expected (H,W) or (D,H,W), got [${s}]`);
  const [D, H, W] = s.length === 2 ? [1, s[0], s[1]] : s;
  const v = toFloat64(gts);
  const ext = new Map<number, number[]>(); // label -> [xmin, ymin, zmin, xmax, ymax, zmax]
  let i = 0;
  for (let z = 0; z < D; z++)
    for (let y = 0; y < H; y++)
      for (let x = 0; x < W; x++, i++) {
        const l = v[i];
        if (l === 0) continue;
        const e = ext.get(l);
        if (!e) ext.set(l, [x, y, z, x, y, z]);
        else {
          if (x < e[0]) e[0] = x;
          if (x > e[3]) e[3] = x;
          if (y < e[1]) e[1] = y;
          if (y > e[4]) e[4] = y;
          if (z > e[5]) e[5] = z; // z only grows
        }
      }
  const labels = [...ext.keys()].sort((a, b) => a - b);
  const k = s.length === 2 ? 4 : 6;
  const out = ndarray('int64', [labels.length, k]);
  labels.forEach((l, r) => {
    const e = ext.get(l)!;
    const row = k === 4 ? [e[0], e[1], e[3], e[4]] : e;
    row.forEach((x, j) => (out.data[r * k + j] = BigInt(x)));
  });
  return { labels, boxes: out };
}

/**
 * Write a segmentation as the challenge expects (`np.savez_compressed(path, segs=segs)`): uint8,
 * or uint16 when there are more than 255 boxes. Values must lie in [0, nBoxes].
 */
export async function writeSegs(file: string, segs: NdArray, nBoxes: number): Promise<NdArray> {
  if (!Number.isInteger(nBoxes) || nBoxes < 0)
    throw new InputError(`writeSegs: invalid box count ${nBoxes}`, { file });
  if (segs.shape.length !== 2 && segs.shape.length !== 3)
    throw new InputError(`writeSegs: segs must be (H,W) or (D,H,W), got [${segs.shape.join(', ')}]`, {
      file,
    });
  const dtype = nBoxes > 255 ? 'uint16' : 'uint8';
  const v = toFloat64(segs);
  const out = ndarray(dtype, segs.shape);
  for (let i = 0; i < v.length; i++) {
    const x = v[i];
    if (!Number.isInteger(x) || x < 0 || x > nBoxes)
      throw new InputError(`writeSegs: value ${x} at index ${i} is not a label in [0, ${nBoxes}]`, { file });
    out.data[i] = x;
  }
  if (numel(segs.shape) !== out.data.length) throw new InputError('writeSegs: inconsistent array', { file });
  await writeNpzFile(file, { segs: out }, { compress: true });
  return out;
}
