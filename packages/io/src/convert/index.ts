/**
 * Conversion of image and mask files into challenge npz cases (`2D_<Modality>_<name>.npz` /
 * `3D_<Modality>_<name>.npz`), following the challenge's pre-processing:
 *
 * 1. Image: 2D to (H,W,3) uint8 (grey replicated, alpha dropped, 16-bit min-max scaled, or a CT
 *    window if one is given). 3D: CT windowed (default `ct-abdomen`, W400/L40), other modalities
 *    clipped to the 0.5/99.5 percentiles of the non-zero voxels and scaled (zero voxels stay 0),
 *    over the whole volume before any crop.
 * 2. Masks: one label map (`labelMap`; values kept in ascending order or as listed in
 *    `labelValues`), or one binary mask per object (`masks`; foreground = a colour channel above
 *    the threshold, optionally hole-filled or pasted at an offset), painted largest first so a
 *    small object inside a big one stays visible; ids follow the painting order.
 * 3. Small components removed: 2D 8-connected under `minSize2d` (10) pixels; 3D 26-connected under
 *    `minSize3d` (100) voxels, then per slice under `minSize2d`. Labels whose box would be one
 *    pixel wide or tall (one slice deep in 3D) are dropped.
 * 4. Relabelled 1..N in that order; tight boxes per label (max inclusive).
 * 5. 3D volumes are cropped to the slices holding labels (plus `zMargin` on each side).
 */
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { InputError, type Modality, parseModality } from '@mcp-medsam/core/common';
import { type NdArray, ndarray, toFloat64 } from '../dtype.js';
import { readNpzFile, writeNpz, writeNpzFile } from '../npz.js';
import { writeFileAtomic } from '../fs.js';
import { resizeArea, resizeNearest } from '../resize/index.js';
import { readImageFile } from '../formats/index.js';
import type { DecodedImage } from '../formats/types.js';
import { boxesFromLabels } from '../challenge/index.js';
import { type Window, percentileToUint8, toRgb8, windowToUint8 } from './intensity.js';
import { binarize, fillHoles, labelExtents, removeSmallComponents } from './masks.js';

export * from './intensity.js';
export * from './masks.js';

/** One object mask file. */
export interface MaskInput {
  path: string;
  /** Label name for the report (default: the file name). */
  name?: string;
  /** Foreground = largest colour channel above this (default: `ConvertOptions.threshold`, else 0). */
  threshold?: number;
  /**
   * Paste position `[top, left]` of a mask cropped to its bounding box into a zero image of the
   * image's size (masks smaller than the image need one).
   */
  offset?: [number, number];
  /** Fill the holes of this mask (default: `ConvertOptions.fillHoles`). */
  fillHoles?: boolean;
}

export interface ConvertOptions {
  /** Image file (NIfTI, DICOM file or series directory, PNG/JPEG/BMP/TIFF/GIF) or a challenge npz. */
  image: string;
  /** One binary mask per object. */
  masks?: (string | MaskInput)[];
  /** One label map (0 = background). */
  labelMap?: string;
  /** Label-map values to keep, in label order (default: every non-zero value, ascending). */
  labelValues?: number[];
  /** Names of the labels of a label map, in label order (for the report). */
  labelNames?: string[];
  /** Modality name or alias (CT, MR, XRay, X-Ray, Mammo, Microscope...). */
  modality: string;
  /** Case name; `/` and spaces become `-`. */
  name: string;
  /** Output directory (created if missing). */
  outDir: string;
  /** 2D or 3D (default: 3 for a multi-slice NIfTI/DICOM volume or a 3D npz, else 2). */
  dims?: 2 | 3;
  /** CT window: a preset name (`ct-abdomen`, `ct-lung`...) or `{ level, width }` or `"W/L"`. */
  window?: string | Window;
  /** Percentiles for non-CT volumes (default [0.5, 99.5]). */
  percentiles?: [number, number];
  /** Voxels that define the percentiles and stay 0: 'nonzero' (default) or 'positive'. */
  foreground?: 'nonzero' | 'positive';
  /** Default threshold of binary masks (default 0). */
  threshold?: number;
  /** Fill holes of binary masks (outline annotations). */
  fillHoles?: boolean;
  /** Smallest 2D component kept, in pixels (default 10; 0 keeps all). */
  minSize2d?: number;
  /** Smallest 3D component kept, in voxels (default 100; 0 keeps all). */
  minSize3d?: number;
  /** Crop 3D volumes to the slices with labels (default true). */
  cropZ?: boolean;
  /** Extra slices kept on each side of the crop (default 0). */
  zMargin?: number;
  /**
   * 2D size cap: while the compressed npz would be larger than this many bytes, downscale the
   * original by a further 0.75 (image INTER_AREA, labels INTER_NEAREST, sizes truncated). Default: no cap.
   */
  maxFileBytes?: number;
}

