import { LayerNorm, Linear, Module, ModuleList, nn, tf } from '@mcp-medsam/core';
import { mergeHeads, splitHeads } from '../image_encoder/attention.js';

/** SAM's attention with an optional internal downsampling; heads split channels contiguously. */
export class Attention extends Module {
  readonly q_proj: Linear;
  readonly k_proj: Linear;
  readonly v_proj: Linear;
  readonly out_proj: Linear;
  readonly internalDim: number;
  constructor(
    readonly embeddingDim: number,
    readonly numHeads: number,
    downsampleRate = 1,
  ) {
    super();
    this.internalDim = embeddingDim / downsampleRate;
    if (this.internalDim % numHeads !== 0)
      throw new Error('num_heads must divide embedding_dim / downsample_rate');
    this.q_proj = this.child('q_proj', new Linear(embeddingDim, this.internalDim));
    this.k_proj = this.child('k_proj', new Linear(embeddingDim, this.internalDim));
    this.v_proj = this.child('v_proj', new Linear(embeddingDim, this.internalDim));
    this.out_proj = this.child('out_proj', new Linear(this.internalDim, embeddingDim));
  }

  private separateHeads(x: tf.Tensor): tf.Tensor {
    const [b, n] = x.shape as [number, number, number];
    return splitHeads(x, b, n, this.numHeads, this.internalDim / this.numHeads);
  }

  forward(q: tf.Tensor, k: tf.Tensor, v: tf.Tensor): tf.Tensor {
    return tf.tidy(() => {
      const qh = this.separateHeads(this.q_proj.forward(q));
      const kh = this.separateHeads(this.k_proj.forward(k));
      const vh = this.separateHeads(this.v_proj.forward(v));
      const d = this.internalDim / this.numHeads;
      const attn = nn.softmax(tf.div(tf.matMul(qh, kh, false, true), Math.sqrt(d)));
      const out = tf.matMul(attn, vh);
      const [b, , n] = out.shape as [number, number, number, number];
      return this.out_proj.forward(mergeHeads(out, b, n, this.numHeads, d));
    });
  }
}

/** SAM's MLPBlock: lin1, ReLU, lin2. */
export class MLPBlock extends Module {
  readonly lin1: Linear;
  readonly lin2: Linear;
  constructor(dim: number, mlpDim: number) {
    super();
    this.lin1 = this.child('lin1', new Linear(dim, mlpDim));
    this.lin2 = this.child('lin2', new Linear(mlpDim, dim));
  }
  forward(x: tf.Tensor): tf.Tensor {
    return tf.tidy(() => this.lin2.forward(tf.relu(this.lin1.forward(x))));
  }
}

/** One layer of the two-way transformer: token self-attention, token→image, MLP, image→token. */
export class TwoWayAttentionBlock extends Module {
  readonly self_attn: Attention;
  readonly norm1: LayerNorm;
  readonly cross_attn_token_to_image: Attention;
  readonly norm2: LayerNorm;
  readonly mlp: MLPBlock;
  readonly norm3: LayerNorm;
  readonly norm4: LayerNorm;
  readonly cross_attn_image_to_token: Attention;
  constructor(
    dim: number,
    numHeads: number,
    mlpDim: number,
    downsampleRate: number,
    readonly skipFirstLayerPe: boolean,
  ) {
    super();
    this.self_attn = this.child('self_attn', new Attention(dim, numHeads));
    this.norm1 = this.child('norm1', new LayerNorm(dim));
    this.cross_attn_token_to_image = this.child(
      'cross_attn_token_to_image',
      new Attention(dim, numHeads, downsampleRate),
    );
    this.norm2 = this.child('norm2', new LayerNorm(dim));
    this.mlp = this.child('mlp', new MLPBlock(dim, mlpDim));
    this.norm3 = this.child('norm3', new LayerNorm(dim));
    this.norm4 = this.child('norm4', new LayerNorm(dim));
    this.cross_attn_image_to_token = this.child(
      'cross_attn_image_to_token',
      new Attention(dim, numHeads, downsampleRate),
    );
  }

  forward(queries: tf.Tensor, keys: tf.Tensor, queryPe: tf.Tensor, keyPe: tf.Tensor): [tf.Tensor, tf.Tensor] {
    return tf.tidy(() => {
      let q: tf.Tensor;
      if (this.skipFirstLayerPe) q = this.self_attn.forward(queries, queries, queries);
      else {
        const qp = tf.add(queries, queryPe);
        q = tf.add(queries, this.self_attn.forward(qp, qp, queries));
      }
      q = this.norm1.forward(q);
      const kp = tf.add(keys, keyPe);
      q = this.norm2.forward(tf.add(q, this.cross_attn_token_to_image.forward(tf.add(q, queryPe), kp, keys)));
      q = this.norm3.forward(tf.add(q, this.mlp.forward(q)));
      const k = this.norm4.forward(
        tf.add(keys, this.cross_attn_image_to_token.forward(kp, tf.add(q, queryPe), q)),
      );
      return [q, k];
    });
  }
}

/** SAM's TwoWayTransformer (`mask_decoder.transformer`, spec §4). */
export class TwoWayTransformer extends Module {
  readonly layers: ModuleList<TwoWayAttentionBlock>;
  readonly final_attn_token_to_image: Attention;
  readonly norm_final_attn: LayerNorm;
  constructor(depth: number, dim: number, numHeads: number, mlpDim: number, downsampleRate = 2) {
    super();
    this.layers = this.child(
      'layers',
      new ModuleList(
        Array.from(
          { length: depth },
          (_, i) => new TwoWayAttentionBlock(dim, numHeads, mlpDim, downsampleRate, i === 0),
        ),
      ),
    );
    this.final_attn_token_to_image = this.child(
      'final_attn_token_to_image',
      new Attention(dim, numHeads, downsampleRate),
    );
    this.norm_final_attn = this.child('norm_final_attn', new LayerNorm(dim));
  }

  /**
   * src, pos: (B, 64, 64, C) NHWC; tokens (B, T, C). Returns hs (B, T, C) and keys (B, 4096, C).
   */
  forward(src: tf.Tensor, pos: tf.Tensor, tokens: tf.Tensor): [tf.Tensor, tf.Tensor] {
    return tf.tidy(() => {
      const [b, h, w, c] = src.shape;
      let keys = tf.reshape(src, [b, h * w, c]);
      const keyPe = tf.reshape(pos, [pos.shape[0], h * w, c]);
      let q = tokens;
      for (const layer of this.layers.items) [q, keys] = layer.forward(q, keys, tokens, keyPe);
      const attn = this.final_attn_token_to_image.forward(tf.add(q, tokens), tf.add(keys, keyPe), keys);
      q = this.norm_final_attn.forward(tf.add(q, attn));
      return [q, keys];
    });
  }
}
