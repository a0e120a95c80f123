import {
  Conv2d,
  ConvTranspose2d,
  Embedding,
  LayerNorm2d,
  Linear,
  Module,
  ModuleList,
  nn,
  tf,
} from '@mcp-medsam/core';
import type { McpMedsamConfig } from '../config.js';
import { BASE_SPARSE_TOKENS } from '../prompt_encoder/prompt_encoder.js';
import { Classifier, DecBlock, MLP } from './heads.js';
import { TwoWayTransformer } from './transformer.js';

export interface MaskDecoderOutputs {
  /** (B, 1, 256, 256) low-resolution mask logits of the first mask token. */
  lowResLogits: tf.Tensor;
  /** (B, 1) raw IoU prediction (no sigmoid). */
  iou: tf.Tensor;
  /** (B, numCategories) modality logits. */
  categoryLogits: tf.Tensor;
  /** (B, C) the CLIP content token as it entered the decoder. */
  clipVec: tf.Tensor;
  /** (B, C) spatial mean of the dense prompt. */
  imgVec: tf.Tensor;
  /** Two-way transformer outputs, kept for parity checks: (B, 9 + T, C) and (B, 4096, C). */
  hs: tf.Tensor;
  keys: tf.Tensor;
}

/**
 * `MaskDecoder_F4` (`mask_decoder.*`, spec §5): SAM's two-way transformer followed by the
 * modality branch (FiLM from the modality token, category head) and the content branch (dense
 * prompt plus the transformed CLIP token), fused and upscaled into hypernetwork masks.
 */
export class MaskDecoder extends Module {
  readonly transformer: TwoWayTransformer;
  readonly iou_token: Embedding;
  readonly mask_tokens: Embedding;
  readonly convs: DecBlock;
  readonly c_conv: DecBlock;
  readonly m_conv: DecBlock;
  readonly conv1: Conv2d;
  readonly w_lin: Linear;
  readonly b_lin: Linear;
  readonly output_upscaling: Module;
  readonly output_hypernetworks_mlps: ModuleList<MLP>;
  readonly iou_prediction_head: MLP;
  readonly category_prediction_head: Classifier;
  private readonly up0: ConvTranspose2d;
  private readonly up1: LayerNorm2d;
  private readonly up3: ConvTranspose2d;
  readonly numMaskTokens: number;

  constructor(readonly config: McpMedsamConfig) {
    super();
    const c = config.embedDim;
    const t = config.transformer;
    this.numMaskTokens = config.numMultimaskOutputs + 1;
    this.transformer = this.child(
      'transformer',
      new TwoWayTransformer(t.depth, c, t.numHeads, t.mlpDim, t.attentionDownsampleRate),
    );
    this.iou_token = this.child('iou_token', new Embedding(1, c));
    this.mask_tokens = this.child('mask_tokens', new Embedding(this.numMaskTokens, c));
    // Registration order = the original's state-dict order.
    this.convs = this.child('convs', new DecBlock(c));
    this.conv1 = this.child('conv1', new Conv2d(2 * c, c, 1));
    this.c_conv = this.child('c_conv', new DecBlock(c));
    this.w_lin = this.child('w_lin', new Linear(c, c));
    this.b_lin = this.child('b_lin', new Linear(c, c));
    this.m_conv = this.child('m_conv', new DecBlock(c));
    this.output_upscaling = this.child('output_upscaling', new Module());
    this.up0 = new ConvTranspose2d(c, c / 4, 2);
    this.up1 = new LayerNorm2d(c / 4);
    this.up3 = new ConvTranspose2d(c / 4, c / 8, 2);
    const ups = this.output_upscaling as unknown as { child(n: string, m: Module): Module };
    ups.child('0', this.up0);
    ups.child('1', this.up1);
    ups.child('3', this.up3);
    this.output_hypernetworks_mlps = this.child(
      'output_hypernetworks_mlps',
      new ModuleList(Array.from({ length: this.numMaskTokens }, () => new MLP(c, c, c / 8, 3))),
    );
    this.iou_prediction_head = this.child(
      'iou_prediction_head',
      new MLP(c, config.iouHeadHiddenDim, this.numMaskTokens, config.iouHeadDepth),
    );
    this.category_prediction_head = this.child(
      'category_prediction_head',
      new Classifier(c, config.categoryHiddenDim, config.numCategories),
    );
  }

