import { Module, nn, tf } from '@mcp-medsam/core';
import { Conv2dBN } from './conv2d_bn.js';

/**
 * TinyViT PatchMerging: 1x1, depthwise 3x3 with the given stride, 1x1. Takes a (B,H,W,C) map or
 * (B,H·W,C) tokens at `resolution` and returns tokens (B,H'·W',C_out).
 */
export class PatchMerging extends Module {
  readonly conv1: Conv2dBN;
  readonly conv2: Conv2dBN;
  readonly conv3: Conv2dBN;
  constructor(
    readonly resolution: number,
    inDim: number,
    readonly outDim: number,
    readonly stride: number,
  ) {
    super();
    this.conv1 = this.child('conv1', new Conv2dBN(inDim, outDim, 1));
    this.conv2 = this.child('conv2', new Conv2dBN(outDim, outDim, 3, stride, 1, outDim));
    this.conv3 = this.child('conv3', new Conv2dBN(outDim, outDim, 1));
  }
  forward(x: tf.Tensor): tf.Tensor {
    // Block-level checkpoint around the unit-level ones, as in MBConv (memory of training).
    return nn.checkpoint(this, x, (t) => this.body(t));
  }

  private body(x: tf.Tensor): tf.Tensor {
    return tf.tidy(() => {
      const b = x.shape[0];
      const r = this.resolution;
      const map = x.rank === 3 ? tf.reshape(x, [b, r, r, x.shape[2] as number]) : x;
      let y = this.conv1.forwardGelu(map);
      y = this.conv2.forwardGelu(y);
      y = this.conv3.forwardCheckpointed(y);
      const [, h, w, c] = y.shape;
      return tf.reshape(y, [b, h * w, c]);
    });
  }
}
