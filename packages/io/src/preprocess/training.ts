/**
 * One training sample exactly as the original dataset builds it (spec §10.2 steps 2–11): slice,
 * label, resize-longest-side and normalisation, nearest-neighbour gt, crop box with a random
 * margin, random flips of the padded 256² arrays, the box prompt from the flipped gt, and the
 * content crops from the unflipped original. The random draws are behind `SampleChoices`, so a
 * recorded sample can be replayed and the default draws come from a seeded `Rng`.
 */
import { InputError, MedsamError, MODALITIES, parseModality, Rng } from '@mcp-medsam/core/common';
import type { NdArray } from '../dtype.js';
import { resizeNearestRaw } from '../resize/inter_nearest.js';
import { resizeAreaU8 } from '../resize/inter_area.js';
import { longestSideSize } from '../resize/longest_side.js';
import {
  bboxOfMask,
  cropContentData,
  IMAGE_SIZE,
  normalizationTable,
  padNormalized,
  type Box,
} from './inference.js';

/** A side of a box, in the order the original draws its margins. */
export type BoxSide = 'x0' | 'x1' | 'y0' | 'y1';
/** The margin draw order: x0, x1, y0, y1. */
export const BOX_SIDES: readonly BoxSide[] = ['x0', 'x1', 'y0', 'y1'];

/**
 * The random decisions of one sample, called in the original's order: `slice` (3D only), `label`,
 * `cropMargin` x0, x1, y0, y1, `flip` horizontal then vertical, `boxMargin` x0, x1, y0, y1.
 */
export interface SampleChoices {
  /** A slice index in [0, depth) (python `random.randint(0, D-1)`). */
  slice(depth: number): number;
  /** One of the foreground labels, sorted ascending (python `random.choice`). */
  label(labels: readonly number[]): number;
  /** Margin in [0, max] of a side of the crop box at original resolution (`random.randint(0, 5)`). */
  cropMargin(side: BoxSide, max: number): number;
  /** Whether to flip (`random.random() > 0.5`), horizontal first. */
  flip(axis: 'horizontal' | 'vertical'): boolean;
  /** Margin in [0, max] of a side of the box prompt in the 256 frame. */
  boxMargin(side: BoxSide, max: number): number;
}

/** Default choices: uniform draws from a seeded generator (not python's Mersenne Twister). */
export function rngChoices(rng: Rng): SampleChoices {
  return {
    slice: (depth) => rng.int(0, depth - 1),
    label: (labels) => rng.choice(labels),
    cropMargin: (_side, max) => rng.int(0, max),
    flip: () => rng.random() > 0.5,
    boxMargin: (_side, max) => rng.int(0, max),
  };
}

/** Recorded decisions of one sample (margins in the x0, x1, y0, y1 order). */
export interface RecordedChoices {
  slice?: number;
  label: number;
  flips: { horizontal: boolean; vertical: boolean };
  cropMargins: readonly [number, number, number, number];
  boxMargins: readonly [number, number, number, number];
}

/** Choices that replay a recording (e.g. the one of fixtures/train/step-a.json). */
export function replayChoices(rec: RecordedChoices): SampleChoices {
  const side = (s: BoxSide) => BOX_SIDES.indexOf(s);
  return {
    slice: (depth) => {
      if (rec.slice === undefined)
        throw new InputError('replayChoices: the recording has no slice for a 3D case');
      if (rec.slice < 0 || rec.slice >= depth)
        throw new InputError(`replayChoices: slice ${rec.slice} outside [0, ${depth})`);
      return rec.slice;
    },
    label: () => rec.label,
    cropMargin: (s) => rec.cropMargins[side(s)],
    flip: (axis) => rec.flips[axis],
    boxMargin: (s) => rec.boxMargins[side(s)],
  };
}

/** Why the original would throw the sample away and draw a new one. */
export type ResampleReason = 'no-background' | 'no-foreground' | 'empty-after-resize' | 'mr-totalseg-small';

/** The original resamples (from scratch, a new modality and file) where this is thrown. */
export class ResampleError extends MedsamError {
  readonly reason: ResampleReason;
  constructor(reason: ResampleReason, message: string, options: { file?: string } = {}) {
    super('E_RESAMPLE', message, options);
    this.reason = reason;
  }
}

