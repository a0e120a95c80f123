/**
 * The prompts of a batch of boxes on one image (spec §11.1 step 3.1-3.2): the content crop at
 * original resolution resized to 64² for the crop net and to 224² for CLIP, the CLIP features of
 * the 224² crops (one provider call for the whole batch), the modality text feature and category.
 */
import { InputError } from '@mcp-medsam/core/common';
import { cropContentData, type Box } from '@mcp-medsam/io';
import type { ImageFeatureProvider } from '@mcp-medsam/prompts';
import { CROP_SIDE, type DecodePrompts } from './engine.js';

/** One box to decode: where the crop comes from, and the box the prompt encoder gets. */
export interface BoxRequest {
  /** Box at original resolution `[x0, y0, x1, y1]` (half-open) the content crop is cut from. */
  cropBox: Box;
  /** The prompt encoder's box in the 256 frame (float32 once fed). */
  box256: Box;
}

/** An image as raw uint8 HWC data (C = 1 for grey slices, 3 for RGB). */
export interface RawImage {
  data: Uint8Array;
  h: number;
  w: number;
  c: number;
}

/** Per-case prompt constants: the modality's text feature and category index. */
export interface ModalityPrompt {
  /** `clipDim` values. */
  textFeature: Float32Array;
  categoryIdx: number;
}

/** Repeat a one-channel crop to three channels (a grey slice is fed to the model as RGB). */
function toThreeChannels(crop: Float32Array, c: number): Float32Array {
  if (c === 3) return crop;
  const out = new Float32Array(crop.length * 3);
  for (let k = 0; k < 3; k++) out.set(crop, k * crop.length);
  return out;
}

/**
 * Build the decoder prompts of `requests` on `img`. An empty crop (the box selects no pixel)
 * is an InputError naming `file` and the box: the original would crash there.
 */
export async function buildBoxPrompts(
  img: RawImage,
  requests: readonly BoxRequest[],
  vision: ImageFeatureProvider,
  modality: ModalityPrompt,
  file?: string,
): Promise<DecodePrompts> {
  const n = requests.length;
  const clipSide = vision.imageSize;
  const dim = vision.dim;
  if (modality.textFeature.length !== dim)
    throw new InputError(`the text feature has ${modality.textFeature.length} values, CLIP gives ${dim}`, {
      file,
    });
  const cropLen = 3 * CROP_SIDE * CROP_SIDE;
  const clipLen = 3 * clipSide * clipSide;
  const crops = new Float32Array(n * cropLen);
  const clipPixels = new Float32Array(n * clipLen);
  const boxes = new Float32Array(n * 4);
  const clipText = new Float32Array(n * dim);
  const categoryIdx = new Int32Array(n).fill(modality.categoryIdx);
  requests.forEach((r, i) => {
    const [small, large] = cropContentData(img.data, img.h, img.w, img.c, r.cropBox, [CROP_SIDE, clipSide]);
    if (small.empty)
      throw new InputError(
        `box [${r.cropBox.join(', ')}] selects no pixel of the ${img.h} x ${img.w} image`,
        {
          file,
        },
      );
    crops.set(toThreeChannels(small.data, img.c), i * cropLen);
    clipPixels.set(toThreeChannels(large.data, img.c), i * clipLen);
    boxes.set(r.box256, i * 4);
    clipText.set(modality.textFeature, i * dim);
  });
  const clipImage = await vision.embed(clipPixels, n);
  return { boxes, clipImage, clipText, categoryIdx, crops };
}
