/**
 * The CLIP image tower run through onnxruntime-node. The tower is frozen and only ever runs
 * forward, so an ONNX export (docs/clip-export.md) is the simplest way to get exactly PyTorch's
 * `get_image_features` without reimplementing a ViT; the stand-in of the test fixtures has the same
 * input and output names and shapes.
 */
import type * as Ort from 'onnxruntime-node';
import { FormatError, InputError, MedsamError } from '@mcp-medsam/core/common';
import { openOrtSession, type OrtModule, type OrtSessionOptions } from './onnx_session.js';
import { CLIP_IMAGE_SIZE, checkImageBatch, pixelsPerImage, type ImageFeatureProvider } from './provider.js';

/** Options of {@link OnnxClipVision.create}. */
export interface OnnxClipVisionOptions extends OrtSessionOptions {
  /** Name of the model input (default 'pixel_values'). */
  inputName?: string;
  /** Name of the model output (default 'image_embeds', or the model's only output). */
  outputName?: string;
  /** Largest number of crops per `session.run` (default 16): bounds peak memory of big batches. */
  batchSize?: number;
  /** Side of the square input (default 224). */
  imageSize?: number;
}

/** onnxruntime failed while running a model that loaded and validated (or the session is closed). */
export class OnnxRunError extends MedsamError {
  constructor(message: string, options: { file?: string; cause?: unknown } = {}) {
    super('E_ONNX_RUN', message, options);
  }
}

function checkPositiveInt(value: number | undefined, name: string, file: string): void {
  if (value !== undefined && (!Number.isSafeInteger(value) || value <= 0)) {
    throw new InputError(`OnnxClipVision: ${name} must be a positive integer, got ${value}`, { file });
  }
}

/** A symbolic or unknown dimension (exports write the batch axis as a name, some tools as -1). */
function isDynamic(d: number | string): boolean {
  return typeof d === 'string' || d < 0;
}

function fmtShape(shape: readonly (number | string)[]): string {
  return `[${shape.map((d) => (typeof d === 'string' ? `'${d}'` : d)).join(', ')}]`;
}

/** What the model's metadata says about the batch axis and the feature width. */
interface ModelLayout {
  /** The batch size every run must have, or null when the batch axis is dynamic. */
  fixedBatch: number | null;
  /** The feature width, or null when the metadata leaves it open (found by a probe run). */
  dim: number | null;
}

/**
 * Check the input and output against what a CLIP image tower must look like: one float32 input
 * (B, 3, S, S) and a float32 output (B, D). Metadata dimensions may be symbolic; only fixed ones are
 * compared. Throws a FormatError naming the file.
 */