/** Options of `buildTrainingSample`. Defaults reproduce the original. */
export interface TrainingSampleOptions {
  /** Largest random margin of the crop box at original resolution (default 5). */
  cropShift?: number;
  /** Largest random margin of the 256-frame box prompt (default 5; the CLI flag is not forwarded). */
  boxShift?: number;
  /**
   * Spec §14 #8: take the content crops from the flipped image, i.e. flip them like image, gt and
   * box (default false: the original crops the unflipped image).
   */
  flipCrops?: boolean;
  /**
   * Spec §14 #7: use the canonical modality name in the text ("XRay Image", "Microscopy Image")
   * instead of the raw file-name token (default false).
   */
  canonicalText?: boolean;
  /** Compute the 224² CLIP crop (default true). */
  crop224?: boolean;
}

/** What `buildTrainingSample` decided, for logs and tests. */
export interface TrainingSampleMeta {
  file: string;
  /** The slice of a 3D volume, null for 2D. */
  slice: number | null;
  label: number;
  flips: { horizontal: boolean; vertical: boolean };
  /** Crop box at original resolution, with its margins (half-open crop). */
  cropBox: Box;
  /** Box prompt in the 256 frame (after the flips), with its margins. */
  box: Box;
  /** The label's bounding box at original resolution (inclusive max), before the margins. */
  tightCropBox: Box;
  /** The flipped 256-frame gt's bounding box before the margins. */
  tightBox: Box;
  /** Original size [H, W] (after the MR_totalseg transpose) and resized content size. */
  origHW: [number, number];
  newHW: [number, number];
  /** The crop box selected no pixel: the crops are zeros. */
  cropEmpty: boolean;
}

/** A training sample (spec §10.2 step 12, without the CLIP features and the unused points). */
export interface TrainingSample {
  /** float32 (3,256,256) */
  image: Float32Array;
  /** uint8 (1,256,256), 0/1 (the original returns int64) */
  gt2D: Uint8Array;
  /** float32 [x0, y0, x1, y1] in the 256 frame (the original's (1,1,4)) */
  box: Float32Array;
  /** float32 (3,64,64): the crop-net input */
  crop64: Float32Array;
  /** float32 (3,224,224): the CLIP input; null with `crop224: false` */
  crop224: Float32Array | null;
  categoryIdx: number;
  /** "<modality> Image" */
  text: string;
  meta: TrainingSampleMeta;
}

/** The modality token of a file name: token 0 of `_`-split, or token 1 after a `2D`/`3D` prefix. */
export function modalityToken(fileName: string): string {
  const base = fileName.split(/[\\/]/).pop() ?? fileName;
  const parts = base.split('_');
  return parts[0] === '2D' || parts[0] === '3D' ? (parts[1] ?? '') : parts[0];
}

/** What a label of a prepared slice yields, independent of the random draws. */
export interface PreparedLabel {
  /** The label's mask, nearest-resized and zero padded into the 256² frame (not flipped). */
  gt256: Uint8Array;
  /** The label's bounding box at original resolution (inclusive max). */
  tightCropBox: Box;
  /** The bounding box of `gt256` (inclusive max; null: the label vanished in the resize). */
  tightBox256: Box | null;
}

/**
 * The part of a training sample that no random choice after the slice affects: the slice, its
 * INTER_AREA-resized content, its labels and (on demand) each label's resized mask. A loader can
 * keep it and draw many samples from it (`sampleFromPreparedSlice`) without resizing the image
 * or rescanning the labels each time; the samples are the same as `buildTrainingSample`'s.
 */
export class PreparedSlice {
  readonly file: string;
  /** The slice of a 3D volume, null for 2D. */
  readonly slice: number | null;
  /** Original content, uint8 (h, w, c). */
  readonly img: Uint8Array;
  readonly h: number;
  readonly w: number;
  readonly c: number;
  /** INTER_AREA resize of `img` to (newH, newW, c). */
  readonly resized: Uint8Array;
  readonly newH: number;
  readonly newW: number;
  /** Foreground labels present, ascending. */
  readonly labels: readonly number[];
  private readonly gt: Uint8Array | Uint16Array;
  private readonly perLabel = new Map<number, PreparedLabel>();
  private normLut?: Float32Array;

