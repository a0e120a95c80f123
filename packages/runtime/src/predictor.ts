/**
 * The user-facing entry point: an engine, a CLIP image tower and a text table, and one call per
 * case. Named after segment-anything's `SamPredictor`.
 */
import { InputError, modalityIndex, parseModality } from '@mcp-medsam/core/common';
import { fileNameToken, type NdArray } from '@mcp-medsam/io';
import type { ImageFeatureProvider, TextFeatureProvider } from '@mcp-medsam/prompts';
import type { ModalityPrompt } from './box_prompts.js';
import type { SegmentationEngine } from './engine.js';
import { segment2D, type PipelineOptions } from './pipeline_2d.js';
import { segment3D, type Pipeline3DOptions } from './pipeline_3d.js';
import type { SegmentResult } from './result.js';

/** The inputs of one case. */
export interface CaseInput {
  /** 2D: (H,W,3) or (H,W) uint8; 3D: (D,H,W) uint8. */
  imgs: NdArray;
  /** 2D: (N,4) `[x0,y0,x1,y1]`; 3D: (N,6) `[x0,y0,z0,x1,y1,z1]`; integer pixel coordinates. */
  boxes: NdArray;
  /** Modality token as in challenge file names: 'CT', 'MR', 'XRay', 'X-Ray', 'Microscope'... */
  modality: string;
  dims: 2 | 3;
  /** Named in errors. */
  file?: string;
}

/** The original's modality text: the file-name token, with Microscope renamed (spec §11). */
export function inferenceText(token: string, file?: string): string {
  parseModality(token, file);
  return `${token === 'Microscope' ? 'Microscopy' : token} Image`;
}

/** The modality token of a challenge file name (`2D_XRay_x.npz` → 'XRay'), checked. */
export function modalityToken(fileName: string): string {
  const { token } = fileNameToken(fileName);
  parseModality(token, fileName);
  return token;
}

/** Segments cases with one engine, one CLIP image tower and one text table. */
export class MedsamPredictor {
  readonly #textCache = new Map<string, Float32Array>();

  constructor(
    readonly engine: SegmentationEngine,
    readonly vision: ImageFeatureProvider,
    readonly text: TextFeatureProvider,
  ) {
    if (vision.dim !== engine.clipDim || text.dim !== engine.clipDim)
      throw new InputError(
        `CLIP widths differ: the model takes ${engine.clipDim}, the image tower gives ${vision.dim}, the text table ${text.dim}`,
      );
  }

  /** Text feature and category of a modality token (the text embedded once per token). */
  async modalityPrompt(token: string, file?: string): Promise<ModalityPrompt> {
    const text = inferenceText(token, file);
    let feature = this.#textCache.get(text);
    if (!feature) {
      feature = await this.text.embed([text]);
      this.#textCache.set(text, feature);
    }
    return { textFeature: feature, categoryIdx: modalityIndex(token, file) };
  }

  /** Segment one case on the 2D or 3D path. */
  async segment(input: CaseInput, options: Pipeline3DOptions = {}): Promise<SegmentResult> {
    const opts: PipelineOptions & Pipeline3DOptions = { ...options, file: options.file ?? input.file };
    const modality = await this.modalityPrompt(input.modality, opts.file);
    const models = { engine: this.engine, vision: this.vision };
    return input.dims === 3
      ? segment3D(input.imgs, input.boxes, modality, models, opts)
      : segment2D(input.imgs, input.boxes, modality, models, opts);
  }

  /** Release the engine and the image tower. */
  async close(): Promise<void> {
    await Promise.all([this.engine.close(), this.vision.close()]);
  }
}
