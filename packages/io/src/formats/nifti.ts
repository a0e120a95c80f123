/**
 * NIfTI-1 and NIfTI-2 (`.nii`, `.nii.gz`), single-file images only (`n+1` / `n+2`).
 *
 * Reading parses the header with `nifti-reader-js` and checks every size against the bytes
 * present before anything is allocated. Writing produces NIfTI-1 single files (`.nii`, or
 * gzipped when the name ends in `.gz`).
 *
 * Orientation: the voxel order of the file is kept, never reoriented. A NIfTI file stores x
 * fastest, so the C-order array is `(z, y, x)` (`(D, H, W)`), exactly what SimpleITK's
 * `GetArrayFromImage` returns; `spacing` is `pixdim[1..3]` in `(x, y, z)` order, as the challenge
 * npz stores it. The affine is the sform when `sform_code >= qform_code` and is non-zero, else
 * the qform (nifti-reader-js's rule, which is also nibabel's for the usual codes), else a plain
 * scaling; `origin` and `direction` are the same transform in ITK's LPS convention.
 */
import { gunzipSync, gzipSync } from 'node:zlib';
import * as nifti from 'nifti-reader-js';
import { FormatError, InputError } from '@mcp-medsam/core/common';
import { type DType, type NdArray, ndarray, numel, toFloat32 } from '../dtype.js';
import { readFileBytes, writeFileAtomic } from '../fs.js';
import {
  DEFAULT_MAX_BYTES,
  type DecodedImage,
  type ReadImageOptions,
  affineFromLps,
  asFormatError,
  lpsFromAffine,
} from './types.js';

const NIFTI_DTYPES: Record<number, DType> = {
  2: 'uint8',
  4: 'int16',
  8: 'int32',
  16: 'float32',
  64: 'float64',
  256: 'int8',
  512: 'uint16',
  768: 'uint32',
  1024: 'int64',
  1280: 'uint64',
};
const NIFTI_RGB24 = 128;
const DTYPE_CODES: Partial<Record<DType, number>> = Object.fromEntries(
  Object.entries(NIFTI_DTYPES).map(([code, dt]) => [dt, Number(code)]),
);

export interface ReadNiftiOptions extends ReadImageOptions {
  /**
   * Apply `scl_slope`/`scl_inter` when they are not the identity (default true). Scaled data
   * comes back as float32 (float64 for float64 files).
   */
  scale?: boolean;
}

/** Whether `bytes` look like a NIfTI file (plain or gzipped: a gzip stream counts as a maybe). */
export function isNiftiBytes(bytes: Uint8Array): boolean {
  if (bytes.length >= 2 && bytes[0] === 0x1f && bytes[1] === 0x8b) return true;
  if (bytes.length < 348) return false;
  const magic = String.fromCharCode(bytes[344], bytes[345], bytes[346]);
  const magic2 = String.fromCharCode(bytes[4], bytes[5], bytes[6]);
  return magic === 'n+1' || magic === 'ni1' || magic2 === 'n+2' || magic2 === 'ni2';
}

