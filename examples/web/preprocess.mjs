// The page's image arithmetic, shared with Node (the test imports this file as it is).
//
// Nothing here is a second implementation: the resizers, the normalisation, the box scaling, the
// content crops and the logit post-processing are @mcp-medsam/io's own compiled modules
// (packages/io/dist). The relative import below resolves in Node to the file in the repository
// and in the browser to the same file, because serve.mjs serves the page at /examples/web/ and
// the two dist folders at /packages/{io,core}/dist/ (the page's import map points
// '@mcp-medsam/core/common' at core's dist). What is left here is the glue the runtime's 2D
// pipeline does around those calls (packages/runtime/src/pipeline_2d.ts, box_prompts.ts,
// predictor.ts), written for one RGB image and one box at a time.
import {
  cropContentData,
  postprocessLogits,
  preprocessImageData,
  scaleBox,
} from '../../packages/io/dist/preprocess/inference.js';

/** Side of the square model input and of the low-resolution logits. */
export const IMAGE_SIZE = 256;
/** Side of the content crop fed to the crop net. */
export const CROP_SIDE = 64;
/** Side of the crop fed to the CLIP image tower. */
export const CLIP_SIDE = 224;

/** The prompt decoder's inputs, in the order the exporter writes them. */
export const DECODER_INPUTS = [
  'image_embeddings',
  'boxes',
  'clip_image',
  'clip_text',
  'category_idx',
  'crops',
];

/** RGBA pixels (as canvas ImageData holds them) to packed RGB, alpha dropped. */
export function rgbaToRgb(rgba, width, height) {
  const n = width * height;
  if (rgba.length !== 4 * n) throw new Error(`expected ${4 * n} RGBA values, got ${rgba.length}`);
  const rgb = new Uint8Array(3 * n);
  for (let i = 0, j = 0; i < n; i++, j += 4) {
    rgb[3 * i] = rgba[j];
    rgb[3 * i + 1] = rgba[j + 1];
    rgb[3 * i + 2] = rgba[j + 2];
  }
  return rgb;
}

/**
 * The box `[x0, y0, x1, y1]` (integer pixels, half-open as the challenge's boxes are) covering
 * a drag between two points in image coordinates (fractional, any order), clamped to the image.
 * Null when it selects less than `minSide` pixels in either direction.
 */
export function boxFromDrag(a, b, width, height, minSide = 2) {
  const clamp = (v, hi) => Math.max(0, Math.min(hi, v));
  const x0 = clamp(Math.floor(Math.min(a.x, b.x)), width);
  const y0 = clamp(Math.floor(Math.min(a.y, b.y)), height);
  const x1 = clamp(Math.ceil(Math.max(a.x, b.x)), width);
  const y1 = clamp(Math.ceil(Math.max(a.y, b.y)), height);
  if (x1 - x0 < minSide || y1 - y0 < minSide) return null;
  return [x0, y0, x1, y1];
}

/**
 * The model input of an RGB image (uint8, H x W x 3): longest side resized to 256 with
 * OpenCV's INTER_AREA, min-max normalised, zero padded (io's `preprocessImageData`). Returns
 * `{ image, newH, newW, scale, h, w }`; `image` is float32 (3, 256, 256).
 */
export function prepareImage(rgb, height, width) {
  return preprocessImageData(rgb, height, width, 3, IMAGE_SIZE);
}

/**
 * The per-box decoder inputs the runtime builds (segment2D and buildBoxPrompts): the box in the
 * 256 frame (truncated toward zero), the 64 x 64 content crop and the 224 x 224 CLIP crop, both
 * channel-first in [0, 1] (torchvision's antialiased bilinear resize of the box at original
 * resolution). Throws when the box selects no pixel, as the runtime does.
 */
export function boxPrompt(rgb, height, width, box) {
  const box256 = Float32Array.from(scaleBox(box, height, width, { truncate: true, size: IMAGE_SIZE }));
  const [small, large] = cropContentData(rgb, height, width, 3, box, [CROP_SIDE, CLIP_SIDE]);
  if (small.empty)
    throw new Error(`box [${box.join(', ')}] selects no pixel of the ${height} x ${width} image`);
  return { box256, crop: small.data, clipPixels: large.data };
}