  constructor(fields: {
    file: string;
    slice: number | null;
    img: Uint8Array;
    h: number;
    w: number;
    c: number;
    gt: Uint8Array | Uint16Array;
  }) {
    const { file, slice, img, h, w, c, gt } = fields;
    this.file = file;
    this.slice = slice;
    this.img = img;
    this.h = h;
    this.w = w;
    this.c = c;
    this.gt = gt;
    const { newH, newW } = longestSideSize(h, w, IMAGE_SIZE);
    this.newH = newH;
    this.newW = newW;
    this.resized = resizeAreaU8(img, h, w, c, newH, newW);
    const present = new Uint8Array(65536);
    for (let i = 0; i < gt.length; i++) present[gt[i]] = 1;
    if (!present[0]) throw new ResampleError('no-background', 'the slice has no background pixel', { file });
    const labels: number[] = [];
    for (let v = 1; v < 65536; v++) if (present[v]) labels.push(v);
    if (labels.length === 0)
      throw new ResampleError('no-foreground', 'the slice has no foreground label', { file });
    this.labels = labels;
  }

  /** The min-max normalisation of `resized` as a 256-entry table (computed once). */
  get normalization(): Float32Array {
    return (this.normLut ??= normalizationTable(this.resized));
  }

  /** Approximate bytes this object keeps alive (for a cache's budget). */
  get bytes(): number {
    return this.img.byteLength + this.gt.byteLength + this.resized.byteLength + this.perLabel.size * 65_600;
  }

  /** The resized mask and original-resolution box of one of `labels` (computed once). */
  label(label: number): PreparedLabel {
    let p = this.perLabel.get(label);
    if (p) return p;
    if (!this.labels.includes(label))
      throw new InputError(`label ${label} is not one of [${this.labels.join(', ')}]`, { file: this.file });
    const { h, w, newH, newW, gt } = this;
    const gtOrig = new Uint8Array(h * w);
    for (let i = 0; i < gtOrig.length; i++) gtOrig[i] = gt[i] === label ? 1 : 0;
    const gtSmall = resizeNearestRaw(gtOrig, h, w, 1, newH, newW);
    const S = IMAGE_SIZE;
    const gt256 = new Uint8Array(S * S);
    for (let y = 0; y < newH; y++) gt256.set(gtSmall.subarray(y * newW, (y + 1) * newW), y * S);
    p = { gt256, tightCropBox: bboxOfMask(gtOrig, h, w) as Box, tightBox256: bboxOfMask(gt256, S, S) };
    this.perLabel.set(label, p);
    return p;
  }
}

/**
 * Steps 1–6 of a training sample that precede the label draw: validation, the MR_totalseg
 * transpose, the slice (`slice`: a fixed index or the draw of `SampleChoices.slice`), the resize
 * and the label scan. Throws a `ResampleError` where the original resamples.
 */
export function prepareTrainingSlice(
  arrays: { imgs: NdArray; gts: NdArray },
  fileName: string,
  slice: number | ((depth: number) => number),
): PreparedSlice {
  const file = fileName;
  let { imgs, gts } = arrays;
  if (!imgs || !gts) throw new InputError(`the case needs both imgs and gts arrays`, { file });
  if (imgs.dtype !== 'uint8') throw new InputError(`imgs: expected uint8, got ${imgs.dtype}`, { file });
  if (fileName.includes('MR_totalseg') && imgs.shape.length === 3 && gts.shape.length === 3) {
    const perm = [0, 1, 2].sort((a, b) => imgs.shape[a] - imgs.shape[b]); // stable
    imgs = transpose3(imgs, perm);
    gts = transpose3(gts, perm);
    if (imgs.shape[1] <= 100) {
      throw new ResampleError(
        'mr-totalseg-small',
        `MR_totalseg volume with middle dimension ${imgs.shape[1]} <= 100`,
        { file },
      );
    }
  }

  // Slice (3D) or the image itself (2D).
  let h: number;
  let w: number;
  let c: number;
  let img: Uint8Array;
  let gtOff = 0;
  let z: number | null = null;
  if (gts.shape.length > 2) {
    if (gts.shape.length !== 3 || imgs.shape.length !== 3 || imgs.shape.some((d, i) => d !== gts.shape[i])) {
      throw new InputError(`3D case: imgs [${imgs.shape}] and gts [${gts.shape}] must both be (D,H,W)`, {
        file,
      });
    }
    const [d] = gts.shape;
    [h, w] = gts.shape.slice(1);
    c = 1;
    if (d === 0) throw new InputError('3D case with no slices', { file });
    z = typeof slice === 'number' ? slice : slice(d);
    if (!Number.isSafeInteger(z) || z < 0 || z >= d)
      throw new InputError(`slice ${z} outside [0, ${d})`, { file });
    img = (imgs.data as Uint8Array).subarray(z * h * w, (z + 1) * h * w);
    gtOff = z * h * w;
  } else {
    if (gts.shape.length !== 2)
      throw new InputError(`gts: expected (H,W) or (D,H,W), got [${gts.shape}]`, { file });
    [h, w] = gts.shape;
    const s = imgs.shape;
    if (!((s.length === 2 || (s.length === 3 && (s[2] === 3 || s[2] === 1))) && s[0] === h && s[1] === w)) {
      throw new InputError(`imgs [${s}] does not match gts [${gts.shape}] (expected (H,W,3) or (H,W))`, {
        file,
      });
    }
    c = s.length === 3 ? s[2] : 1;
    img = imgs.data as Uint8Array;
  }
  if (h <= 0 || w <= 0) throw new InputError(`empty image ${h} x ${w}`, { file });
  return new PreparedSlice({ file, slice: z, img, h, w, c, gt: labelsU16(gts, gtOff, h * w) });
}

