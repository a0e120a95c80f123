/**
 * 3D inference (spec §11.2): for each box, the middle slice from the given box, then slice by
 * slice up and down, each slice prompted by the previous slice's mask (its box with a 3-pixel
 * margin). Every rule of the original is kept by default: z1 and z0 themselves are not
 * segmented, the up pass truncates the fallback box and the down pass does not.
 *
 * The order of the work differs: instead of box after box, all boxes sweep the volume together
 * (up, then down), so each slice is encoded once and all boxes on it are decoded in one batch.
 * A box's calls depend only on its own previous slice, so the masks are the same; painting keeps
 * the largest box index per voxel, which is what the original's box-order overwrite leaves.
 */
import {
  bboxOfMask,
  longestSideSize,
  ndarray,
  padBottomRight,
  postprocessLogits,
  preprocessImageData,
  resizeLongestSide,
  scaleBox,
  type Box,
  type NdArray,
} from '@mcp-medsam/io';
import { InputError } from '@mcp-medsam/core/common';
import { buildBoxPrompts, type BoxRequest, type ModalityPrompt } from './box_prompts.js';
import { labelArray, readBoxes, uint8Pixels } from './case_input.js';
import { EmbeddingCache } from './embedding_cache.js';
import { LOW_RES_SIZE, MODEL_IMAGE_SIZE } from './engine.js';
import { batchLimit, type PipelineModels, type PipelineOptions } from './pipeline_2d.js';
import { Stopwatch, type DecoderCall, type SegmentResult } from './result.js';

/** Options of {@link segment3D}. */
export interface Pipeline3DOptions extends PipelineOptions {
  /** Also segment each box's first and last slice (z0 and z1), which the original skips. */
  inclusiveZ?: boolean;
  /** Budget of the slice-embedding cache in MB (default 256). */
  embeddingCacheMB?: number;
}

/** The propagation state of one box. */
interface BoxTrack {
  idx: number;
  box2d: Box;
  zm: number;
  /** Last slice of the up pass and of the down pass (inclusive). */
  upEnd: number;
  downEnd: number;
  /** Mask (values `idx`, as the original's tmp volume holds) of the slice last decoded in each pass. */
  upPrev: Uint8Array | null;
  downPrev: Uint8Array | null;
}

type Pass = 'up' | 'down';

