import { Embedding, Module, ModuleList, tf } from '@mcp-medsam/core';
import type { McpMedsamConfig } from '../config.js';
import { EMBEDDING_SIZE } from '../config.js';
import { CropNet } from './crop_net.js';
import { checkExtensionDeclaration, type ExtensionEmbedding, type PromptExtension } from './extension.js';
import { Mlp } from './mlp.js';
import { PositionEmbeddingRandom } from './position_embedding_random.js';

export interface PromptInputs {
  /** Boxes [x0, y0, x1, y1] in the 256 frame, any shape with 4 values per sample: (B,4), (B,1,4), (B,1,1,4). */
  boxes: tf.Tensor;
  /** Frozen CLIP image features of the box crop, (B, 512) or (B, 1, 512). */
  clipImage: tf.Tensor;
  /** Frozen CLIP text features of "<Modality> Image", (B, 512) or (B, 1, 512). */
  clipText: tf.Tensor;
  /** Modality indices (B,), int. */
  categoryIdx: tf.Tensor;
  /** Box crop resized to 64x64, values in [0,1], (B, 3, 64, 64) NCHW. */
  crops: tf.Tensor;
  /** Inputs of the prompt extensions, by their declared names (see PromptExtension). */
  extra?: Record<string, tf.Tensor>;
}

export interface PromptOutputs {
  /**
   * (B, 4 + T, C): box corner 0, box corner 1, CLIP content token, modality token, then the
   * prompt extensions' tokens in registration order.
   */
  sparse: tf.Tensor;
  /** (B, 64, 64, C) NHWC: the crop-net output, plus the extensions' dense maps. */
  dense: tf.Tensor;
}

/** Number of base sparse tokens (two box corners, CLIP content, modality); extension tokens follow. */
export const BASE_SPARSE_TOKENS = 4;

/**
 * The `prompt_encoder.extensions` container, added with the first extension: without one the
 * state dict keeps the original's keys.
 */
class ExtensionSet extends Module {
  add(ext: PromptExtension): void {
    this.child(ext.name, ext);
  }
}

/**
 * The MCP-MedSAM prompt encoder (`prompt_encoder.*`, spec §3): box corners through the random
 * Fourier PE, the content prompt (crop net + CLIP image MLP) and the modality prompt (CLIP text MLP
 * fused with a learned category embedding).
 */
export class PromptEncoder extends Module {
  readonly pe_layer: PositionEmbeddingRandom;
  readonly point_embeddings: ModuleList<Embedding>;
  readonly not_a_point_embed: Embedding;
  readonly no_mask_embed: Embedding;
  readonly crop_nets: CropNet;
  readonly clip_img_mlp: Mlp;
  readonly clip_text_mlp: Mlp;
  readonly mlps: Mlp;
  readonly categories: Embedding;
  readonly embedDim: number;
  readonly #extensions: PromptExtension[] = [];
  #extensionSet?: ExtensionSet;

  constructor(readonly config: McpMedsamConfig) {
    super();
    const c = config.embedDim;
    this.embedDim = c;
    this.pe_layer = this.child('pe_layer', new PositionEmbeddingRandom(c / 2));
    this.point_embeddings = this.child(
      'point_embeddings',
      new ModuleList(Array.from({ length: 4 }, () => new Embedding(1, c))),
    );
    this.not_a_point_embed = this.child('not_a_point_embed', new Embedding(1, c));
    this.no_mask_embed = this.child('no_mask_embed', new Embedding(1, c));
    this.crop_nets = this.child('crop_nets', new CropNet(c));
    this.clip_img_mlp = this.child('clip_img_mlp', new Mlp(config.clipDim, c, c));
    this.clip_text_mlp = this.child('clip_text_mlp', new Mlp(config.clipDim, c, c));
    this.mlps = this.child('mlps', new Mlp(2 * c, 2 * c, c));
    this.categories = this.child('categories', new Embedding(config.numCategories, c));
  }

  /** The registered prompt extensions, in the order their tokens follow the base ones. */
  get extensions(): readonly PromptExtension[] {
    return this.#extensions;
  }

