import { InputError, Module, tf } from '@mcp-medsam/core';
import type { McpMedsamConfig } from './config.js';
import { CROP_SIZE } from './config.js';
import { TinyViT } from './image_encoder/tiny_vit.js';
import type { EncoderTaps } from './image_encoder/tiny_vit.js';
import { MaskDecoder } from './mask_decoder/mask_decoder.js';
import { PromptEncoder } from './prompt_encoder/prompt_encoder.js';
import type { PromptInputs } from './prompt_encoder/prompt_encoder.js';
import { validateExtensionInputs } from './prompt_encoder/extension.js';
import type { PromptExtension, PromptExtensionSpec } from './prompt_encoder/extension.js';

/** Inputs of one forward pass (the fixture names in comments). */
export interface ForwardInputs extends PromptInputs {
  /** `image`: (B, 3, 256, 256) float32, normalised to [0,1] and zero-padded bottom/right. */
  image: tf.Tensor;
}

/** Every output of a forward pass; maps are NCHW like the original's. */
export interface ForwardOutputs {
  image_embedding: tf.Tensor;
  sparse: tf.Tensor;
  dense: tf.Tensor;
  dense_pe: tf.Tensor;
  hs: tf.Tensor;
  keys: tf.Tensor;
  low_res_logits: tf.Tensor;
  iou: tf.Tensor;
  category_logits: tf.Tensor;
  clip_vec: tf.Tensor;
  img_vec: tf.Tensor;
  /** Encoder stage outputs (tokens), when asked for. */
  tap_layers_0?: tf.Tensor;
  tap_layers_1?: tf.Tensor;
  tap_layers_2?: tf.Tensor;
  tap_layers_3?: tf.Tensor;
  tap_patch_embed?: tf.Tensor;
}

export interface McpMedsamOptions {
  /**
   * Prompt extensions, registered in this order (their tokens follow the base ones in this
   * order). Functions are called with the configuration after the base modules are built, so the
   * base weights are initialised exactly as without extensions.
   */
  promptExtensions?: readonly PromptExtensionSpec[];
}

/**
 * MCP-MedSAM: `image_encoder` (TinyViT), `mask_decoder` (MaskDecoder_F4) and `prompt_encoder`, in
 * the original's attribute order so the state dict matches key for key.
 */
export class McpMedsam extends Module {
  readonly image_encoder: TinyViT;
  readonly mask_decoder: MaskDecoder;
  readonly prompt_encoder: PromptEncoder;

  constructor(
    readonly config: McpMedsamConfig,
    options: McpMedsamOptions = {},
  ) {
    super();
    this.image_encoder = this.child(
      'image_encoder',
      new TinyViT(config.encoder, config.embedDim, config.imageSize),
    );
    this.mask_decoder = this.child('mask_decoder', new MaskDecoder(config));
    this.prompt_encoder = this.child('prompt_encoder', new PromptEncoder(config));
    for (const spec of options.promptExtensions ?? [])
      this.prompt_encoder.addExtension(typeof spec === 'function' ? spec(config) : spec);
  }

  /** The registered prompt extensions (`prompt_encoder.extensions.<name>`). */
  get promptExtensions(): readonly PromptExtension[] {
    return this.prompt_encoder.extensions;
  }

  /** The image embedding (B, 64, 64, C) NHWC of preprocessed images (B, 3, 256, 256). */
  encodeImage(image: tf.Tensor, taps?: EncoderTaps): tf.Tensor {
    validateImage(image, this.config.imageSize);
    return this.image_encoder.forward(image, taps);
  }

  /**
   * Decodes boxes against an image embedding (NHWC, batch 1 or B). Returns the raw decoder
   * outputs; `lowResLogits` is (B, 1, 256, 256).
   */
  decode(imageEmbedding: tf.Tensor, prompts: PromptInputs) {
    validatePrompts(prompts, this.config, this.promptExtensions);
    return tf.tidy(() => {
      const { sparse, dense } = this.prompt_encoder.forward(prompts);
      const pe = this.prompt_encoder.densePe();
      const b = sparse.shape[0];
      const emb = imageEmbedding.shape[0] === b ? imageEmbedding : tf.tile(imageEmbedding, [b, 1, 1, 1]);
      const out = this.mask_decoder.forward(emb, pe, sparse, dense);
      return { ...out, sparse, dense, densePe: pe };
    });
  }

