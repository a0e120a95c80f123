/**
 * 2D inference (spec §11.1): one embedding per image, every box decoded against it in batches,
 * masks painted in box order so later boxes win.
 */
import { InputError } from '@mcp-medsam/core/common';
import { ndarray, postprocessLogits, preprocessImageData, scaleBox, type NdArray } from '@mcp-medsam/io';
import type { ImageFeatureProvider } from '@mcp-medsam/prompts';
import { buildBoxPrompts, type ModalityPrompt, type RawImage } from './box_prompts.js';
import { labelArray, readBoxes, uint8Pixels } from './case_input.js';
import { LOW_RES_SIZE, type SegmentationEngine } from './engine.js';
import { Stopwatch, type DecoderCall, type SegmentResult } from './result.js';

/** Everything a pipeline runs: the network and the frozen CLIP image tower. */
export interface PipelineModels {
  engine: SegmentationEngine;
  vision: ImageFeatureProvider;
}

/** Options shared by the 2D and 3D pipelines. */
export interface PipelineOptions {
  /**
   * Most boxes per decoder call (default 4): bounds memory, not results. The full decoder's
   * per-box cost does not shrink with larger batches (it is convolutions over each box's own
   * 64x64 map), while its activations grow with them: a 37-box CT peaked at 1.31 GB with 16 and
   * 0.89 GB with 4, in the same time.
   */
  maxBatch?: number;
  /** Keep each call's low-resolution logits in the result (for parity checks). */
  keepLogits?: boolean;
  /** Named in errors. */
  file?: string;
}

export const DEFAULT_MAX_BATCH = 4;

export function batchLimit(options: PipelineOptions): number {
  const m = options.maxBatch ?? DEFAULT_MAX_BATCH;
  if (!Number.isSafeInteger(m) || m < 1)
    throw new InputError(`maxBatch must be a positive integer, got ${m}`, { file: options.file });
  return m;
}

/** The image of a 2D case as raw HWC data: (H,W,3) RGB or (H,W) grey. */
export function rawImage2D(imgs: NdArray, file?: string): RawImage {
  const s = imgs.shape;
  if (!(s.length === 2 || (s.length === 3 && s[2] === 3)))
    throw new InputError(`2D 'imgs' must be (H,W,3) or (H,W), got shape [${s.join(', ')}]`, { file });
  return { data: uint8Pixels(imgs, file), h: s[0], w: s[1], c: s.length === 3 ? 3 : 1 };
}

/** Segment a 2D case: `imgs` (H,W,3) or (H,W) uint8, `boxes` (N,4) `[x0,y0,x1,y1]`. */
export async function segment2D(
  imgs: NdArray,
  boxes: NdArray,
  modality: ModalityPrompt,
  models: PipelineModels,
  options: PipelineOptions = {},
): Promise<SegmentResult> {
  const { file } = options;
  const maxBatch = batchLimit(options);
  const img = rawImage2D(imgs, file);
  const rows = readBoxes(boxes, 4, { w: img.w, h: img.h }, file);
  const time = new Stopwatch();
  const segs = labelArray(rows.length, img.h * img.w);
  const calls: DecoderCall[] = [];
  const logits: Float32Array[] = [];
  if (rows.length > 0) {
    const pre = time.sync('preprocess', () => preprocessImageData(img.data, img.h, img.w, img.c));
    const [embedding] = await time.async('encode', () => models.engine.encode(pre.image, 1));
    const wrap = rows.length > 255 ? 65536 : 256;
    for (let start = 0; start < rows.length; start += maxBatch) {
      const chunk = rows.slice(start, start + maxBatch);
      const requests = chunk.map((b) => {
        const box = b as [number, number, number, number];
        return { cropBox: box, box256: scaleBox(box, img.h, img.w, { truncate: true }) };
      });
      const prompts = await time.async('prompts', () =>
        buildBoxPrompts(img, requests, models.vision, modality, file),
      );
      const out = await time.async('decode', () => models.engine.decode(embedding, prompts, chunk.length));
      time.sync('postprocess', () => {
        chunk.forEach((_, j) => {
          const idx = start + j + 1;
          const lowres = out.lowResLogits.subarray(j * LOW_RES_SIZE ** 2, (j + 1) * LOW_RES_SIZE ** 2);
          if (options.keepLogits) logits.push(lowres.slice());
          const { mask } = postprocessLogits(lowres, pre.newH, pre.newW, img.h, img.w);
          let fg = 0;
          // The original paints `idx % 256` into uint8; past 255 boxes the output is uint16.
          const label = idx % wrap;
          for (let p = 0; p < mask.length; p++) {
            if (mask[p]) {
              segs[p] = label;
              fg++;
            }
          }
          calls.push({
            box: idx,
            z: null,
            box256: requests[j].box256,
            cropBox: requests[j].cropBox,
            iou: out.iou[j],
            fgPx: fg,
          });
        });
      });
    }
  }
  const dtype = segs instanceof Uint16Array ? 'uint16' : 'uint8';
  return {
    segs: ndarray(dtype, [img.h, img.w], segs),
    calls,
    ...(options.keepLogits ? { lowResLogits: logits } : {}),
    seconds: time.totals(),
  };
}
