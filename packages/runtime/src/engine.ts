/**
 * What the inference pipelines need from a network: an image encoder and a prompt decoder. The
 * pipelines never look inside an embedding, so any engine (onnxruntime, tfjs, a stand-in network
 * for testing the pipeline logic) plugs in the same way.
 */

/** Side of the square low-resolution logits every decoder returns. */
export const LOW_RES_SIZE = 256;

/** Side of the square model input. */
export const MODEL_IMAGE_SIZE = 256;

/** Side of the square content crops fed to the crop net. */
export const CROP_SIDE = 64;

/** The prompts of `n` boxes decoded against one image embedding. */
export interface DecodePrompts {
  /** `n * 4` values: `[x0, y0, x1, y1]` in the 256 frame, as float32. */
  boxes: Float32Array;
  /** `n * clipDim` CLIP image features of the box crops. */
  clipImage: Float32Array;
  /** `n * clipDim` CLIP text features of the modality text. */
  clipText: Float32Array;
  /** `n` modality category indices. */
  categoryIdx: Int32Array;
  /** `n * 3 * 64 * 64` content crops in [0, 1], channel-first. */
  crops: Float32Array;
  /**
   * Inputs of the model's prompt extensions by their declared names, each with its full shape
   * (batch `n` first); the engine checks them against the model or the export manifest.
   */
  extra?: Record<string, ExtraInput>;
}

/** One prompt-extension input: row-major data and its shape. */
export interface ExtraInput {
  data: Float32Array | Int32Array;
  shape: number[];
}

/** Decoder outputs for `n` boxes. */
export interface DecodeResult {
  /** `n * 256 * 256` low-resolution logits, box after box. */
  lowResLogits: Float32Array;
  /** `n` predicted IoUs. */
  iou: Float32Array;
}

/** An image encoder and prompt decoder pair. */
export interface SegmentationEngine {
  /** 'onnx', 'tfjs' or another engine's name (reported in logs and benchmarks). */
  readonly name: string;
  /** Width of the CLIP features the decoder takes. */
  readonly clipDim: number;
  /**
   * Embed `n` preprocessed images (`n * 3 * 256 * 256` float32, channel-first). Resolves to one
   * embedding per image; callers treat them as opaque and hand them back to `decode`.
   */
  encode(images: Float32Array, n: number): Promise<Float32Array[]>;
  /** Decode `n` boxes against one image's embedding. */
  decode(embedding: Float32Array, prompts: DecodePrompts, n: number): Promise<DecodeResult>;
  /** Release native resources; the engine must not be used afterwards. */
  close(): Promise<void>;
}
