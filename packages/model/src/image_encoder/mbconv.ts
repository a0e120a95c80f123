import { Module, nn, tf } from '@mcp-medsam/core';
import { Conv2dBN } from './conv2d_bn.js';

/** TinyViT MBConv (stage 0): 1x1 expand, depthwise 3x3, 1x1 project, GELU after the residual add. */
export class MBConv extends Module {
  readonly conv1: Conv2dBN;
  readonly conv2: Conv2dBN;
  readonly conv3: Conv2dBN;
  constructor(dim: number, expandRatio: number) {
    super();
    const hidden = dim * expandRatio;
    this.conv1 = this.child('conv1', new Conv2dBN(dim, hidden, 1));
    this.conv2 = this.child('conv2', new Conv2dBN(hidden, hidden, 3, 1, 1, hidden));
    this.conv3 = this.child('conv3', new Conv2dBN(hidden, dim, 1));
  }
  /** x: (B, H, W, C) map. */
  forward(x: tf.Tensor): tf.Tensor {
    // Checkpointed as a block and, inside, per unit (in training): the outer tape keeps only the
    // block input, the block's recomputation keeps the unit inputs, and only one unit's
    // activations and gradients are alive at a time. At 256x256 with 256 channels anything
    // coarser does not fit a batch of 2 in the 4 GB wasm heap.
    return nn.checkpoint(this, x, (t) => this.body(t));
  }

  private body(x: tf.Tensor): tf.Tensor {
    return tf.tidy(() => {
      let y = this.conv1.forwardGelu(x);
      y = this.conv2.forwardGelu(y);
      y = this.conv3.forwardCheckpointed(y);
      return nn.gelu(tf.add(y, x));
    });
  }
}
