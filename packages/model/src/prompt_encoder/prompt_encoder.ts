import { Embedding, Module, ModuleList, tf } from '@mcp-medsam/core';
import type { McpMedsamConfig } from '../config.js';
import { EMBEDDING_SIZE } from '../config.js';
import { CropNet } from './crop_net.js';
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
}

export interface PromptOutputs {
  /** (B, 4, C): box corner 0, box corner 1, CLIP content token, modality token. */
  sparse: tf.Tensor;
  /** (B, 64, 64, C) NHWC: the crop-net output. */
  dense: tf.Tensor;
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

  forward(inputs: PromptInputs): PromptOutputs {
    const sparse = tf.tidy(() => {
      const b = inputs.boxes.shape[0];
      const boxTokens = this.embedBoxes(inputs.boxes);
      const clipToken = tf.reshape(this.clip_img_mlp.forward(inputs.clipImage), [b, 1, this.embedDim]);
      return tf.concat([boxTokens, clipToken, this.embedModality(inputs.clipText, inputs.categoryIdx)], 1);
    });
    const dense = this.crop_nets.forward(inputs.crops);
    return { sparse, dense };
  }

  /** get_dense_pe(): (1, 64, 64, C) NHWC. */
  densePe(): tf.Tensor {
    return this.pe_layer.grid(EMBEDDING_SIZE, EMBEDDING_SIZE);
  }
}
