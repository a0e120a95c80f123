/**
 * 2D images: PNG, JPEG, TIFF and GIF through `sharp` (libvips), BMP through `bmp-ts`; PNG writing
 * through `sharp`.
 *
 * Decoded arrays are `(H, W)` for grey images (including palette images whose palette is grey),
 * `(H, W, 2)` grey + alpha, `(H, W, 3)` RGB and `(H, W, 4)` RGBA, as uint8, or uint16 for 16-bit
 * PNG/TIFF. Nothing is rotated: EXIF orientation is ignored, as PIL and the challenge scripts do.
 * Only the first page/frame of a multi-page TIFF or animated GIF is read.
 */
import sharp from 'sharp';
import * as bmp from 'bmp-ts';
import { FormatError, InputError } from '@mcp-medsam/core/common';
import { type NdArray, ndarray, numel } from '../dtype.js';
import { readFileBytes, writeFileAtomic } from '../fs.js';
import {
  DEFAULT_MAX_BYTES,
  type DecodedImage,
  type ImageFormat,
  type ReadImageOptions,
  asFormatError,
  asFormatErrorAsync,
} from './types.js';

export type Image2dFormat = Extract<ImageFormat, 'png' | 'jpeg' | 'tiff' | 'gif' | 'bmp'>;

/** The 2D format of `bytes` from its signature, or undefined. */
export function detectImage2dFormat(bytes: Uint8Array): Image2dFormat | undefined {
  const b = bytes;
  if (b.length >= 8 && b[0] === 0x89 && b[1] === 0x50 && b[2] === 0x4e && b[3] === 0x47) return 'png';
  if (b.length >= 3 && b[0] === 0xff && b[1] === 0xd8 && b[2] === 0xff) return 'jpeg';
  if (b.length >= 4 && b[0] === 0x49 && b[1] === 0x49 && b[2] === 0x2a && b[3] === 0x00) return 'tiff';
  if (b.length >= 4 && b[0] === 0x4d && b[1] === 0x4d && b[2] === 0x00 && b[3] === 0x2a) return 'tiff';
  if (b.length >= 6 && b[0] === 0x47 && b[1] === 0x49 && b[2] === 0x46 && b[3] === 0x38) return 'gif';
  if (b.length >= 2 && b[0] === 0x42 && b[1] === 0x4d) return 'bmp';
  return undefined;
}

/** Decode a PNG, JPEG, TIFF, GIF or BMP image (format from the signature). */
export async function readImage2d(bytes: Uint8Array, options: ReadImageOptions = {}): Promise<DecodedImage> {
  const file = options.file;
  const format = detectImage2dFormat(bytes);
  if (!format) throw new FormatError('not a PNG, JPEG, TIFF, GIF or BMP image (unknown signature)', { file });
  const maxBytes = options.maxBytes ?? DEFAULT_MAX_BYTES;
  if (format === 'bmp') return { format, array: decodeBmp(bytes, file, maxBytes) };
  return asFormatErrorAsync(file, `${format} image`, async () => {
    const input = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    // failOn 'warning' (sharp's default, kept explicit): a truncated or damaged image is an error,
    // not a silently grey-filled picture.
    const opts = { failOn: 'warning' as const, limitInputPixels: Math.floor(maxBytes / 4), pages: 1 };
    const meta = await sharp(input, opts).metadata();
    const grey = meta.channels === 1 || meta.channels === 2;
    const deep = meta.depth === 'ushort' || meta.depth === 'short';
    let pipe = sharp(input, opts);
    if (grey) pipe = pipe.toColourspace(deep ? 'grey16' : 'b-w');
    else if (deep) pipe = pipe.toColourspace('rgb16');
    const { data, info } = await pipe
      .raw(deep ? { depth: 'ushort' } : {})
      .toBuffer({ resolveWithObject: true });
    const { width: w, height: h, channels: c } = info;
    const n = w * h * c;
    let array: NdArray;
    if (deep) {
      if (data.byteLength !== n * 2)
        throw new FormatError(`decoder returned ${data.byteLength} bytes for ${w}x${h}x${c} uint16`);
      const u16 = new Uint16Array(n);
      new Uint8Array(u16.buffer).set(data);
      array = ndarray('uint16', c === 1 ? [h, w] : [h, w, c], u16);
    } else {
      if (data.byteLength !== n)
        throw new FormatError(`decoder returned ${data.byteLength} bytes for ${w}x${h}x${c}`);
      array = ndarray('uint8', c === 1 ? [h, w] : [h, w, c], new Uint8Array(data));
    }
    if (meta.isPalette || format === 'gif') array = collapseGrey(array);
    return { format, array };
  });
}

/** A copy of an (H,W,3|4) array as (H,W) when it is grey (R = G = B everywhere and alpha, if any, opaque). */
export function collapseGrey(arr: NdArray): NdArray {
  if (arr.shape.length !== 3 || (arr.shape[2] !== 3 && arr.shape[2] !== 4)) return arr;
  const [h, w, c] = arr.shape;
  const d = arr.data as Uint8Array | Uint16Array;
  const opaque = arr.dtype === 'uint16' ? 65535 : 255;
  for (let i = 0; i < h * w; i++) {
    const p = i * c;
    if (d[p] !== d[p + 1] || d[p] !== d[p + 2] || (c === 4 && d[p + 3] !== opaque)) return arr;
  }
  const out = ndarray(arr.dtype, [h, w]);
  const o = out.data as Uint8Array | Uint16Array;
  for (let i = 0; i < h * w; i++) o[i] = d[i * c];
  return out;
}