  /**
   * imageEmbedding: (B, 64, 64, C) NHWC; densePe (1, 64, 64, C); sparse (B, 4 + T, C) with the T
   * prompt-extension tokens after the four base ones; dense (B, 64, 64, C).
   * In training mode all four mask tokens are decoded (so hypernetworks 1-3 get their zero
   * gradients as in PyTorch); in eval mode only the first one, whose output is the result.
   */
  forward(
    imageEmbedding: tf.Tensor,
    densePe: tf.Tensor,
    sparse: tf.Tensor,
    dense: tf.Tensor,
  ): MaskDecoderOutputs {
    return tf.tidy(() => {
      const b = sparse.shape[0];
      const c = this.config.embedDim;
      const outTokens = tf.concat([this.iou_token.weight, this.mask_tokens.weight], 0);
      const tokens = tf.concat([tf.tile(tf.expandDims(outTokens, 0), [b, 1, 1]), sparse], 1);
      const src = tf.add(imageEmbedding, dense);
      const [hs, keys] = this.transformer.forward(src, densePe, tokens);
      const [, h, w] = src.shape;
      const s = tf.reshape(keys, [b, h, w, c]);
      const token = (i: number) => tf.reshape(tf.slice(hs, [0, i, 0], [b, 1, c]), [b, c]);
      // The CLIP and modality tokens by their fixed places (the original takes the last two
      // tokens, which they are when no prompt extension appends its own).
      const firstSparse = 1 + this.numMaskTokens;
      const clipAt = firstSparse + BASE_SPARSE_TOKENS - 2;
      const modalityAt = firstSparse + BASE_SPARSE_TOKENS - 1;

      // Modality branch: FiLM of the image tokens by the transformed modality token.
      const m = token(modalityAt);
      const wc = this.w_lin.forward(m);
      const bc = this.b_lin.forward(m);
      const wc4 = tf.reshape(wc, [b, 1, 1, c]);
      const bc4 = tf.reshape(bc, [b, 1, 1, c]);
      let srcM = tf.add(tf.add(tf.mul(wc4, s), bc4), s);
      const categoryLogits = this.category_prediction_head.forward(tf.add(tf.add(wc, bc), m));
      srcM = this.m_conv.forward(srcM);

      // Content branch: the input CLIP token, the crop-net map and the transformed CLIP token.
      const clipVec = tf.reshape(tf.slice(tokens, [0, clipAt, 0], [b, 1, c]), [b, c]);
      const imgVec = tf.mean(dense, [1, 2]);
      let srcVp = tf.add(tf.add(dense, s), tf.reshape(token(clipAt), [b, 1, 1, c]));
      srcVp = this.convs.forward(srcVp);

      let x = this.conv1.forward(tf.concat([srcM, srcVp], 3));
      x = this.c_conv.forward(x);
      const up = nn.gelu(this.up3.forward(nn.gelu(this.up1.forward(this.up0.forward(x)))));
      const [, uh, uw, uc] = up.shape;

      const nMasks = this.training ? this.numMaskTokens : 1;
      const hyper = tf.stack(
        Array.from({ length: nMasks }, (_, k) =>
          this.output_hypernetworks_mlps.items[k].forward(token(1 + k)),
        ),
        2,
      ); // (B, uc, nMasks)
      // Only the first mask is an output. Slicing its hypernetwork column before the product
      // gives the same mask and the same (zero) gradients to the other hypernetworks, without
      // the (B, HW, nMasks) product and its strided slice (slow on wasm).
      const first = nMasks === 1 ? hyper : tf.slice(hyper, [0, 0, 0], [b, uc, 1]);
      const masks = tf.matMul(tf.reshape(up, [b, uh * uw, uc]), first); // (B, HW, 1)
      const lowResLogits = tf.reshape(masks, [b, 1, uh, uw]);
      const iouAll = this.iou_prediction_head.forward(token(0));
      const iou = tf.slice(iouAll, [0, 0], [b, 1]);
      return { lowResLogits, iou, categoryLogits, clipVec, imgVec, hs, keys };
    });
  }
}
