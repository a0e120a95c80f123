/**
 * DICOM (Part 10 files) through `dicom-parser`: single images and series stacked into volumes.
 *
 * Supported: uncompressed pixel data (implicit VR little endian, explicit VR little and big
 * endian), 8/16/32 bits allocated, signed or unsigned, 1 sample (MONOCHROME1/2, values as stored)
 * or 3 (RGB, either planar configuration), multi-frame. Compressed transfer syntaxes (JPEG,
 * JPEG 2000, RLE...) are refused with a FormatError that says so: decompress them first (for
 * example with `gdcmconv --raw` or `dcmdjpeg`).
 *
 * Rescale slope/intercept are applied: the result is int16/int32 when they are integers and the
 * values fit, float32 otherwise. A series is sorted along the slice normal (the cross product of
 * the two ImageOrientationPatient directions) by ImagePositionPatient, falling back to
 * InstanceNumber; `array` is `(D, H, W)` and `spacing` `(x, y, z)` = (column spacing, row
 * spacing, distance between slice positions).
 */
import { readdir, stat } from 'node:fs/promises';
import path from 'node:path';
import dicomParser from 'dicom-parser';
import { FormatError, InputError } from '@mcp-medsam/core/common';
import { type DType, type NdArray, ndarray } from '../dtype.js';
import { readFileBytes } from '../fs.js';
import {
  DEFAULT_MAX_BYTES,
  type DecodedImage,
  type ReadImageOptions,
  affineFromLps,
  asFormatError,
} from './types.js';

const UNCOMPRESSED: Record<string, { little: boolean }> = {
  '1.2.840.10008.1.2': { little: true },
  '1.2.840.10008.1.2.1': { little: true },
  '1.2.840.10008.1.2.2': { little: false },
};

/** One decoded DICOM file, with the attributes needed to place it in a series. */
export interface DicomImage extends DecodedImage {
  format: 'dicom';
  /** (0020,000E) */
  seriesInstanceUid?: string;
  /** (0020,0013) */
  instanceNumber?: number;
  /** (0008,0060) */
  modality?: string;
  /** (0028,0004) */
  photometricInterpretation?: string;
  /** (0020,0032), LPS mm */
  imagePositionPatient?: number[];
  /** (0020,0037), row then column direction cosines */
  imageOrientationPatient?: number[];
  /** (0018,0050) */
  sliceThickness?: number;
}

/** Whether `bytes` look like a DICOM Part 10 file ("DICM" at offset 128). */
export function isDicomBytes(bytes: Uint8Array): boolean {
  return (
    bytes.length >= 132 &&
    bytes[128] === 0x44 &&
    bytes[129] === 0x49 &&
    bytes[130] === 0x43 &&
    bytes[131] === 0x4d
  );
}

function numbers(ds: dicomParser.DataSet, tag: string): number[] | undefined {
  const s = ds.string(tag);
  if (s === undefined || s.trim() === '') return undefined;
  const v = s.split('\\').map((x) => Number(x.trim()));
  return v.every(Number.isFinite) ? v : undefined;
}

/**
 * Decode one DICOM file: `(H, W)`, `(H, W, 3)` for RGB, `(F, H, W[, 3])` for multi-frame.
 * `spacing` is `(x, y)` from PixelSpacing (plus SpacingBetweenSlices/SliceThickness for multi-frame).
 */