export interface ConvertedLabel {
  /** Label id in the output (1..N). */
  id: number;
  /** Label-map value it came from. */
  value?: number;
  /** Mask file or label name. */
  name?: string;
}

export interface ConvertResult {
  /** Path of the npz written. */
  path: string;
  dims: 2 | 3;
  modality: Modality;
  labels: ConvertedLabel[];
  /** (N,4) or (N,6) int64, row i-1 for label i. */
  boxes: NdArray<'int64'>;
  /** What was dropped, in words (labels removed by the small-component filter or as 1-pixel boxes). */
  removed: string[];
  /** The arrays written. */
  arrays: Record<string, NdArray>;
  /** 3D: the range of source slices kept, inclusive. */
  zRange?: [number, number];
  /** Set when the size cap downscaled the case. */
  scaled?: string;
}

/** Relabel a label map to 1..N without gaps (ids keep their order); returns the ids that were absent. */
function compactLabels(gts: NdArray): { gts: NdArray; lost: number[] } {
  const v = gts.data as Uint8Array | Uint16Array;
  let max = 0;
  const present = new Set<number>();
  for (let i = 0; i < v.length; i++) if (v[i]) present.add(v[i]);
  for (const id of present) max = Math.max(max, id);
  const lost: number[] = [];
  for (let id = 1; id <= max; id++) if (!present.has(id)) lost.push(id);
  if (!lost.length) return { gts, lost };
  const map = new Map([...present].sort((a, b) => a - b).map((id, i) => [id, i + 1]));
  for (let i = 0; i < v.length; i++) if (v[i]) v[i] = map.get(v[i])!;
  return { gts, lost };
}

/** `2D_<Modality>_<name>.npz` / `3D_<Modality>_<name>.npz`, with `/` and spaces in the name as `-`. */
export function challengeFileName(dims: 2 | 3, modality: string, name: string): string {
  return `${dims}D_${parseModality(modality)}_${name.replace(/[/\\\s]/g, '-')}.npz`;
}

function toLabelInts(arr: NdArray, file: string): Int32Array {
  const v = toFloat64(arr);
  const out = new Int32Array(v.length);
  for (let i = 0; i < v.length; i++) {
    const x = v[i];
    if (!Number.isInteger(x) || x < 0 || x > 2 ** 31 - 1)
      throw new InputError(`label map value ${x} is not a non-negative integer`, { file });
    out[i] = x;
  }
  return out;
}

/** A 2D label map from a (H,W) or grey (H,W,C) image (channels must agree). */
function labelPlane(img: DecodedImage, file: string): NdArray {
  const a = img.array;
  if (a.shape.length === 2) return a;
  if (a.shape.length === 3 && a.shape[0] === 1) return { ...a, shape: a.shape.slice(1) };
  if (a.shape.length === 3) {
    const [h, w, c] = a.shape;
    const v = toFloat64(a);
    const out = new Float64Array(h * w);
    for (let i = 0; i < h * w; i++) {
      for (let k = 1; k < Math.min(c, 3); k++)
        if (v[i * c + k] !== v[i * c])
          throw new InputError('a colour label map is not supported: use a grey image', { file });
      out[i] = v[i * c];
    }
    return ndarray('float64', [h, w], out);
  }
  throw new InputError(`label map must be 2D, got shape [${a.shape.join(', ')}]`, { file });
}