/** Segment a 3D case: `imgs` (D,H,W) uint8, `boxes` (N,6) `[x0,y0,z0,x1,y1,z1]`. */
export async function segment3D(
  imgs: NdArray,
  boxes: NdArray,
  modality: ModalityPrompt,
  models: PipelineModels,
  options: Pipeline3DOptions = {},
): Promise<SegmentResult> {
  const { file } = options;
  const maxBatch = batchLimit(options);
  if (imgs.shape.length !== 3)
    throw new InputError(`3D 'imgs' must be (D,H,W), got shape [${imgs.shape.join(', ')}]`, { file });
  const [D, H, W] = imgs.shape;
  const HW = H * W;
  const pixels = uint8Pixels(imgs, file);
  const rows = readBoxes(boxes, 6, { w: W, h: H, d: D }, file);
  const cacheMB = options.embeddingCacheMB ?? 256;
  if (!(cacheMB >= 0)) throw new InputError(`embeddingCacheMB must be >= 0, got ${cacheMB}`, { file });
  const cache = new EmbeddingCache(cacheMB * 2 ** 20);
  const time = new Stopwatch();
  const segs = labelArray(rows.length, D * HW);
  const inclusive = options.inclusiveZ ?? false;

  const tracks: BoxTrack[] = rows.map((r, i) => {
    const [x0, y0, z0, x1, y1, z1] = r;
    const zm = Math.trunc((z1 - z0) / 2 + z0);
    return {
      idx: i + 1,
      box2d: [x0, y0, x1, y1],
      zm,
      upEnd: inclusive ? Math.min(z1, D - 1) : z1 - 1,
      downEnd: inclusive ? z0 : z0 + 1,
      upPrev: null,
      downPrev: null,
    };
  });

  const calls: { pass: Pass; call: DecoderCall; logits?: Float32Array }[] = [];
  const slice = (z: number) => pixels.subarray(z * HW, (z + 1) * HW);
  // Every slice has the same size, so the same resized extent.
  const { newH, newW } = longestSideSize(H, W, MODEL_IMAGE_SIZE);
  const embed = (z: number) =>
    cache.get(z, async () => {
      const pre = time.sync('preprocess', () => preprocessImageData(slice(z), H, W, 1));
      const [e] = await time.async('encode', () => models.engine.encode(pre.image, 1));
      return e;
    });

  /** The crop box and prompt box of a track on a slice, from its neighbour's mask (spec §11.2). */
  const request = (t: BoxTrack, z: number, pass: Pass, prev: Uint8Array | null): BoxRequest => {
    const fallback = { cropBox: t.box2d, box256: scaleBox(t.box2d, H, W, { truncate: pass === 'up' }) };
    if (z === t.zm) return { cropBox: t.box2d, box256: scaleBox(t.box2d, H, W, { truncate: true }) };
    const cropBox = prev ? bboxOfMask(prev, H, W, 3) : null;
    if (!cropBox) return fallback;
    const small = padBottomRight(resizeLongestSide(ndarray('uint8', [H, W], prev!)), MODEL_IMAGE_SIZE);
    const box256 = bboxOfMask(small.data as Uint8Array, MODEL_IMAGE_SIZE, MODEL_IMAGE_SIZE, {
      margin: 3,
      clampTo: MODEL_IMAGE_SIZE,
    });
    // A mask so thin that INTER_AREA rounds it away at 256 would crash the original; the
    // scaled crop box is the closest prompt.
    return { cropBox, box256: box256 ?? scaleBox(cropBox, H, W, { truncate: true }) };
  };

  const runSlice = async (z: number, active: BoxTrack[], pass: Pass) => {
    const embedding = await embed(z);
    const img = { data: slice(z), h: H, w: W, c: 1 };
    for (let start = 0; start < active.length; start += maxBatch) {
      const chunk = active.slice(start, start + maxBatch);
      const requests = chunk.map((t) => request(t, z, pass, pass === 'up' ? t.upPrev : t.downPrev));
      const prompts = await time.async('prompts', () =>
        buildBoxPrompts(img, requests, models.vision, modality, file),
      );
      const out = await time.async('decode', () => models.engine.decode(embedding, prompts, chunk.length));
      time.sync('postprocess', () =>
        chunk.forEach((t, j) => {
          const lowres = out.lowResLogits.subarray(j * LOW_RES_SIZE ** 2, (j + 1) * LOW_RES_SIZE ** 2);
          const { mask } = postprocessLogits(lowres, newH, newW, H, W);
          // The original's tmp volume is uint8 and holds idx: the value matters, as INTER_AREA
          // rounds partly covered pixels of the next prompt's mask.
          const value = Math.min(t.idx, 255);
          const base = z * HW;
          let fg = 0;
          for (let p = 0; p < HW; p++) {
            if (mask[p]) {
              mask[p] = value;
              if (segs[base + p] < t.idx) segs[base + p] = t.idx;
              fg++;
            }
          }
          if (pass === 'up') {
            t.upPrev = mask;
            if (z === t.zm) t.downPrev = mask;
          } else t.downPrev = mask;
          calls.push({
            pass,
            call: { box: t.idx, z, ...requests[j], iou: out.iou[j], fgPx: fg },
            ...(options.keepLogits ? { logits: lowres.slice() } : {}),
          });
        }),
      );
    }
  };

  if (tracks.length) {
    const zLo = Math.min(...tracks.map((t) => t.zm));
    const zHi = Math.max(...tracks.map((t) => t.upEnd));
    for (let z = zLo; z <= zHi; z++) {
      const active = tracks.filter((t) => t.zm <= z && z <= t.upEnd);
      if (active.length) await runSlice(z, active, 'up');
    }
    const dHi = Math.max(...tracks.map((t) => t.zm - 1));
    const dLo = Math.min(...tracks.map((t) => t.downEnd));
    for (let z = dHi; z >= dLo; z--) {
      const active = tracks.filter((t) => t.downEnd <= z && z <= t.zm - 1);
      if (active.length) await runSlice(z, active, 'down');
    }
  }

  // The original's call order: box after box, its up pass (z ascending) then its down pass.
  calls.sort((a, b) => {
    if (a.call.box !== b.call.box) return a.call.box - b.call.box;
    if (a.pass !== b.pass) return a.pass === 'up' ? -1 : 1;
    return a.pass === 'up' ? a.call.z! - b.call.z! : b.call.z! - a.call.z!;
  });
  const dtype = segs instanceof Uint16Array ? 'uint16' : 'uint8';
  return {
    segs: ndarray(dtype, [D, H, W], segs),
    calls: calls.map((c) => c.call),
    ...(options.keepLogits ? { lowResLogits: calls.map((c) => c.logits!) } : {}),
    seconds: time.totals(),
    slices: { encoded: cache.misses, cacheHits: cache.hits },
  };
}