/**
 * The mask of one box: the 256 x 256 logits cropped to the resized extent, bilinearly resized to
 * the image size (align_corners=False) and thresholded at sigmoid > 0.5 (io's
 * `postprocessLogits`). Returns `{ mask }` (uint8 0/1, H x W), with `logits` when asked.
 */
export function maskFromLogits(lowRes, pre, keepLogits = false) {
  return postprocessLogits(lowRes, pre.newH, pre.newW, pre.h, pre.w, { keepLogits, size: IMAGE_SIZE });
}

/**
 * What the page needs from an export's manifest.json, checked: the graph files, the embedding
 * and CLIP widths, and the modality table (`{ index, name, text }` per modality, the text being
 * the CLIP prompt "<Modality> Image").
 */
export function readManifest(m) {
  const fail = (what) => {
    throw new Error(`manifest.json: ${what}`);
  };
  if (!m || m.format !== 'mcp-medsam-onnx') fail(`format must be 'mcp-medsam-onnx', got ${m?.format}`);
  if (m.version !== 1) fail(`unsupported version ${m.version}`);
  const pre = m.preprocessing ?? {};
  const int = (v, what) =>
    Number.isSafeInteger(v) && v > 0 ? v : fail(`${what} must be a positive integer`);
  const file = (key) => {
    const f = m.files?.[key]?.file;
    return typeof f === 'string' && f.length > 0 && !f.includes('/')
      ? f
      : fail(`files.${key}.file is missing`);
  };
  const decInputs = (m.files?.prompt_decoder?.inputs ?? []).map((x) => x.name);
  if (decInputs.join() !== DECODER_INPUTS.join())
    fail(`prompt_decoder inputs are [${decInputs.join(', ')}], expected [${DECODER_INPUTS.join(', ')}]`);
  if (pre.imageSize !== undefined && pre.imageSize !== IMAGE_SIZE)
    fail(`imageSize ${pre.imageSize} is not 256`);
  if (!Array.isArray(m.modalities) || m.modalities.length === 0) fail('modalities is missing');
  const modalities = m.modalities.map((x, i) => {
    if (!Number.isSafeInteger(x?.index) || typeof x.name !== 'string' || typeof x.text !== 'string')
      fail(`modalities[${i}] must have index, name and text`);
    return { index: x.index, name: x.name, text: x.text };
  });
  return {
    preset: String(m.preset ?? 'unknown'),
    quantization: typeof m.quantization === 'string' ? m.quantization : null,
    encoderFile: file('image_encoder'),
    decoderFile: file('prompt_decoder'),
    embedDim: int(pre.embedDim, 'preprocessing.embedDim'),
    embeddingSize: int(pre.embeddingSize, 'preprocessing.embeddingSize'),
    clipDim: int(pre.clipDim, 'preprocessing.clipDim'),
    modalities,
  };
}

/**
 * The modality prompt of the modality `name` of the manifest's table: its category index and the
 * CLIP text feature of its text from a text-features.json table (`{ dim, features }`).
 */
export function modalityPrompt(manifest, textTable, name) {
  const m = manifest.modalities.find((x) => x.name === name);
  if (!m)
    throw new Error(
      `unknown modality '${name}' (the model has ${manifest.modalities.map((x) => x.name).join(', ')})`,
    );
  const features = textTable?.features;
  const values = features && Object.hasOwn(features, m.text) ? features[m.text] : undefined;
  if (!Array.isArray(values)) throw new Error(`the CLIP text table has no feature for '${m.text}'`);
  if (values.length !== manifest.clipDim)
    throw new Error(
      `the CLIP text feature of '${m.text}' has ${values.length} values, the model takes ${manifest.clipDim}`,
    );
  return { categoryIdx: m.index, text: m.text, textFeature: Float32Array.from(values) };
}