  /**
   * Registers a prompt extension as `extensions.<name>` (after every base module, so the base
   * keys keep their order). Its mode follows this module's.
   */
  addExtension(ext: PromptExtension): PromptExtension {
    checkExtensionDeclaration(ext, this.#extensions);
    this.#extensionSet ??= this.child('extensions', new ExtensionSet());
    this.#extensionSet.add(ext);
    this.#extensions.push(ext);
    ext.train(this.training);
    return ext;
  }

  /** The two box-corner tokens (B, 2, C). */
  embedBoxes(boxes: tf.Tensor): tf.Tensor {
    return tf.tidy(() => {
      const b = boxes.shape[0];
      const corners = tf.add(tf.reshape(tf.cast(boxes, 'float32'), [b, 2, 2]), 0.5);
      const size = this.config.imageSize;
      const pe = this.pe_layer.encodeWithCoords(corners, size, size);
      const cornerEmb = tf.concat(
        [this.point_embeddings.items[2].weight, this.point_embeddings.items[3].weight],
        0,
      );
      return tf.add(pe, cornerEmb);
    });
  }

  /** The modality token (B, 1, C). */
  embedModality(clipText: tf.Tensor, categoryIdx: tf.Tensor): tf.Tensor {
    return tf.tidy(() => {
      const b = categoryIdx.shape[0];
      const t = tf.reshape(this.clip_text_mlp.forward(clipText), [b, this.embedDim]);
      const e = this.categories.forward(tf.reshape(categoryIdx, [b]));
      return tf.reshape(this.mlps.forward(tf.concat([t, e], 1)), [b, 1, this.embedDim]);
    });
  }

  /**
   * The prompt embeddings. Extension inputs are taken from `inputs.extra` as they are: the model
   * validates them (`McpMedsam.decode` / `forward`) before calling this.
   */
  forward(inputs: PromptInputs): PromptOutputs {
    if (this.#extensions.length) return this.forwardWithExtensions(inputs);
    const sparse = tf.tidy(() => {
      const b = inputs.boxes.shape[0];
      const boxTokens = this.embedBoxes(inputs.boxes);
      const clipToken = tf.reshape(this.clip_img_mlp.forward(inputs.clipImage), [b, 1, this.embedDim]);
      return tf.concat([boxTokens, clipToken, this.embedModality(inputs.clipText, inputs.categoryIdx)], 1);
    });
    const dense = this.crop_nets.forward(inputs.crops);
    return { sparse, dense };
  }

  private forwardWithExtensions(inputs: PromptInputs): PromptOutputs {
    const b = inputs.boxes.shape[0];
    const c = this.embedDim;
    const extra = inputs.extra ?? {};
    return tf.tidy(() => {
      const tokens = [
        this.embedBoxes(inputs.boxes),
        tf.reshape(this.clip_img_mlp.forward(inputs.clipImage), [b, 1, c]),
        this.embedModality(inputs.clipText, inputs.categoryIdx),
      ];
      const maps: tf.Tensor[] = [];
      for (const ext of this.#extensions) {
        const own = Object.fromEntries(ext.inputs.map((s) => [s.name, extra[s.name]]));
        const r = ext.embed(own, this);
        const { sparse, dense }: ExtensionEmbedding = r instanceof tf.Tensor ? { sparse: r } : r;
        const bad = (what: string, t: tf.Tensor, want: string) =>
          new Error(
            `prompt extension '${ext.name}': embed returned ${what} of shape (${t.shape}), expected ${want}`,
          );
        if (sparse) {
          if (sparse.rank !== 3 || sparse.shape[0] !== b || sparse.shape[2] !== c)
            throw bad('sparse tokens', sparse, `(${b}, T, ${c})`);
          tokens.push(sparse);
        }
        if (dense) {
          const s = dense.shape;
          const e = EMBEDDING_SIZE;
          if (dense.rank !== 4 || s[0] !== b || s[1] !== e || s[2] !== e || s[3] !== c)
            throw bad('a dense map', dense, `(${b}, ${e}, ${e}, ${c}) NHWC`);
          maps.push(dense);
        }
      }
      const sparse = tf.concat(tokens, 1);
      const crop = this.crop_nets.forward(inputs.crops);
      const dense = maps.length ? tf.addN([crop, ...maps]) : crop;
      return { sparse, dense };
    });
  }

  /** get_dense_pe(): (1, 64, 64, C) NHWC. */
  densePe(): tf.Tensor {
    return this.pe_layer.grid(EMBEDDING_SIZE, EMBEDDING_SIZE);
  }
}
