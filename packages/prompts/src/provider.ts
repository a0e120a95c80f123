/**
 * The two feature sources the prompt encoder consumes. The CLIP model is frozen, so the rest of
 * the project only needs "pixels in, vectors out" and "string in, vector out": anything that
 * satisfies these interfaces (an ONNX export, a precomputed table, a cache in front of either, a
 * test fake) can feed training and inference.
 */
import { InputError } from '@mcp-medsam/core/common';

/** Side of the square CLIP image input (ViT-B/32 takes 224 x 224). */
export const CLIP_IMAGE_SIZE = 224;

/** Width of the CLIP image and text features of pubmed-clip ViT-B/32. */
export const CLIP_FEATURE_DIM = 512;

/**
 * Produces CLIP image features for batches of crops.
 *
 * Pixels are float32, channel-first, one crop after the other: `n * 3 * imageSize * imageSize`
 * values, each crop being the box crop divided by 255 and resized with antialiased bilinear to
 * `imageSize` (what `cropContent` of `@mcp-medsam/io` returns). No mean/std normalisation is
 * applied: the original feeds CLIP exactly that, unlike `CLIPProcessor`.
 */
export interface ImageFeatureProvider {
  /** Feature width (512 for CLIP ViT-B/32). */
  readonly dim: number;
  /** Side of the square input crop (224 for CLIP). */
  readonly imageSize: number;
  /** Embed `n` crops; resolves to `n * dim` float32 values, row `i` belonging to crop `i`. */
  embed(pixels: Float32Array, n: number): Promise<Float32Array>;
  /** Release native resources. The provider must not be used afterwards. */
  close(): Promise<void>;
}

/**
 * Produces CLIP text features. The modality prompt only ever embeds a handful of fixed strings
 * ("CT Image", ...), so implementations are usually a precomputed table.
 */
export interface TextFeatureProvider {
  /** Feature width (512 for CLIP ViT-B/32). */
  readonly dim: number;
  /** Embed the strings; resolves to `texts.length * dim` float32 values in the same order. */
  embed(texts: readonly string[]): Promise<Float32Array>;
}

/** Number of float32 values of one crop of side `imageSize`. */
export function pixelsPerImage(imageSize: number): number {
  return 3 * imageSize * imageSize;
}

/**
 * Check the `embed(pixels, n)` contract before any work is done, so that a wrong crop size is
 * reported as such instead of surfacing as an opaque runtime error deep inside a native library.
 * `file` names the model the call was meant for, when there is one.
 */
export function checkImageBatch(
  pixels: Float32Array,
  n: number,
  imageSize: number,
  options: { who?: string; file?: string } = {},
): void {
  const who = options.who ?? 'embed';
  const opts = options.file ? { file: options.file } : {};
  if (!(pixels instanceof Float32Array)) {
    throw new InputError(`${who}: pixels must be a Float32Array`, opts);
  }
  if (!Number.isSafeInteger(n) || n < 0) {
    throw new InputError(`${who}: the crop count must be a non-negative integer, got ${n}`, opts);
  }
  const per = pixelsPerImage(imageSize);
  if (pixels.length !== n * per) {
    throw new InputError(
      `${who}: expected ${n} x 3 x ${imageSize} x ${imageSize} = ${n * per} values, got ${pixels.length}`,
      opts,
    );
  }
}