/**
 * Build one training sample from a case's `imgs` (2D (H,W,3) or (H,W); 3D (D,H,W); uint8) and
 * `gts` ((H,W) or (D,H,W), integer labels, cast to uint16 as the original does). `choices` makes
 * the random decisions (an `Rng` is wrapped with `rngChoices`). Throws a `ResampleError` where the
 * original resamples, an `InputError` for malformed input or an unknown modality.
 */
export function buildTrainingSample(
  arrays: { imgs: NdArray; gts: NdArray },
  fileName: string,
  choices: SampleChoices | Rng,
  options: TrainingSampleOptions = {},
): TrainingSample {
  const ch: SampleChoices = choices instanceof Rng ? rngChoices(choices) : choices;
  // The modality is checked before any array is touched, as before.
  parseModality(modalityToken(fileName), fileName);
  const prepared = prepareTrainingSlice(arrays, fileName, (d) => ch.slice(d));
  return sampleFromPreparedSlice(prepared, ch, options);
}

/**
 * Steps 6–11 of a training sample from a prepared slice: the label draw, crop box, flips, box
 * prompt and content crops. `prepared` is not modified, so it can serve any number of samples.
 */
export function sampleFromPreparedSlice(
  prepared: PreparedSlice,
  choices: SampleChoices | Rng,
  options: TrainingSampleOptions = {},
): TrainingSample {
  const ch: SampleChoices = choices instanceof Rng ? rngChoices(choices) : choices;
  const { cropShift = 5, boxShift = 5, flipCrops = false, canonicalText = false, crop224 = true } = options;
  const { file, img, h, w, c, newH, newW, slice, labels } = prepared;
  const token = modalityToken(file);
  const modality = parseModality(token, file);
  const categoryIdx = MODALITIES.indexOf(modality);
  const text = `${canonicalText ? modality : token} Image`;

  const S = IMAGE_SIZE;

  // Step 6: label.
  const label = ch.label(labels);
  const prep = prepared.label(label);

  // Step 7: crop box at original resolution (before the flips).
  const tightCropBox = [...prep.tightCropBox] as Box;
  const r = BOX_SIDES.map((s) => margin(ch.cropMargin(s, cropShift), cropShift, 'crop', file));
  const cropBox: Box = [
    Math.max(0, tightCropBox[0] - r[0]),
    Math.max(0, tightCropBox[1] - r[2]),
    Math.min(w, tightCropBox[2] + r[1]),
    Math.min(h, tightCropBox[3] + r[3]),
  ];
  // Step 8: flips of the padded 256² arrays (horizontal drawn first). They are applied while
  // steps 5 and 6 build the arrays, which saves a pass over each.
  const flips = { horizontal: !!ch.flip('horizontal'), vertical: false };
  flips.vertical = !!ch.flip('vertical');
  const fh = flips.horizontal;
  const fv = flips.vertical;
  // Step 5: normalise and pad the resized content.
  const image = padNormalized(prepared.resized, newH, newW, c, prepared.normalization, S, undefined, {
    flipH: fh,
    flipV: fv,
  });
  const gt256 = flipMask(prep.gt256, S, fh, fv);

  // Step 9: box prompt from the flipped gt, i.e. the unflipped gt's box mirrored.
  const t = prep.tightBox256;
  if (t === null) {
    throw new ResampleError(
      'empty-after-resize',
      `label ${label} vanishes when resized to ${newH} x ${newW}`,
      { file },
    );
  }
  const tightBox: Box = [
    fh ? S - 1 - t[2] : t[0],
    fv ? S - 1 - t[3] : t[1],
    fh ? S - 1 - t[0] : t[2],
    fv ? S - 1 - t[1] : t[3],
  ];
  const q = BOX_SIDES.map((s) => margin(ch.boxMargin(s, boxShift), boxShift, 'box', file));
  const box: Box = [
    Math.max(0, tightBox[0] - q[0]),
    Math.max(0, tightBox[1] - q[2]),
    Math.min(S, tightBox[2] + q[1]),
    Math.min(S, tightBox[3] + q[3]),
  ];

  // Step 11: content crops (unflipped original unless flipCrops).
  const sizes = crop224 ? [64, 224] : [64];
  const crops = cropContentData(
    img,
    h,
    w,
    c,
    cropBox,
    sizes,
    flipCrops ? { flipH: flips.horizontal, flipV: flips.vertical } : {},
  );
  const to3 = (a: Float32Array, s: number) => {
    if (c === 3) return a;
    const out = new Float32Array(3 * s * s);
    for (let k = 0; k < 3; k++) out.set(a, k * s * s);
    return out;
  };

  return {
    image,
    gt2D: gt256,
    box: Float32Array.from(box),
    crop64: to3(crops[0].data, 64),
    crop224: crop224 ? to3(crops[1].data, 224) : null,
    categoryIdx,
    text,
    meta: {
      file,
      slice,
      label,
      flips,
      cropBox,
      box,
      tightCropBox,
      tightBox,
      origHW: [h, w],
      newHW: [newH, newW],
      cropEmpty: crops[0].empty,
    },
  };
}