/**
 * BMP through bmp-ts (1, 4, 8, 16, 24 and 32 bits per pixel, bottom-up and top-down, palettes).
 * The header is checked first so that a corrupt size cannot make the decoder allocate or loop
 * beyond the file.
 */
function decodeBmp(bytes: Uint8Array, file: string | undefined, maxBytes: number): NdArray {
  if (bytes.length < 26) throw new FormatError('truncated BMP header', { file });
  const v = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const dataOffset = v.getUint32(10, true);
  const headerSize = v.getUint32(14, true);
  if (headerSize < 40 || 14 + headerSize > bytes.length)
    throw new FormatError(`unsupported or truncated BMP header (size ${headerSize})`, { file });
  const width = v.getInt32(18, true);
  const height = v.getInt32(22, true);
  const bpp = v.getUint16(28, true);
  const compression = v.getUint32(30, true);
  const absH = Math.abs(height);
  if (width <= 0 || absH === 0 || width > 1 << 16 || absH > 1 << 16)
    throw new FormatError(`invalid BMP size ${width}x${height}`, { file });
  if (![1, 4, 8, 16, 24, 32].includes(bpp))
    throw new FormatError(`unsupported BMP bit depth ${bpp}`, { file });
  if (compression !== 0 && compression !== 3)
    throw new FormatError(`unsupported BMP compression ${compression} (only uncompressed and bitfields)`, {
      file,
    });
  if (width * absH * 4 > maxBytes)
    throw new FormatError(`BMP of ${width}x${absH} exceeds the size limit`, { file });
  const stride = Math.floor((width * bpp + 31) / 32) * 4;
  if (dataOffset < 14 + headerSize || dataOffset + stride * absH > bytes.length)
    throw new FormatError(
      `truncated BMP pixel data: needs ${stride * absH} bytes at offset ${dataOffset}, file has ${bytes.length}`,
      { file },
    );
  if (bpp <= 8) {
    const colours = v.getUint32(46, true) || 1 << bpp;
    if (colours > 1 << bpp || 14 + headerSize + colours * 4 > dataOffset)
      throw new FormatError(`invalid BMP palette (${colours} colours)`, { file });
  }
  const img = asFormatError(file, 'BMP image', () =>
    bmp.decode(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength), { toRGBA: false }),
  );
  const src = img.data; // ABGR, 4 bytes per pixel
  if (src.length < width * absH * 4) throw new FormatError('truncated BMP pixel data', { file });
  const alpha = bpp === 32;
  const c = alpha ? 4 : 3;
  const out = ndarray('uint8', [absH, width, c]);
  const o = out.data;
  for (let i = 0, n = width * absH; i < n; i++) {
    o[i * c] = src[i * 4 + 3];
    o[i * c + 1] = src[i * 4 + 2];
    o[i * c + 2] = src[i * 4 + 1];
    if (alpha) o[i * c + 3] = src[i * 4];
  }
  return bpp <= 8 ? collapseGrey(out) : out;
}

/** Read a 2D image file. */
export async function readImage2dFile(
  file: string,
  options: Omit<ReadImageOptions, 'file'> = {},
): Promise<DecodedImage> {
  return readImage2d(await readFileBytes(file), { ...options, file });
}

/**
 * Encode a `(H, W)`, `(H, W, 1..4)` uint8 or uint16 array (or bool, written as 0/255) as PNG
 * (8 or 16 bits per sample, lossless).
 */
export async function writePng(array: NdArray): Promise<Uint8Array> {
  const { shape } = array;
  if (shape.length !== 2 && shape.length !== 3)
    throw new InputError(`writePng: expected (H, W) or (H, W, C), got shape [${shape.join(', ')}]`);
  const [h, w] = shape;
  const c = shape.length === 3 ? shape[2] : 1;
  if (c < 1 || c > 4 || h < 1 || w < 1)
    throw new InputError(`writePng: cannot write shape [${shape.join(', ')}]`);
  let data: Uint8Array | Uint16Array;
  if (array.dtype === 'uint8') data = array.data as Uint8Array;
  else if (array.dtype === 'uint16') data = array.data as Uint16Array;
  else if (array.dtype === 'bool') data = (array.data as Uint8Array).map((x) => (x ? 255 : 0));
  else throw new InputError(`writePng: dtype must be uint8, uint16 or bool, got ${array.dtype}`);
  const deep = data instanceof Uint16Array;
  if (data.length !== numel(shape)) throw new InputError('writePng: data length does not match the shape');
  // A Uint16Array input tells sharp the raw samples are 16-bit.
  const raw = deep ? data : Buffer.from(data.buffer, data.byteOffset, data.byteLength);
  let pipe = sharp(raw, {
    raw: { width: w, height: h, channels: c as 1 | 2 | 3 | 4 },
    limitInputPixels: false,
  });
  if (c <= 2) pipe = pipe.toColourspace(deep ? 'grey16' : 'b-w');
  else if (deep) pipe = pipe.toColourspace('rgb16');
  const png = await pipe.png({ compressionLevel: 6, palette: false }).toBuffer();
  return new Uint8Array(png.buffer, png.byteOffset, png.byteLength);
}

/** Write a PNG file atomically. */
export async function writePngFile(file: string, array: NdArray): Promise<void> {
  await writeFileAtomic(file, await writePng(array));
}