/** Decode a NIfTI-1/2 image (`.nii` bytes, or gzipped `.nii.gz` bytes). */
export function readNifti(bytes: Uint8Array, options: ReadNiftiOptions = {}): DecodedImage {
  const file = options.file;
  const maxBytes = options.maxBytes ?? DEFAULT_MAX_BYTES;
  let raw = bytes;
  if (bytes.length >= 2 && bytes[0] === 0x1f && bytes[1] === 0x8b) {
    raw = asFormatError(file, 'gzip stream', () => {
      const out = gunzipSync(bytes, { maxOutputLength: Math.min(maxBytes + (1 << 20), 2 ** 32) });
      return new Uint8Array(out.buffer, out.byteOffset, out.byteLength);
    });
  }
  // nifti-reader-js wants an ArrayBuffer that starts at the header.
  const ab = raw.buffer.slice(raw.byteOffset, raw.byteOffset + raw.byteLength) as ArrayBuffer;
  if (ab.byteLength < 348)
    throw new FormatError(`not a NIfTI file (${ab.byteLength} bytes, header needs 348)`, { file });
  if (!nifti.isNIFTI(ab, true)) throw new FormatError('not a NIfTI file (no n+1/n+2 magic)', { file });
  if (!nifti.isNIFTI(ab, false))
    throw new FormatError(
      'NIfTI header/image pairs (.hdr/.img) are not supported; convert to a single .nii',
      {
        file,
      },
    );
  const h = asFormatError(file, 'NIfTI header', () => nifti.readHeader(ab, false));
  if (!h) throw new FormatError('unreadable NIfTI header', { file });

  const ndim = h.dims[0];
  if (!Number.isInteger(ndim) || ndim < 1 || ndim > 7)
    throw new FormatError(`invalid NIfTI dim[0] = ${ndim}`, { file });
  const dims = h.dims.slice(1, ndim + 1);
  if (dims.some((d) => !Number.isSafeInteger(d) || d < 1))
    throw new FormatError(`invalid NIfTI dimensions [${dims.join(', ')}]`, { file });
  while (dims.length > 3 && dims[dims.length - 1] === 1) dims.pop();

  const rgb = h.datatypeCode === NIFTI_RGB24;
  const dtype: DType | undefined = rgb ? 'uint8' : NIFTI_DTYPES[h.datatypeCode];
  if (!dtype) throw new FormatError(`unsupported NIfTI datatype code ${h.datatypeCode}`, { file });
  const comps = rgb ? 3 : 1;
  const size = rgb ? 1 : ndarray(dtype, [0]).data.BYTES_PER_ELEMENT;
  const nvox = dims.reduce((a, b) => a * b, 1);
  const nbytes = nvox * comps * size;
  if (!Number.isSafeInteger(nbytes) || nbytes > maxBytes)
    throw new FormatError(`NIfTI image of ${nbytes} bytes exceeds the limit of ${maxBytes} bytes`, { file });
  const off = Number(h.vox_offset);
  if (!Number.isInteger(off) || off < 348 || off > ab.byteLength)
    throw new FormatError(`invalid NIfTI vox_offset ${h.vox_offset}`, { file });
  if (off + nbytes > ab.byteLength)
    throw new FormatError(
      `truncated NIfTI data: needs ${nbytes} bytes at offset ${off}, file has ${ab.byteLength - off}`,
      { file },
    );

  const shape = [...dims].reverse();
  if (rgb) shape.push(3);
  const arr = ndarray(dtype, shape);
  const dst = new Uint8Array(arr.data.buffer, arr.data.byteOffset, arr.data.byteLength);
  dst.set(raw.subarray(off, off + nbytes));
  if (!h.littleEndian && size > 1) swapBytes(dst, size);

  let array: NdArray = arr;
  const slope = h.scl_slope;
  const inter = Number.isFinite(h.scl_inter) ? h.scl_inter : 0;
  if (
    (options.scale ?? true) &&
    !rgb &&
    Number.isFinite(slope) &&
    slope !== 0 &&
    (slope !== 1 || inter !== 0)
  ) {
    const v = toFloat32(arr);
    if (dtype === 'float64') {
      const src = arr.data as Float64Array;
      const out = new Float64Array(src.length);
      for (let i = 0; i < src.length; i++) out[i] = src[i] * slope + inter;
      array = ndarray('float64', shape, out);
    } else {
      for (let i = 0; i < v.length; i++) v[i] = v[i] * slope + inter;
      array = ndarray('float32', shape, v);
    }
  }

  const spatial = Math.min(3, dims.length);
  const spacing = h.pixDims.slice(1, 1 + spatial).map((d) => (Number.isFinite(d) && d > 0 ? d : 1));
  const affine = h.affine.map((row) => row.map(Number));
  const out: DecodedImage = { format: 'nifti', array, spacing, affine };
  if (affine.flat().every(Number.isFinite)) {
    const lps = lpsFromAffine(affine);
    out.origin = lps.origin;
    out.direction = lps.direction;
  }
  return out;
}

/** Read a `.nii` / `.nii.gz` file. */
export async function readNiftiFile(
  file: string,
  options: Omit<ReadNiftiOptions, 'file'> = {},
): Promise<DecodedImage> {
  return readNifti(await readFileBytes(file), { ...options, file });
}

function swapBytes(b: Uint8Array, size: number): void {
  for (let i = 0; i + size <= b.length; i += size) {
    for (let j = 0; j < size >> 1; j++) {
      const t = b[i + j];
      b[i + j] = b[i + size - 1 - j];
      b[i + size - 1 - j] = t;
    }
  }
}

