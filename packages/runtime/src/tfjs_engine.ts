/**
 * The tfjs model as an engine: runs any checkpoint without an export step, on whichever tfjs
 * backend `@mcp-medsam/core` picked (tfjs-node-gpu, tfjs-node, wasm or cpu).
 */
import { InputError, StateDictError } from '@mcp-medsam/core/common';
import { initBackend, tf } from '@mcp-medsam/core';
import type { BackendName } from '@mcp-medsam/core';
import {
  McpMedsam,
  PRESETS,
  getPreset,
  loadStateDict,
  readCheckpointFile,
  type PromptExtensionSpec,
  type PromptInputs,
} from '@mcp-medsam/model';
import { checkExtraData } from './extra_inputs.js';
import { CROP_SIDE, LOW_RES_SIZE, MODEL_IMAGE_SIZE } from './engine.js';
import type { DecodePrompts, DecodeResult, SegmentationEngine } from './engine.js';

/** Options of {@link TfjsEngine.fromCheckpoint}. */
export interface TfjsEngineOptions {
  /** Model preset; by default the first preset whose shapes the checkpoint fits. */
  preset?: string;
  /** tfjs backend (default: the best available, see `initBackend`). */
  backend?: BackendName;
  /**
   * Prompt extensions the checkpoint was trained with (functions: one model is built per preset
   * tried); their weights must be in the checkpoint.
   */
  promptExtensions?: readonly PromptExtensionSpec[];
}

/** {@link SegmentationEngine} over an `McpMedsam` in eval mode. */
export class TfjsEngine implements SegmentationEngine {
  readonly name = 'tfjs';
  readonly clipDim: number;
  readonly model: McpMedsam;

  /** Wrap a model (put in eval mode; disposed by `close`). */
  constructor(model: McpMedsam) {
    this.model = model.eval();
    this.clipDim = model.config.clipDim;
  }

  /** Load a `.pth` or `.safetensors` MCP-MedSAM checkpoint. */
  static async fromCheckpoint(file: string, options: TfjsEngineOptions = {}): Promise<TfjsEngine> {
    await initBackend({ log: null, ...(options.backend ? { backend: options.backend } : {}) });
    const ck = await readCheckpointFile(file);
    const names = options.preset ? [getPreset(options.preset).name] : Object.keys(PRESETS);
    const errors: string[] = [];
    for (const name of names) {
      const model = new McpMedsam(getPreset(name), { promptExtensions: options.promptExtensions });
      try {
        const r = loadStateDict(model, ck.stateDict, { strict: true, file });
        if (r.kind !== 'full')
          throw new InputError('a bare image-encoder checkpoint cannot segment', { file });
        return new TfjsEngine(model);
      } catch (e) {
        model.dispose();
        if (!(e instanceof StateDictError) || options.preset) throw e;
        errors.push(`${name}: ${e.message.split('\n')[0]}`);
      }
    }
    throw new InputError(`the checkpoint fits no preset (${errors.join('; ')})`, { file });
  }

  async encode(images: Float32Array, n: number): Promise<Float32Array[]> {
    const s = MODEL_IMAGE_SIZE;
    const emb = tf.tidy(() => this.model.encodeImage(tf.tensor4d(images, [n, 3, s, s])));
    const data = (await emb.data()) as Float32Array;
    emb.dispose();
    const per = data.length / n;
    // NHWC, as the decoder takes it back.
    return Array.from({ length: n }, (_, i) => data.slice(i * per, (i + 1) * per));
  }

  /** Decode `n` boxes; prompt-extension inputs in `p.extra` are checked by the model. */
  async decode(embedding: Float32Array, p: DecodePrompts, n: number): Promise<DecodeResult> {
    const c = this.model.config;
    const e = Math.round(Math.sqrt(embedding.length / c.embedDim));
    for (const [name, a] of Object.entries(p.extra ?? {})) checkExtraData(name, a);
    const [logits, iou] = tf.tidy(() => {
      const prompts: PromptInputs = {
        boxes: tf.tensor2d(p.boxes, [n, 4]),
        clipImage: tf.tensor2d(p.clipImage, [n, c.clipDim]),
        clipText: tf.tensor2d(p.clipText, [n, c.clipDim]),
        categoryIdx: tf.tensor1d(p.categoryIdx, 'int32'),
        crops: tf.tensor4d(p.crops, [n, 3, CROP_SIDE, CROP_SIDE]),
      };
      if (p.extra)
        prompts.extra = Object.fromEntries(
          Object.entries(p.extra).map(([name, a]) => [
            name,
            tf.tensor(a.data, a.shape, a.data instanceof Int32Array ? 'int32' : 'float32'),
          ]),
        );
      const d = this.model.decode(tf.tensor4d(embedding, [1, e, e, c.embedDim]), prompts);
      return [d.lowResLogits, d.iou];
    });
    try {
      const out = (await logits.data()) as Float32Array;
      if (out.length !== n * LOW_RES_SIZE * LOW_RES_SIZE)
        throw new Error(`low_res_logits has ${out.length} values for ${n} boxes`);
      return { lowResLogits: out, iou: (await iou.data()) as Float32Array };
    } finally {
      logits.dispose();
      iou.dispose();
    }
  }

  async close(): Promise<void> {
    this.model.dispose();
  }
}
