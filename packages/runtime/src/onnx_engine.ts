/** The exported graphs run by onnxruntime-node: the fast CPU (or CUDA) engine. */
import type * as Ort from 'onnxruntime-node';
import { FormatError } from '@mcp-medsam/core/common';
import { checkExtraInputs } from './extra_inputs.js';
import { OnnxRunError, openOrtSession, type OrtModule, type OrtSessionOptions } from '@mcp-medsam/prompts';
import { CROP_SIDE, LOW_RES_SIZE, MODEL_IMAGE_SIZE } from './engine.js';
import type { DecodePrompts, DecodeResult, SegmentationEngine } from './engine.js';
import { readManifest, type ExportManifest } from './manifest.js';

/** Options of {@link OnnxEngine.load}. */
export interface OnnxEngineOptions extends OrtSessionOptions {
  /**
   * Called with every output of every decoder run, including outputs the engine does not use
   * (int8 calibration reads the probe outputs of a probed export this way).
   */
  onDecoderOutputs?: (outputs: Record<string, Ort.Tensor>) => void;
}

/** {@link SegmentationEngine} over `image_encoder.onnx` and `prompt_decoder.onnx`. */
export class OnnxEngine implements SegmentationEngine {
  readonly name = 'onnx';
  readonly manifest: ExportManifest;
  readonly clipDim: number;
  readonly #ort: OrtModule;
  readonly #encoder: Ort.InferenceSession;
  readonly #decoder: Ort.InferenceSession;
  readonly #onDecoderOutputs?: OnnxEngineOptions['onDecoderOutputs'];
  #closed = false;

  private constructor(
    ort: OrtModule,
    manifest: ExportManifest,
    enc: Ort.InferenceSession,
    dec: Ort.InferenceSession,
    onDecoderOutputs?: OnnxEngineOptions['onDecoderOutputs'],
  ) {
    this.#onDecoderOutputs = onDecoderOutputs;
    this.#ort = ort;
    this.manifest = manifest;
    this.clipDim = manifest.clipDim;
    this.#encoder = enc;
    this.#decoder = dec;
  }

  /** Open the export in `dir` (its manifest.json names the graphs). */
  static async load(dir: string, options: OnnxEngineOptions = {}): Promise<OnnxEngine> {
    const manifest = await readManifest(dir);
    const enc = await openOrtSession(manifest.encoderFile, options);
    try {
      const dec = await openOrtSession(manifest.decoderFile, options);
      return new OnnxEngine(enc.ort, manifest, enc.session, dec.session, options.onDecoderOutputs);
    } catch (e) {
      await enc.session.release();
      throw e;
    }
  }

  get #embeddingLength(): number {
    return this.manifest.embedDim * this.manifest.embeddingSize ** 2;
  }

  async #run(session: Ort.InferenceSession, file: string, feeds: Record<string, Ort.Tensor>) {
    if (this.#closed) throw new OnnxRunError('the engine is closed', { file });
    try {
      return await session.run(feeds);
    } catch (e) {
      throw new OnnxRunError(`onnxruntime failed (${(e as Error).message})`, { file, cause: e });
    }
  }

  async encode(images: Float32Array, n: number): Promise<Float32Array[]> {
    const { Tensor } = this.#ort;
    const file = this.manifest.encoderFile;
    const out = await this.#run(this.#encoder, file, {
      image: new Tensor('float32', images, [n, 3, MODEL_IMAGE_SIZE, MODEL_IMAGE_SIZE]),
    });
    const emb = out.image_embeddings as Ort.Tensor;
    const per = this.#embeddingLength;
    if (emb.data.length !== n * per)
      throw new FormatError(`image_embeddings has ${emb.data.length} values, expected ${n * per}`, { file });
    const data = emb.data as Float32Array;
    return Array.from({ length: n }, (_, i) => data.slice(i * per, (i + 1) * per));
  }

  /**
   * Decode `n` boxes; a graph exported with prompt extensions also takes their inputs from
   * `p.extra` (checked against the manifest, InputError naming the extension otherwise).
   */
  async decode(embedding: Float32Array, p: DecodePrompts, n: number): Promise<DecodeResult> {
    const { Tensor } = this.#ort;
    const { embedDim, embeddingSize: e, clipDim } = this.manifest;
    checkExtraInputs(this.manifest.extraInputs, p.extra, n);
    const extraFeeds: Record<string, Ort.Tensor> = {};
    for (const x of this.manifest.extraInputs) {
      const a = p.extra![x.name];
      extraFeeds[x.name] = new Tensor(x.dtype, a.data, a.shape);
    }
    const per = this.#embeddingLength;
    // The graph's batch axis is shared by all inputs, so the one embedding is repeated per box.
    const emb = new Float32Array(n * per);
    for (let i = 0; i < n; i++) emb.set(embedding, i * per);
    const out = await this.#run(this.#decoder, this.manifest.decoderFile, {
      image_embeddings: new Tensor('float32', emb, [n, embedDim, e, e]),
      boxes: new Tensor('float32', p.boxes, [n, 4]),
      clip_image: new Tensor('float32', p.clipImage, [n, clipDim]),
      clip_text: new Tensor('float32', p.clipText, [n, clipDim]),
      category_idx: new Tensor(
        'int64',
        BigInt64Array.from(p.categoryIdx, (v) => BigInt(v)),
        [n],
      ),
      crops: new Tensor('float32', p.crops, [n, 3, CROP_SIDE, CROP_SIDE]),
      ...extraFeeds,
    });
    this.#onDecoderOutputs?.(out as Record<string, Ort.Tensor>);
    const logits = (out.low_res_logits as Ort.Tensor).data as Float32Array;
    if (logits.length !== n * LOW_RES_SIZE * LOW_RES_SIZE)
      throw new FormatError(`low_res_logits has ${logits.length} values for ${n} boxes`, {
        file: this.manifest.decoderFile,
      });
    return { lowResLogits: logits, iou: (out.iou as Ort.Tensor).data as Float32Array };
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await Promise.all([this.#encoder.release(), this.#decoder.release()]);
  }
}
