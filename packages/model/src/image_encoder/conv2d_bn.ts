import { BatchNorm2d, Conv2d, Module, tf } from '@mcp-medsam/core';

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
    return tf.tidy(() => this.bn.forward(this.c.forward(x)));
  }
}