function validateLayout(
  session: Ort.InferenceSession,
  file: string,
  inputName: string,
  outputName: string,
  size: number,
): ModelLayout {
  const fail = (message: string): never => {
    throw new FormatError(`not a CLIP image tower: ${message}`, { file });
  };
  if (!session.inputNames.includes(inputName)) {
    fail(`no input '${inputName}' (inputs: ${session.inputNames.join(', ') || 'none'})`);
  }
  if (session.inputNames.length !== 1) {
    fail(`expected a single input '${inputName}', the model has ${session.inputNames.join(', ')}`);
  }
  if (!session.outputNames.includes(outputName)) {
    fail(`no output '${outputName}' (outputs: ${session.outputNames.join(', ') || 'none'})`);
  }
  const layout: ModelLayout = { fixedBatch: null, dim: null };
  /** The declared shape of a float32 tensor input or output, or null when it declares nothing. */
  const float32Shape = (
    kind: 'input' | 'output',
    name: string,
    meta: readonly Ort.InferenceSession.ValueMetadata[] | undefined,
  ): readonly (number | string)[] | null => {
    const m = meta?.find((x) => x.name === name);
    if (!m) return null;
    if (!m.isTensor || m.type !== 'float32')
      fail(`${kind} '${name}' must be a float32 tensor, got ${m.isTensor ? m.type : 'a non-tensor'}`);
    return (m as Ort.InferenceSession.TensorValueMetadata).shape;
  };
  // An empty shape means the model declares none (onnxruntime also drops a declared shape that
  // conflicts with the inferred one): the first run then tells.
  const shape = float32Shape('input', inputName, session.inputMetadata);
  if (shape) {
    const want = [3, size, size];
    const ok =
      shape.length === 0 ||
      (shape.length === 4 && shape.slice(1).every((d, i) => isDynamic(d) || d === want[i]) && shape[0] !== 0);
    if (!ok) fail(`input '${inputName}' has shape ${fmtShape(shape)}, expected [batch, 3, ${size}, ${size}]`);
    if (shape.length && !isDynamic(shape[0])) layout.fixedBatch = shape[0] as number;
  }
  const outShape = float32Shape('output', outputName, session.outputMetadata);
  if (outShape) {
    if (outShape.length !== 0 && outShape.length !== 2) {
      fail(`output '${outputName}' has shape ${fmtShape(outShape)}, expected [batch, dim]`);
    }
    if (outShape.length === 2 && !isDynamic(outShape[1])) {
      if ((outShape[1] as number) <= 0) fail(`output '${outputName}' has feature width ${outShape[1]}`);
      layout.dim = outShape[1] as number;
    }
  }
  return layout;
}

/**
 * {@link ImageFeatureProvider} backed by an ONNX export of the CLIP image tower (input
 * `pixel_values` (B, 3, 224, 224) float32, output `image_embeds` (B, 512) float32).
 *
 * Inputs are fed as they are: the crop /255, antialiased-bilinear resized, without CLIP's
 * mean/std normalisation, because that is what the original trained with.
 */
export class OnnxClipVision implements ImageFeatureProvider {
  /** The model file (named in errors). */
  readonly file: string;
  readonly dim: number;
  readonly imageSize: number;
  readonly inputName: string;
  readonly outputName: string;
  /** Crops per run: the model's fixed batch when it has one, else the `batchSize` option. */
  readonly batchSize: number;
  readonly #ort: OrtModule;
  #session: Ort.InferenceSession | null;
  readonly #fixedBatch: number | null;

  private constructor(init: {
    ort: OrtModule;
    session: Ort.InferenceSession;
    file: string;
    dim: number;
    imageSize: number;
    inputName: string;
    outputName: string;
    batchSize: number;
    fixedBatch: number | null;
  }) {
    this.#ort = init.ort;
    this.#session = init.session;
    this.file = init.file;
    this.dim = init.dim;
    this.imageSize = init.imageSize;
    this.inputName = init.inputName;
    this.outputName = init.outputName;
    this.batchSize = init.batchSize;
    this.#fixedBatch = init.fixedBatch;
  }

