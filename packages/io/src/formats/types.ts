/**
 * Types shared by the image readers of `formats/`.
 */
import { FormatError, MedsamError } from '@mcp-medsam/core/common';
import type { NdArray } from '../dtype.js';

/** The file formats `readImageFile` understands. */
export type ImageFormat = 'nifti' | 'dicom' | 'png' | 'jpeg' | 'tiff' | 'gif' | 'bmp';

/**
 * A decoded image or volume.
 *
 * - `array` is in C order. Volumes are `(D, H, W)` = `(z, y, x)` (as SimpleITK's
 *   `GetArrayFromImage` returns them), 2D images `(H, W)` for grey or `(H, W, C)` for colour.
 * - `spacing` is in **file-axis order `(x, y[, z])`**, the reverse of the array axes, as the
 *   challenge npz stores it.
 * - `origin` and `direction` follow ITK/SimpleITK (LPS+ world, `direction` row-major 3x3 whose
 *   columns are the x, y, z axis directions); `affine` follows NIfTI/nibabel (4x4, voxel
 *   `(x, y, z, 1)` -> RAS+ mm). Voxel order is never changed: nothing is reoriented.
 */
export interface DecodedImage {
  format: ImageFormat;
  array: NdArray;
  spacing?: number[];
  origin?: number[];
  direction?: number[];
  affine?: number[][];
}

export interface ReadImageOptions {
  /** Name used in error messages. */
  file?: string;
  /** Largest decoded size in bytes (default 2 GiB); bigger declared sizes are refused before allocation. */
  maxBytes?: number;
}

export const DEFAULT_MAX_BYTES = 2 ** 31;

/**
 * Run a decoder and turn anything it throws that is not already one of ours into a FormatError
 * naming the file: third-party decoders throw RangeError, TypeError or plain Error on bad input.
 */
export function asFormatError<T>(file: string | undefined, what: string, fn: () => T): T {
  try {
    return fn();
  } catch (e) {
    throw toFormatError(file, what, e);
  }
}

export async function asFormatErrorAsync<T>(
  file: string | undefined,
  what: string,
  fn: () => Promise<T>,
): Promise<T> {
  try {
    return await fn();
  } catch (e) {
    throw toFormatError(file, what, e);
  }
}

export function toFormatError(file: string | undefined, what: string, e: unknown): MedsamError {
  if (e instanceof MedsamError) {
    if (e.file === undefined && file !== undefined && e instanceof FormatError)
      return new FormatError(e.message, { file, cause: e });
    return e;
  }
  const msg = e instanceof Error ? e.message : String(e);
  return new FormatError(`invalid or truncated ${what} (${msg})`, { file, cause: e });
}

/** 4x4 RAS affine from ITK-style LPS origin, direction (row-major 3x3) and spacing (x, y, z). */
export function affineFromLps(origin: number[], direction: number[], spacing: number[]): number[][] {
  const flip = [-1, -1, 1];
  const a: number[][] = [];
  for (let r = 0; r < 3; r++) {
    const row: number[] = [];
    for (let c = 0; c < 3; c++) row.push(flip[r] * direction[r * 3 + c] * spacing[c]);
    row.push(flip[r] * origin[r]);
    a.push(row);
  }
  a.push([0, 0, 0, 1]);
  return a;
}

/** ITK-style LPS origin, direction and spacing (x, y, z) from a 4x4 RAS affine. */
export function lpsFromAffine(affine: number[][]): {
  origin: number[];
  direction: number[];
  spacing: number[];
} {
  const flip = [-1, -1, 1];
  const spacing = [0, 1, 2].map((c) => Math.hypot(affine[0][c], affine[1][c], affine[2][c]));
  const direction: number[] = [];
  for (let r = 0; r < 3; r++)
    for (let c = 0; c < 3; c++) direction.push((flip[r] * affine[r][c]) / (spacing[c] || 1) + 0); // + 0: no -0
  const origin = [0, 1, 2].map((r) => flip[r] * affine[r][3] + 0);
  return { origin, direction, spacing };
}