export interface WriteNiftiOptions {
  /** Voxel size in file-axis order `(x, y, z)` (default: the affine's column norms, else 1). */
  spacing?: number[];
  /** 4x4 voxel -> RAS+ affine (NIfTI convention). Takes precedence over origin/direction. */
  affine?: number[][];
  /** ITK-style LPS origin (used with `direction` when no affine is given). */
  origin?: number[];
  /** ITK-style LPS direction, row-major 3x3. */
  direction?: number[];
  /** Gzip the output (default: false for `writeNifti`; `writeNiftiFile` gzips names ending in .gz). */
  gzip?: boolean;
  /** Header description (up to 79 ASCII characters). */
  description?: string;
}

/**
 * Encode an array as a single-file NIfTI-1 image. The array is `(z, y, x)` C order (or `(y, x)`
 * for 2D; up to 7 axes); it is written as is, x fastest. The affine goes into the sform and,
 * when its 3x3 part is a rotation times a scaling, into the qform too (both with code 2,
 * "aligned anatomical"). float16 is written as float32 and bool as uint8.
 */
export function writeNifti(array: NdArray, options: WriteNiftiOptions = {}): Uint8Array {
  const shape = array.shape;
  if (shape.length < 1 || shape.length > 7)
    throw new InputError(`writeNifti: cannot write a ${shape.length}-d array`);
  if (shape.some((d) => d < 1 || d > 32767))
    throw new InputError(`writeNifti: dimensions must be 1..32767, got [${shape}]`);
  let arr: NdArray = array;
  if (arr.dtype === 'float16') arr = ndarray('float32', shape, toFloat32(arr));
  if (arr.dtype === 'bool') arr = ndarray('uint8', shape, arr.data as Uint8Array);
  const code = DTYPE_CODES[arr.dtype];
  if (code === undefined) throw new InputError(`writeNifti: unsupported dtype ${arr.dtype}`);
  const dims = [...shape].reverse();
  const nsp = Math.min(3, dims.length);

  let affine = options.affine?.map((r) => [...r]);
  let spacing = options.spacing ? [...options.spacing] : undefined;
  if (!affine && (options.origin || options.direction)) {
    const sp = [0, 1, 2].map((i) => spacing?.[i] ?? 1);
    affine = affineFromLps(options.origin ?? [0, 0, 0], options.direction ?? [1, 0, 0, 0, 1, 0, 0, 0, 1], sp);
  }
  if (!spacing) spacing = affine ? lpsFromAffine(affine).spacing.slice(0, nsp) : new Array(nsp).fill(1);
  if (!affine) {
    affine = [
      [spacing[0] ?? 1, 0, 0, 0],
      [0, spacing[1] ?? 1, 0, 0],
      [0, 0, spacing[2] ?? 1, 0],
      [0, 0, 0, 1],
    ];
  }
  if (affine.length !== 4 || affine.some((r) => r.length !== 4) || !affine.flat().every(Number.isFinite))
    throw new InputError('writeNifti: affine must be a finite 4x4 matrix');
  if (spacing.some((s) => !(s > 0) || !Number.isFinite(s)))
    throw new InputError(`writeNifti: invalid spacing [${spacing}]`);

  const itemBytes = arr.data.BYTES_PER_ELEMENT;
  const nbytes = numel(shape) * itemBytes;
  const out = new Uint8Array(352 + nbytes);
  const v = new DataView(out.buffer);
  v.setInt32(0, 348, true);
  out[38] = 'r'.charCodeAt(0); // "regular" (unused, as written by nibabel)
  v.setInt16(40, dims.length, true);
  for (let i = 0; i < 7; i++) v.setInt16(42 + 2 * i, dims[i] ?? 1, true);
  v.setInt16(70, code, true);
  v.setInt16(72, itemBytes * 8, true);
  const q = quaternFromAffine(affine);
  v.setFloat32(76, q ? q.qfac : 1, true);
  for (let i = 0; i < 7; i++) v.setFloat32(80 + 4 * i, i < nsp ? spacing[i] : 1, true);
  v.setFloat32(108, 352, true); // vox_offset
  v.setFloat32(112, 1, true); // scl_slope
  v.setFloat32(116, 0, true); // scl_inter
  out[123] = 2 | 8; // xyzt_units: mm, seconds
  const descr = (options.description ?? 'mcp-medsam').replace(/[^\x20-\x7e]/g, '?').slice(0, 79);
  for (let i = 0; i < descr.length; i++) out[148 + i] = descr.charCodeAt(i);
  v.setInt16(252, q ? 2 : 0, true); // qform_code
  v.setInt16(254, 2, true); // sform_code
  if (q) {
    v.setFloat32(256, q.b, true);
    v.setFloat32(260, q.c, true);
    v.setFloat32(264, q.d, true);
  }
  v.setFloat32(268, affine[0][3], true);
  v.setFloat32(272, affine[1][3], true);
  v.setFloat32(276, affine[2][3], true);
  for (let r = 0; r < 3; r++)
    for (let c = 0; c < 4; c++) v.setFloat32(280 + 16 * r + 4 * c, affine[r][c], true);
  out.set([0x6e, 0x2b, 0x31, 0], 344); // "n+1\0"
  out.set(new Uint8Array(arr.data.buffer, arr.data.byteOffset, nbytes), 352);
  if (!options.gzip) return out;
  const gz = gzipSync(out);
  return new Uint8Array(gz.buffer, gz.byteOffset, gz.byteLength);
}