  /**
   * Load and validate a model. A missing file gives an InputError, a file onnxruntime cannot
   * parse or whose inputs/outputs do not fit a CLIP image tower a FormatError (both name the
   * file); an execution provider that cannot be loaded gives a BackendError.
   */
  static async create(file: string, options: OnnxClipVisionOptions = {}): Promise<OnnxClipVision> {
    const imageSize = options.imageSize ?? CLIP_IMAGE_SIZE;
    checkPositiveInt(options.threads, 'threads', file);
    checkPositiveInt(options.batchSize, 'batchSize', file);
    checkPositiveInt(imageSize, 'imageSize', file);
    const inputName = options.inputName ?? 'pixel_values';

    const { ort, session } = await openOrtSession(file, options);

    try {
      const outputName =
        options.outputName ??
        (session.outputNames.includes('image_embeds') || session.outputNames.length !== 1
          ? 'image_embeds'
          : session.outputNames[0]);
      const layout = validateLayout(session, file, inputName, outputName, imageSize);
      const init = {
        ort,
        session,
        file,
        dim: layout.dim ?? 0,
        imageSize,
        inputName,
        outputName,
        batchSize: layout.fixedBatch ?? options.batchSize ?? 16,
        fixedBatch: layout.fixedBatch,
      };
      if (layout.dim === null) {
        // The export left the feature width symbolic: one run on a blank crop settles it.
        const probe = await new OnnxClipVision(init).#run(
          new Float32Array(pixelsPerImage(imageSize)),
          1,
          null,
        );
        if (probe.length === 0) throw new FormatError(`output '${outputName}' has no features`, { file });
        init.dim = probe.length;
      }
      return new OnnxClipVision(init);
    } catch (e) {
      await session.release().catch(() => undefined);
      throw e;
    }
  }

  /**
   * Embed `n` crops (`n * 3 * 224 * 224` float32 values) into `n * dim` features, in chunks of
   * {@link batchSize}. A wrong value count or non-finite pixels give an InputError naming the
   * model file.
   */
  async embed(pixels: Float32Array, n: number): Promise<Float32Array> {
    if (!this.#session) throw new OnnxRunError('OnnxClipVision is closed', { file: this.file });
    checkImageBatch(pixels, n, this.imageSize, { who: 'OnnxClipVision.embed', file: this.file });
    for (let i = 0; i < pixels.length; i++) {
      if (!Number.isFinite(pixels[i])) {
        const per = pixelsPerImage(this.imageSize);
        throw new InputError(
          `OnnxClipVision.embed: pixel ${i % per} of crop ${Math.floor(i / per)} is ${pixels[i]}`,
          { file: this.file },
        );
      }
    }
    return this.#run(pixels, n, this.dim);
  }

  /** Release the onnxruntime session. Safe to call twice. */
  async close(): Promise<void> {
    const s = this.#session;
    this.#session = null;
    if (s) await s.release();
  }

  /** Run the model chunk by chunk; `dim` null accepts whatever width the model returns. */
  async #run(pixels: Float32Array, n: number, dim: number | null): Promise<Float32Array> {
    const per = pixelsPerImage(this.imageSize);
    const size = this.imageSize;
    let out: Float32Array | null = dim === null ? null : new Float32Array(n * dim);
    for (let start = 0; start < n; start += this.batchSize) {
      const count = Math.min(this.batchSize, n - start);
      // A fixed-batch export runs full batches only: the last one is padded with blank crops.
      const runCount = this.#fixedBatch ?? count;
      let chunk = pixels.subarray(start * per, (start + count) * per);
      if (runCount !== count) {
        const padded = new Float32Array(runCount * per);
        padded.set(chunk);
        chunk = padded;
      }
      const session = this.#session;
      if (!session) throw new OnnxRunError('OnnxClipVision is closed', { file: this.file });
      let result: Ort.InferenceSession.ReturnType;
      try {
        const input = new this.#ort.Tensor('float32', chunk, [runCount, 3, size, size]);
        result = await session.run({ [this.inputName]: input });
      } catch (e) {
        throw new OnnxRunError(`onnxruntime failed (${(e as Error).message})`, { file: this.file, cause: e });
      }
      const y = result[this.outputName] as Ort.Tensor | undefined;
      const width = dim ?? (y && y.dims.length === 2 ? y.dims[1] : -1);
      if (
        !y ||
        y.type !== 'float32' ||
        y.dims.length !== 2 ||
        y.dims[0] !== runCount ||
        y.dims[1] !== width
      ) {
        const got = y ? `${y.type} [${y.dims.join(', ')}]` : 'nothing';
        throw new FormatError(
          `output '${this.outputName}' is ${got}, expected float32 [${runCount}, ${dim ?? 'dim'}]`,
          { file: this.file },
        );
      }
      out ??= new Float32Array(n * width);
      out.set((y.data as Float32Array).subarray(0, count * width), start * width);
    }
    return out ?? new Float32Array(0);
  }
}
