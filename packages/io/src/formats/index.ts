/**
 * One entry point for every image format: `readImageFile` picks the reader by content (file
 * signature), falling back to the extension only for gzip streams (`.nii.gz`).
 */
import { stat } from 'node:fs/promises';
import { FormatError } from '@mcp-medsam/core/common';
import { readFileBytes } from '../fs.js';
import { isDicomBytes, readDicom, readDicomSeries } from './dicom.js';
import { detectImage2dFormat, readImage2d } from './image2d.js';
import { isNiftiBytes, readNifti } from './nifti.js';
import type { DecodedImage, ImageFormat, ReadImageOptions } from './types.js';

export * from './types.js';
export * from './nifti.js';
export * from './dicom.js';
export * from './image2d.js';

/** The format of `bytes` from its signature (gzip counts as NIfTI), or undefined. */
export function detectImageFormat(bytes: Uint8Array): ImageFormat | undefined {
  if (isDicomBytes(bytes)) return 'dicom';
  const f2 = detectImage2dFormat(bytes);
  if (f2) return f2;
  if (isNiftiBytes(bytes)) return 'nifti';
  return undefined;
}

/** Decode image bytes of any supported format. */
export async function readImageBytes(
  bytes: Uint8Array,
  options: ReadImageOptions = {},
): Promise<DecodedImage> {
  const format = detectImageFormat(bytes);
  switch (format) {
    case 'dicom':
      return readDicom(bytes, options);
    case 'nifti':
      return readNifti(bytes, options);
    case undefined:
      throw new FormatError('unknown image format (not NIfTI, DICOM, PNG, JPEG, TIFF, GIF or BMP)', {
        file: options.file,
      });
    default:
      return readImage2d(bytes, options);
  }
}

/**
 * Read an image or volume file: NIfTI (.nii, .nii.gz), DICOM (a file, or a directory holding one
 * series), PNG, JPEG, TIFF, GIF or BMP. See `DecodedImage` for the axis and spacing conventions.
 */
export async function readImageFile(
  file: string,
  options: Omit<ReadImageOptions, 'file'> = {},
): Promise<DecodedImage> {
  if ((await stat(file).catch(() => undefined))?.isDirectory()) return readDicomSeries(file, options);
  return readImageBytes(await readFileBytes(file), { ...options, file });
}