export function readDicom(bytes: Uint8Array, options: ReadImageOptions = {}): DicomImage {
  const file = options.file;
  const maxBytes = options.maxBytes ?? DEFAULT_MAX_BYTES;
  if (!isDicomBytes(bytes))
    throw new FormatError('not a DICOM Part 10 file (no DICM prefix at offset 128)', { file });
  const ds = asFormatError(file, 'DICOM data set', () => dicomParser.parseDicom(bytes));
  const ts = (ds.string('x00020010') ?? '').replace(/\0/g, '').trim();
  const syntax = UNCOMPRESSED[ts];
  const pixel = ds.elements.x7fe00010;
  if (!pixel) throw new FormatError('DICOM file has no pixel data (7FE0,0010)', { file });
  if (!syntax || pixel.encapsulatedPixelData)
    throw new FormatError(
      `compressed DICOM transfer syntax ${ts || '(none)'} is not supported; decompress the file first (e.g. gdcmconv --raw)`,
      { file },
    );
  const rows = ds.uint16('x00280010') ?? 0;
  const cols = ds.uint16('x00280011') ?? 0;
  const spp = ds.uint16('x00280002') ?? 1;
  const bitsAllocated = ds.uint16('x00280100') ?? 0;
  const bitsStored = ds.uint16('x00280101') ?? bitsAllocated;
  const signed = (ds.uint16('x00280103') ?? 0) === 1;
  const planar = ds.uint16('x00280006') ?? 0;
  const frames = Math.max(1, Math.trunc(Number(ds.string('x00280008') ?? '1')) || 1);
  if (rows < 1 || cols < 1) throw new FormatError(`invalid DICOM image size ${rows}x${cols}`, { file });
  if (spp !== 1 && spp !== 3) throw new FormatError(`unsupported DICOM SamplesPerPixel ${spp}`, { file });
  if (![8, 16, 32].includes(bitsAllocated))
    throw new FormatError(`unsupported DICOM BitsAllocated ${bitsAllocated}`, { file });
  if (bitsStored < 1 || bitsStored > bitsAllocated)
    throw new FormatError(`invalid DICOM BitsStored ${bitsStored}`, { file });
  const size = bitsAllocated / 8;
  const n = rows * cols * spp * frames;
  if (n * Math.max(size, 4) > maxBytes)
    throw new FormatError(`DICOM image of ${n} samples exceeds the size limit`, { file });
  if (pixel.dataOffset + n * size > bytes.length || pixel.length < n * size)
    throw new FormatError(
      `truncated DICOM pixel data: needs ${n * size} bytes, element has ${pixel.length}`,
      { file },
    );

  // Raw samples, native order.
  const dv = new DataView(bytes.buffer, bytes.byteOffset + pixel.dataOffset, n * size);
  const le = syntax.little;
  const vals = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    let x: number;
    if (size === 1) x = signed ? dv.getInt8(i) : dv.getUint8(i);
    else if (size === 2) x = signed ? dv.getInt16(2 * i, le) : dv.getUint16(2 * i, le);
    else x = signed ? dv.getInt32(4 * i, le) : dv.getUint32(4 * i, le);
    if (bitsStored < bitsAllocated) {
      const m = 2 ** bitsStored;
      x = ((x % m) + m) % m; // keep the stored bits (overlay bits above them dropped)
      if (signed && x >= m / 2) x -= m; // sign-extend
    }
    vals[i] = x;
  }
  const slope = numbers(ds, 'x00281053')?.[0] ?? 1;
  const intercept = numbers(ds, 'x00281052')?.[0] ?? 0;
  if (slope !== 1 || intercept !== 0) for (let i = 0; i < n; i++) vals[i] = vals[i] * slope + intercept;

  // Planar configuration 1 (RRR..GGG..BBB per frame) -> interleaved.
  let ordered = vals;
  if (spp === 3 && planar === 1) {
    ordered = new Float64Array(n);
    const plane = rows * cols;
    for (let f = 0; f < frames; f++)
      for (let p = 0; p < plane; p++)
        for (let s = 0; s < 3; s++) ordered[f * plane * 3 + p * 3 + s] = vals[f * plane * 3 + s * plane + p];
  }
  const shape = [...(frames > 1 ? [frames] : []), rows, cols, ...(spp === 3 ? [3] : [])];
  const integral = Number.isInteger(slope) && Number.isInteger(intercept);
  const array = toArray(ordered, shape, integral, bitsAllocated, signed);

  const ps = numbers(ds, 'x00280030'); // row spacing (y), column spacing (x)
  const thickness = numbers(ds, 'x00180050')?.[0];
  const between = numbers(ds, 'x00180088')?.[0];
  const spacing = [ps?.[1] ?? 1, ps?.[0] ?? 1];
  if (frames > 1) spacing.push(between ?? thickness ?? 1);
  const ipp = numbers(ds, 'x00200032');
  const iop = numbers(ds, 'x00200037');
  const out: DicomImage = {
    format: 'dicom',
    array,
    spacing,
    seriesInstanceUid: ds.string('x0020000e')?.replace(/\0/g, '').trim() || undefined,
    instanceNumber: numbers(ds, 'x00200013')?.[0],
    modality: ds.string('x00080060')?.trim() || undefined,
    photometricInterpretation: ds.string('x00280004')?.trim() || undefined,
    imagePositionPatient: ipp?.length === 3 ? ipp : undefined,
    imageOrientationPatient: iop?.length === 6 ? iop : undefined,
    sliceThickness: thickness,
  };
  if (out.imagePositionPatient && out.imageOrientationPatient) {
    const direction = directionFromIop(out.imageOrientationPatient);
    const sp3 = [spacing[0], spacing[1], spacing[2] ?? thickness ?? 1];
    out.origin = out.imagePositionPatient;
    out.direction = direction;
    out.affine = affineFromLps(out.origin, direction, sp3);
  }
  return out;
}

function toArray(
  vals: Float64Array,
  shape: number[],
  integral: boolean,
  bits: number,
  signed: boolean,
): NdArray {
  let lo = Infinity;
  let hi = -Infinity;
  for (const v of vals) {
    if (v < lo) lo = v;
    if (v > hi) hi = v;
  }
  let dtype: DType = 'float32';
  if (integral) {
    if (bits === 8 && !signed && lo >= 0 && hi <= 255) dtype = 'uint8';
    else if (lo >= -32768 && hi <= 32767) dtype = 'int16';
    else if (lo >= 0 && hi <= 65535) dtype = 'uint16';
    else if (lo >= -(2 ** 31) && hi < 2 ** 31) dtype = 'int32';
  }
  return ndarray(dtype, shape, vals);
}