/** Write a NIfTI-1 file atomically; a name ending in `.gz` is gzipped unless `gzip` says otherwise. */
export async function writeNiftiFile(
  file: string,
  array: NdArray,
  options: WriteNiftiOptions = {},
): Promise<void> {
  const gzip = options.gzip ?? file.toLowerCase().endsWith('.gz');
  await writeFileAtomic(file, writeNifti(array, { ...options, gzip }));
}

/**
 * The NIfTI quaternion of an affine whose 3x3 part has orthogonal columns (the algorithm of
 * nifti1_io's mat44_to_quatern); undefined when the columns are not orthogonal (sform only then).
 */
function quaternFromAffine(a: number[][]): { b: number; c: number; d: number; qfac: number } | undefined {
  const cols = [0, 1, 2].map((c) => [a[0][c], a[1][c], a[2][c]]);
  const norms = cols.map((v) => Math.hypot(v[0], v[1], v[2]));
  if (norms.some((n) => !(n > 0))) return undefined;
  const u = cols.map((v, i) => v.map((x) => x / norms[i]));
  const dot = (p: number[], q: number[]) => p[0] * q[0] + p[1] * q[1] + p[2] * q[2];
  if (
    Math.abs(dot(u[0], u[1])) > 1e-4 ||
    Math.abs(dot(u[0], u[2])) > 1e-4 ||
    Math.abs(dot(u[1], u[2])) > 1e-4
  )
    return undefined;
  // r[i][j]: row i, column j of the rotation.
  const r = [0, 1, 2].map((i) => [u[0][i], u[1][i], u[2][i]]);
  const det =
    r[0][0] * (r[1][1] * r[2][2] - r[1][2] * r[2][1]) -
    r[0][1] * (r[1][0] * r[2][2] - r[1][2] * r[2][0]) +
    r[0][2] * (r[1][0] * r[2][1] - r[1][1] * r[2][0]);
  let qfac = 1;
  if (det < 0) {
    qfac = -1;
    for (let i = 0; i < 3; i++) r[i][2] = -r[i][2];
  }
  let qa = r[0][0] + r[1][1] + r[2][2] + 1;
  let qb: number, qc: number, qd: number;
  if (qa > 0.5) {
    qa = 0.5 * Math.sqrt(qa);
    qb = (0.25 * (r[2][1] - r[1][2])) / qa;
    qc = (0.25 * (r[0][2] - r[2][0])) / qa;
    qd = (0.25 * (r[1][0] - r[0][1])) / qa;
  } else {
    const xd = 1 + r[0][0] - (r[1][1] + r[2][2]);
    const yd = 1 + r[1][1] - (r[0][0] + r[2][2]);
    const zd = 1 + r[2][2] - (r[0][0] + r[1][1]);
    if (xd > 1) {
      qb = 0.5 * Math.sqrt(xd);
      qc = (0.25 * (r[0][1] + r[1][0])) / qb;
      qd = (0.25 * (r[0][2] + r[2][0])) / qb;
      qa = (0.25 * (r[2][1] - r[1][2])) / qb;
    } else if (yd > 1) {
      qc = 0.5 * Math.sqrt(yd);
      qb = (0.25 * (r[0][1] + r[1][0])) / qc;
      qd = (0.25 * (r[1][2] + r[2][1])) / qc;
      qa = (0.25 * (r[0][2] - r[2][0])) / qc;
    } else {
      qd = 0.5 * Math.sqrt(zd);
      qb = (0.25 * (r[0][2] + r[2][0])) / qd;
      qc = (0.25 * (r[1][2] + r[2][1])) / qd;
      qa = (0.25 * (r[1][0] - r[0][1])) / qd;
    }
    if (qa < 0) {
      qb = -qb;
      qc = -qc;
      qd = -qd;
    }
  }
  return { b: qb, c: qc, d: qd, qfac };
}
