import { LayerNorm, Linear, Module, nn, tf } from '@mcp-medsam/core';
import { Attention } from './attention.js';
import { Conv2dBN } from './conv2d_bn.js';

/** TinyViT's Mlp: pre-norm, fc1, GELU, fc2. */
export class TinyViTMlp extends Module {
  readonly norm: LayerNorm;
  readonly fc1: Linear;
  readonly fc2: Linear;
  constructor(dim: number, hidden: number) {
    super();
    this.norm = this.child('norm', new LayerNorm(dim));
    this.fc1 = this.child('fc1', new Linear(dim, hidden));
    this.fc2 = this.child('fc2', new Linear(hidden, dim));
  }
  forward(x: tf.Tensor): tf.Tensor {
    return tf.tidy(() => this.fc2.forward(nn.gelu(this.fc1.forward(this.norm.forward(x)))));
  }
}

/**
 * TinyViT block on tokens (B, H·W, C): windowed attention over zero-padded windows (the padding
 * is not masked: spec §2.3), a depthwise local conv that is NOT residual, then a residual MLP.
 */
export class TinyViTBlock extends Module {
  readonly attn: Attention;
  readonly mlp: TinyViTMlp;
  readonly local_conv: Conv2dBN;
  constructor(
    readonly dim: number,
    readonly resolution: number,
    readonly numHeads: number,
    readonly windowSize: number,
    mlpRatio: number,
    localConvSize: number,
  ) {
    super();
    const headDim = dim / numHeads;
    this.attn = this.child('attn', new Attention(dim, headDim, numHeads, windowSize));
    this.mlp = this.child('mlp', new TinyViTMlp(dim, dim * mlpRatio));
    const pad = Math.floor(localConvSize / 2);
    this.local_conv = this.child('local_conv', new Conv2dBN(dim, dim, localConvSize, 1, pad, dim));
  }

  forward(x: tf.Tensor): tf.Tensor {
    return tf.tidy(() => {
      const [b, , c] = x.shape as [number, number, number];
      const r = this.resolution;
      const ws = this.windowSize;
      const padB = (ws - (r % ws)) % ws;
      const padR = (ws - (r % ws)) % ws;
      const hp = r + padB;
      const wp = r + padR;
      const nH = hp / ws;
      const nW = wp / ws;
      let t = tf.reshape(x, [b, r, r, c]);
      if (padB || padR)
        t = tf.pad(t, [
          [0, 0],
          [0, padB],
          [0, padR],
          [0, 0],
        ]);
      const windows = tf.reshape(tf.transpose(tf.reshape(t, [b, nH, ws, nW, ws, c]), [0, 1, 3, 2, 4, 5]), [
        b * nH * nW,
        ws * ws,
        c,
      ]);
      const attended = this.attn.forward(windows);
      let merged = tf.reshape(
        tf.transpose(tf.reshape(attended, [b, nH, nW, ws, ws, c]), [0, 1, 3, 2, 4, 5]),
        [b, hp, wp, c],
      );
      if (padB || padR) merged = tf.slice(merged, [0, 0, 0, 0], [b, r, r, c]);
      let y = tf.add(x, tf.reshape(merged, [b, r * r, c]));
      y = tf.reshape(this.local_conv.forward(tf.reshape(y, [b, r, r, c])), [b, r * r, c]);
      return tf.add(y, this.mlp.forward(y));
    });
  }
}