  /** The full network as the original's training loop calls it, with every output. */
  forward(inputs: ForwardInputs, options: { taps?: boolean } = {}): ForwardOutputs {
    // Validate everything before the expensive encoder runs.
    validateImage(inputs.image, this.config.imageSize);
    validatePrompts(inputs, this.config, this.promptExtensions);
    if (inputs.image.shape[0] !== inputs.boxes.shape[0])
      throw new InputError(
        `image batch ${inputs.image.shape[0]} differs from the prompt batch ${inputs.boxes.shape[0]}`,
      );
    const nchw = (t: tf.Tensor) => tf.transpose(t, [0, 3, 1, 2]);
    // One tidy for the whole pass: intermediates the gradient tape still needs must not be
    // disposed by hand.
    return tf.tidy(() => {
      const taps: EncoderTaps | undefined = options.taps ? {} : undefined;
      const emb = this.encodeImage(inputs.image, taps);
      const result = forwardOutputs(emb, this.decode(emb, inputs));
      if (taps) {
        if (taps.patch_embed) {
          result.tap_patch_embed = nchw(taps.patch_embed);
          taps.patch_embed.dispose(); // a kept clone; the NCHW copy is what is returned
        }
        result.tap_layers_0 = taps.layers_0;
        result.tap_layers_1 = taps.layers_1;
        result.tap_layers_2 = taps.layers_2;
        result.tap_layers_3 = taps.layers_3;
      }
      return result as unknown as tf.TensorContainer;
    }) as unknown as ForwardOutputs;
  }
}

/** The forward outputs (NCHW maps, fixture names) from an NHWC embedding and a decode result. */
export function forwardOutputs(emb: tf.Tensor, dec: ReturnType<McpMedsam['decode']>): ForwardOutputs {
  const nchw = (t: tf.Tensor) => tf.transpose(t, [0, 3, 1, 2]);
  return {
    image_embedding: nchw(emb),
    sparse: dec.sparse,
    dense: nchw(dec.dense),
    dense_pe: nchw(dec.densePe),
    hs: dec.hs,
    keys: dec.keys,
    low_res_logits: dec.lowResLogits,
    iou: dec.iou,
    category_logits: dec.categoryLogits,
    clip_vec: dec.clipVec,
    img_vec: dec.imgVec,
  };
}

function shapeStr(t: tf.Tensor): string {
  return `(${t.shape.join(',')})`;
}

function validateImage(image: tf.Tensor, size: number): void {
  const s = image.shape;
  if (s.length !== 4 || s[1] !== 3 || s[2] !== size || s[3] !== size) {
    throw new InputError(`image must have shape (B,3,${size},${size}), got ${shapeStr(image)}`);
  }
  if (image.dtype !== 'float32') throw new InputError(`image must be float32, got ${image.dtype}`);
  assertFinite(image, 'image');
}

function validatePrompts(
  p: PromptInputs,
  config: McpMedsamConfig,
  extensions: readonly PromptExtension[],
): void {
  const b = p.boxes.shape[0];
  if (p.boxes.size !== b * 4)
    throw new InputError(`boxes must hold 4 values per sample, got ${shapeStr(p.boxes)}`);
  const expect = (t: tf.Tensor, name: string, perSample: number[]) => {
    const got = t.shape;
    const ok = got[0] === b && t.size === b * perSample.reduce((a, c) => a * c, 1);
    if (!ok)
      throw new InputError(`${name} must have shape (${[b, ...perSample].join(',')}), got ${shapeStr(t)}`);
  };
  expect(p.clipImage, 'clip image features', [config.clipDim]);
  expect(p.clipText, 'clip text features', [config.clipDim]);
  expect(p.categoryIdx, 'category_idx', []);
  if (
    p.crops.rank !== 4 ||
    p.crops.shape[0] !== b ||
    p.crops.shape[1] !== 3 ||
    p.crops.shape[2] !== CROP_SIZE ||
    p.crops.shape[3] !== CROP_SIZE
  )
    throw new InputError(
      `crops must have shape (${b},3,${CROP_SIZE},${CROP_SIZE}), got ${shapeStr(p.crops)}`,
    );
  const cats = p.categoryIdx.dataSync();
  for (const c of cats)
    if (!Number.isInteger(Number(c)) || Number(c) < 0 || Number(c) >= config.numCategories)
      throw new InputError(`category_idx ${c} is out of range [0, ${config.numCategories - 1}]`);
  assertFinite(p.boxes, 'boxes');
  assertFinite(p.clipImage, 'clip image features');
  assertFinite(p.clipText, 'clip text features');
  assertFinite(p.crops, 'crops');
  const bx = p.boxes.dataSync();
  for (let i = 0; i < b; i++) {
    const [x0, y0, x1, y1] = [bx[4 * i], bx[4 * i + 1], bx[4 * i + 2], bx[4 * i + 3]];
    if (x1 < x0 || y1 < y0)
      throw new InputError(`box ${i} [${x0}, ${y0}, ${x1}, ${y1}] is inverted (x1 < x0 or y1 < y0)`);
  }
  validateExtensionInputs(extensions, p.extra, b);
}

function assertFinite(t: tf.Tensor, name: string): void {
  const bad = tf.tidy(() => tf.any(tf.logicalNot(tf.isFinite(t))).dataSync()[0]);
  if (bad) throw new InputError(`${name} contains NaN or infinite values`);
}