function directionFromIop(iop: number[]): number[] {
  const r = iop.slice(0, 3);
  const c = iop.slice(3, 6);
  const nrm = [r[1] * c[2] - r[2] * c[1], r[2] * c[0] - r[0] * c[2], r[0] * c[1] - r[1] * c[0]];
  // ITK direction: row-major 3x3 whose columns are the x (row), y (column) and z (normal) directions.
  return [r[0], c[0], nrm[0], r[1], c[1], nrm[1], r[2], c[2], nrm[2]];
}

/** Read one DICOM file. */
export async function readDicomFile(
  file: string,
  options: Omit<ReadImageOptions, 'file'> = {},
): Promise<DicomImage> {
  return readDicom(await readFileBytes(file), { ...options, file });
}

export interface ReadDicomSeriesOptions extends Omit<ReadImageOptions, 'file'> {
  /** Which series to read when the files hold several (default: refuse with an InputError listing them). */
  seriesInstanceUid?: string;
}

/**
 * Read a DICOM series (a directory, read non-recursively, or a list of files) into a `(D, H, W)`
 * volume. In a directory, files that are not DICOM (no DICM prefix) are skipped.
 */
export async function readDicomSeries(
  source: string | string[],
  options: ReadDicomSeriesOptions = {},
): Promise<DicomImage> {
  let files: string[];
  let fromDir = false;
  const label = typeof source === 'string' ? source : source[0];
  if (typeof source === 'string' && (await stat(source).catch(() => undefined))?.isDirectory()) {
    fromDir = true;
    files = (await readdir(source)).sort().map((f) => path.join(source, f));
  } else files = typeof source === 'string' ? [source] : [...source];
  const slices: DicomImage[] = [];
  for (const f of files) {
    const st = await stat(f).catch(() => undefined);
    if (fromDir && !st?.isFile()) continue;
    const bytes = await readFileBytes(f);
    if (fromDir && !isDicomBytes(bytes)) continue;
    slices.push(readDicom(bytes, { ...options, file: f }));
  }
  if (slices.length === 0) throw new InputError('no DICOM files found', { file: label });
  const uids = [...new Set(slices.map((s) => s.seriesInstanceUid ?? ''))];
  let chosen = slices;
  if (options.seriesInstanceUid !== undefined) {
    chosen = slices.filter((s) => s.seriesInstanceUid === options.seriesInstanceUid);
    if (!chosen.length)
      throw new InputError(`no slice of series ${options.seriesInstanceUid} (found: ${uids.join(', ')})`, {
        file: label,
      });
  } else if (uids.length > 1) {
    throw new InputError(
      `the files hold ${uids.length} series (${uids.join(', ')}); choose one with seriesInstanceUid`,
      {
        file: label,
      },
    );
  }
  if (chosen.length === 1) return chosen[0];
  const first = chosen[0];
  const [h, w] = first.array.shape.slice(-2);
  for (const s of chosen) {
    if (s.array.shape.length !== 2 || s.array.shape[0] !== h || s.array.shape[1] !== w)
      throw new InputError(
        `series slices must be single-frame grey images of one size; got [${s.array.shape}] and [${first.array.shape}]`,
        { file: label },
      );
  }
  // Sort along the slice normal, or by instance number when positions are missing.
  const iop = first.imageOrientationPatient;
  const normal = iop
    ? [
        iop[1] * iop[5] - iop[2] * iop[4],
        iop[2] * iop[3] - iop[0] * iop[5],
        iop[0] * iop[4] - iop[1] * iop[3],
      ]
    : undefined;
  const havePos = normal !== undefined && chosen.every((s) => s.imagePositionPatient);
  const key = (s: DicomImage) =>
    havePos
      ? s.imagePositionPatient![0] * normal![0] +
        s.imagePositionPatient![1] * normal![1] +
        s.imagePositionPatient![2] * normal![2]
      : (s.instanceNumber ?? 0);
  const sorted = [...chosen].sort((a, b) => key(a) - key(b));
  const d = sorted.length;
  const dtypes = new Set(sorted.map((s) => s.array.dtype));
  const dtype: DType = dtypes.size === 1 ? first.array.dtype : dtypes.has('float32') ? 'float32' : 'int32';
  const out = ndarray(dtype, [d, h, w]);
  const plane = h * w;
  sorted.forEach((s, z) => {
    const src = s.array.data as unknown as ArrayLike<number>;
    const dst = out.data as unknown as { [i: number]: number };
    for (let i = 0; i < plane; i++) dst[z * plane + i] = src[i];
  });
  let dz = first.sliceThickness ?? 1;
  if (havePos) {
    const gaps = sorted.slice(1).map((s, i) => key(s) - key(sorted[i]));
    gaps.sort((a, b) => a - b);
    const med = gaps[gaps.length >> 1];
    if (med > 0) dz = med;
    else
      throw new InputError('series slices share one position (duplicates or not one series)', {
        file: label,
      });
  }
  const spacing = [first.spacing![0], first.spacing![1], dz];
  const result: DicomImage = { ...sorted[0], array: out, spacing };
  if (sorted[0].origin && sorted[0].direction)
    result.affine = affineFromLps(sorted[0].origin, sorted[0].direction, spacing);
  return result;
}