/** Convert one case and write it to `outDir`. */
export async function convertCase(opts: ConvertOptions): Promise<ConvertResult> {
  const modality = parseModality(opts.modality);
  if (opts.masks?.length && opts.labelMap) throw new InputError('give either masks or a label map, not both');
  const outDirReady = mkdir(opts.outDir, { recursive: true });

  // ---- challenge npz input: taken as is, boxes added ----
  if (opts.image.toLowerCase().endsWith('.npz')) {
    const src = await readNpzFile(opts.image);
    const imgs = src.imgs;
    const gts = src.gts;
    if (!imgs || !gts) throw new InputError("an npz input needs 'imgs' and 'gts'", { file: opts.image });
    const dims: 2 | 3 = opts.dims ?? (imgs.shape.length === 3 && imgs.shape[2] !== 3 ? 3 : 2);
    const { labels, boxes } = boxesFromLabels(gts);
    const arrays: Record<string, NdArray> = { imgs, gts, boxes };
    if (dims === 3 && src.spacing) arrays.spacing = ndarray('float64', [3], toFloat64(src.spacing));
    const out = path.join(opts.outDir, challengeFileName(dims, modality, opts.name));
    await outDirReady;
    await writeNpzFile(out, arrays, { compress: true });
    return {
      path: out,
      dims,
      modality,
      labels: labels.map((id) => ({ id, value: id })),
      boxes,
      removed: [],
      arrays,
    };
  }

  const image = await readImageFile(opts.image);
  let arr = image.array;
  const volumetric = image.format === 'nifti' || image.format === 'dicom';
  const dims: 2 | 3 =
    opts.dims ?? (volumetric && arr.shape.length === 3 && arr.shape[0] > 1 && arr.shape[2] !== 3 ? 3 : 2);
  if (dims === 3 && arr.shape.length !== 3)
    throw new InputError(`a 3D case needs a (D,H,W) volume, got shape [${arr.shape.join(', ')}]`, {
      file: opts.image,
    });
  if (dims === 2 && volumetric && arr.shape.length === 3 && arr.shape[0] === 1)
    arr = { ...arr, shape: arr.shape.slice(1) };
  const spatial = dims === 3 ? arr.shape : arr.shape.slice(0, 2);
  const n = spatial.reduce((a, b) => a * b, 1);
  const sameShape = (s: number[]) => s.length === spatial.length && s.every((d, i) => d === spatial[i]);

  // ---- labels ----
  let labels: Int32Array = new Int32Array(n);
  let info = new Map<number, ConvertedLabel>();
  if (opts.labelMap) {
    const lm = await readImageFile(opts.labelMap);
    const plane = dims === 3 ? lm.array : labelPlane(lm, opts.labelMap);
    if (!sameShape(plane.shape))
      throw new InputError(
        `label map shape [${plane.shape.join(', ')}] does not match the image [${spatial.join(', ')}]`,
        {
          file: opts.labelMap,
        },
      );
    const values = toLabelInts(plane, opts.labelMap);
    if (opts.labelValues) {
      const map = new Map(opts.labelValues.map((v, i) => [v, i + 1]));
      for (let i = 0; i < n; i++) labels[i] = map.get(values[i]) ?? 0;
      opts.labelValues.forEach((v, i) =>
        info.set(i + 1, { id: i + 1, value: v, name: opts.labelNames?.[i] }),
      );
    } else {
      labels = values;
      const ids = [...new Set(values)].filter((v) => v !== 0).sort((a, b) => a - b);
      ids.forEach((v, i) => info.set(v, { id: v, value: v, name: opts.labelNames?.[i] }));
    }
  } else if (opts.masks?.length) {
    if (dims === 3)
      throw new InputError('per-object masks are supported for 2D images; give a label map for volumes');
    const [h, w] = spatial;
    const objs: { mask: Uint8Array; area: number; name: string; index: number }[] = [];
    for (const [index, m] of opts.masks.entries()) {
      const spec: MaskInput = typeof m === 'string' ? { path: m } : m;
      const img = await readImageFile(spec.path);
      const bin = binarize(img.array, spec.threshold ?? opts.threshold ?? 0);
      let mask = bin.data;
      if (spec.offset) {
        const [top, left] = spec.offset;
        const [mh, mw] = bin.shape;
        if (top < 0 || left < 0 || top + mh > h || left + mw > w)
          throw new InputError(`mask of ${mh}x${mw} at [${top}, ${left}] does not fit the ${h}x${w} image`, {
            file: spec.path,
          });
        mask = new Uint8Array(n);
        for (let y = 0; y < mh; y++) mask.set(bin.data.subarray(y * mw, y * mw + mw), (y + top) * w + left);
      } else if (!sameShape(bin.shape))
        throw new InputError(`mask shape [${bin.shape.join(', ')}] does not match the image [${h}, ${w}]`, {
          file: spec.path,
        });
      if (spec.fillHoles ?? opts.fillHoles) fillHoles(mask, h, w);
      let area = 0;
      for (let i = 0; i < n; i++) area += mask[i];
      objs.push({ mask, area, name: spec.name ?? path.basename(spec.path), index });
    }
    // Largest first (stable for equal areas); later (smaller) objects take the pixels they cover.
    objs.sort((a, b) => b.area - a.area || a.index - b.index);
    objs.forEach((o, k) => {
      for (let i = 0; i < n; i++) if (o.mask[i]) labels[i] = k + 1;
      info.set(k + 1, { id: k + 1, name: o.name });
    });
  }

  // ---- clean-up: small components, degenerate boxes ----
  const removed: string[] = [];
  const minSize2d = opts.minSize2d ?? 10;
  const before = new Set(info.keys());
  if (dims === 3) {
    removeSmallComponents(labels, spatial, opts.minSize3d ?? 100);
    const plane = spatial[1] * spatial[2];
    for (let z = 0; z < spatial[0]; z++)
      removeSmallComponents(labels.subarray(z * plane, (z + 1) * plane), spatial.slice(1), minSize2d);
  } else removeSmallComponents(labels, spatial, minSize2d);
  let ext = labelExtents(labels, spatial);
  for (const id of before) if (!ext.has(id)) removed.push(`${info.get(id)?.name ?? id} (small components)`);
  const degenerate = [...ext.entries()].filter(
    ([, e]) => e[3] === e[0] || e[4] === e[1] || (dims === 3 && e[5] === e[2]),
  );
  if (degenerate.length) {
    const drop = new Set(degenerate.map(([id]) => id));
    for (let i = 0; i < n; i++) if (drop.has(labels[i])) labels[i] = 0;
    for (const id of drop) removed.push(`${info.get(id)?.name ?? id} (box one pixel wide)`);
    ext = labelExtents(labels, spatial);
  }
  const kept = [...ext.keys()].sort((a, b) => a - b);
  const relabel = new Map(kept.map((id, i) => [id, i + 1]));
  for (let i = 0; i < n; i++) if (labels[i]) labels[i] = relabel.get(labels[i])!;
  info = new Map(kept.map((id, i) => [i + 1, { ...(info.get(id) ?? { value: id }), id: i + 1 }]));

  // ---- image intensities (whole volume, before the crop) ----
  let imgs: NdArray<'uint8'>;
  if (dims === 3) {
    imgs =
      modality === 'CT' || opts.window
        ? windowToUint8(arr, opts.window ?? 'ct-abdomen')
        : percentileToUint8(arr, { percentiles: opts.percentiles, foreground: opts.foreground });
  } else imgs = toRgb8(arr, opts.window);

  // ---- 3D crop ----
  let gtsShape = spatial;
  let zRange: [number, number] | undefined;
  let labelData: Int32Array = labels;
  if (dims === 3) {
    const [D, H, W] = spatial;
    zRange = [0, D - 1];
    if ((opts.cropZ ?? true) && kept.length) {
      let z0 = D;
      let z1 = -1;
      for (const e of ext.values()) {
        z0 = Math.min(z0, e[2]);
        z1 = Math.max(z1, e[5]);
      }
      const m = opts.zMargin ?? 0;
      zRange = [Math.max(0, z0 - m), Math.min(D - 1, z1 + m)];
    }
    const [a, b] = zRange;
    const plane = H * W;
    imgs = ndarray('uint8', [b - a + 1, H, W], imgs.data.slice(a * plane, (b + 1) * plane));
    labelData = labels.slice(a * plane, (b + 1) * plane);
    gtsShape = [b - a + 1, H, W];
  }
  let gts: NdArray = ndarray(kept.length > 255 ? 'uint16' : 'uint8', gtsShape, labelData);
  let { boxes } = boxesFromLabels(gts);
  let arrays: Record<string, NdArray> = { imgs, gts, boxes };
  if (dims === 3) arrays.spacing = ndarray('float64', [3], (image.spacing ?? [1, 1, 1]).slice(0, 3));
  let bytes = writeNpz(arrays, { compress: true });
  const cap = opts.maxFileBytes;
  let scale = 1;
  let scaledNote: string | undefined;
  while (dims === 2 && cap !== undefined && bytes.length > cap) {
    scale *= 0.75;
    const [h, w] = spatial;
    const nh = Math.trunc(h * scale);
    const nw = Math.trunc(w * scale);
    if (nh < 2 || nw < 2) throw new InputError(`cannot fit the case into ${cap} bytes`, { file: opts.image });
    const small = compactLabels(resizeNearest(gts, nh, nw));
    gts = small.gts;
    boxes = boxesFromLabels(gts).boxes;
    arrays = { imgs: resizeArea(imgs, nh, nw), gts, boxes };
    if (small.lost.length) {
      for (const id of small.lost) removed.push(`${info.get(id)?.name ?? id} (lost in downscaling)`);
      info = new Map(
        [...info.values()]
          .filter((l) => !small.lost.includes(l.id))
          .map((l, i) => [i + 1, { ...l, id: i + 1 }]),
      );
    }
    bytes = writeNpz(arrays, { compress: true });
    scaledNote = `downscaled x${scale} to ${nh}x${nw} to fit ${cap} bytes`;
  }
  const out = path.join(opts.outDir, challengeFileName(dims, modality, opts.name));
  await outDirReady;
  await writeFileAtomic(out, bytes);
  return {
    path: out,
    dims,
    modality,
    labels: [...info.values()],
    boxes,
    removed,
    arrays,
    zRange,
    scaled: scaledNote,
  };
}
