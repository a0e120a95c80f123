import { BatchNorm2d, Conv2d, Module, nn, tf } from '@mcp-medsam/core';

/** TinyViT's Conv2d_BN: a bias-free convolution `c` followed by BatchNorm `bn`. NHWC in and out. */
export class Conv2dBN extends Module {
  readonly c: Conv2d;
  readonly bn: BatchNorm2d;
  constructor(inC: number, outC: number, k = 1, stride = 1, pad = 0, groups = 1) {
    super();
    this.c = this.child('c', new Conv2d(inC, outC, k, { stride, padding: pad, groups, bias: false }));
    this.bn = this.child('bn', new BatchNorm2d(outC));
  }
  forward(x: tf.Tensor): tf.Tensor {
    return nn.conv2dBatchNorm(x, this.c, this.bn);
  }

  /**
   * conv → BN → GELU as one checkpointed unit when training with gradient checkpointing: the
   * tape keeps the unit's input only, and its backward pass holds one unit's activations.
   */
  forwardGelu(x: tf.Tensor): tf.Tensor {
    return nn.checkpoint(this, x, (t) => nn.gelu(this.forward(t)));
  }

  /** conv → BN as one checkpointed unit. */
  forwardCheckpointed(x: tf.Tensor): tf.Tensor {
    return nn.checkpoint(this, x, (t) => this.forward(t));
  }
}
