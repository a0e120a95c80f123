import { BatchNorm2d, Conv2d, Module, nn, tf } from '@mcp-medsam/core';

/** The crop net's residual block (`Block` in the prompt encoder): conv-BN-LReLU-conv-BN, add, LReLU. */
export class ResBlockPE extends Module {
  readonly conv1: Conv2d;
  readonly batch_norm1: BatchNorm2d;
  readonly conv2: Conv2d;
  readonly batch_norm2: BatchNorm2d;
  constructor(ch: number) {
    super();
    this.conv1 = this.child('conv1', new Conv2d(ch, ch, 3, { padding: 1, bias: false }));
    this.batch_norm1 = this.child('batch_norm1', new BatchNorm2d(ch));
    this.conv2 = this.child('conv2', new Conv2d(ch, ch, 3, { padding: 1, bias: false }));
    this.batch_norm2 = this.child('batch_norm2', new BatchNorm2d(ch));
  }
  forward(x: tf.Tensor): tf.Tensor {
    return tf.tidy(() => {
      let y = nn.leakyRelu(nn.conv2dBatchNorm(x, this.conv1, this.batch_norm1), 0.1);
      y = nn.conv2dBatchNorm(y, this.conv2, this.batch_norm2);
      return nn.leakyRelu(tf.add(y, x), 0.1);
    });
  }
}

/**
 * `Crop_Net_New` (`crop_nets`): the dense content prompt from the 64x64 box crop (values in [0,1]).
 * (B, 3, 64, 64) NCHW in, (B, 64, 64, C) NHWC out.
 */
export class CropNet extends Module {
  readonly conv: Conv2d;
  readonly conv1: ResBlockPE;
  readonly conv2: ResBlockPE;
  readonly conv3: ResBlockPE;
  readonly conv4: Conv2d;
  constructor(ch: number) {
    super();
    this.conv = this.child('conv', new Conv2d(3, ch, 3, { padding: 1 }));
    this.conv1 = this.child('conv1', new ResBlockPE(ch));
    this.conv2 = this.child('conv2', new ResBlockPE(ch));
    this.conv3 = this.child('conv3', new ResBlockPE(ch));
    this.conv4 = this.child('conv4', new Conv2d(ch, ch, 5, { padding: 2 }));
  }
  forward(crop: tf.Tensor): tf.Tensor {
    return tf.tidy(() => {
      let x = this.conv.forward(tf.transpose(crop, [0, 2, 3, 1]));
      for (const block of [this.conv1, this.conv2, this.conv3])
        x = nn.checkpoint(block, x, (t) => block.forward(t));
      return this.conv4.forward(x);
    });
  }
}