function margin(v: number, max: number, what: string, file: string): number {
  if (!Number.isSafeInteger(v) || v < 0 || v > max)
    throw new InputError(`${what} margin ${v} outside [0, ${max}]`, { file });
  return v;
}

/** `gts.astype(np.uint16)` of n values from offset (no copy for uint8/uint16). */
function labelsU16(gts: NdArray, off: number, n: number): Uint8Array | Uint16Array {
  const d = gts.data;
  if (d.length < off + n) throw new InputError(`gts has ${d.length} values, needs ${off + n}`);
  if (gts.dtype === 'uint8' || gts.dtype === 'bool') return (d as Uint8Array).subarray(off, off + n);
  if (gts.dtype === 'uint16') return (d as Uint16Array).subarray(off, off + n);
  const out = new Uint16Array(n);
  if (d instanceof BigInt64Array || d instanceof BigUint64Array) {
    for (let i = 0; i < n; i++) out[i] = Number(BigInt.asUintN(16, d[off + i]));
  } else if (gts.dtype === 'float16') {
    throw new InputError('gts: float16 labels are not supported');
  } else {
    const a = d as Float64Array;
    for (let i = 0; i < n; i++) {
      const v = Math.trunc(a[off + i]);
      if (!Number.isFinite(v)) throw new InputError(`gts: label value ${a[off + i]} is not finite`);
      out[i] = v; // wraps modulo 2^16 like a C cast of an in-range integer
    }
  }
  return out;
}

/** Transpose a 3-D array by `perm` (numpy `np.transpose(a, perm)`), any dtype. */
function transpose3<T extends NdArray>(a: T, perm: number[]): T {
  const s = a.shape;
  const ns = perm.map((p) => s[p]);
  const strides = [s[1] * s[2], s[2], 1];
  const [t0, t1, t2] = perm.map((p) => strides[p]);
  const Ctor = a.data.constructor as new (n: number) => typeof a.data;
  const out = new Ctor(a.data.length);
  const o = out as unknown as Float64Array;
  const src = a.data as unknown as Float64Array;
  let k = 0;
  for (let i = 0; i < ns[0]; i++)
    for (let j = 0; j < ns[1]; j++) {
      const b = i * t0 + j * t1;
      for (let l = 0; l < ns[2]; l++) o[k++] = src[b + l * t2];
    }
  return { dtype: a.dtype, shape: ns, data: out } as T;
}

/** A copy of a (size, size) mask flipped along the columns and/or the rows. */
function flipMask(src: Uint8Array, size: number, flipH: boolean, flipV: boolean): Uint8Array {
  if (!flipH && !flipV) return src.slice();
  const out = new Uint8Array(size * size);
  for (let y = 0; y < size; y++) {
    const s = (flipV ? size - 1 - y : y) * size;
    const o = y * size;
    out.set(src.subarray(s, s + size), o);
    if (flipH) out.subarray(o, o + size).reverse();
  }
  return out;
}
