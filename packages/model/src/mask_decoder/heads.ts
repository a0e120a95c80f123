import { BatchNorm2d, Conv2d, Linear, Module, ModuleList, nn, tf } from '@mcp-medsam/core';

/** SAM's MLP (`layers.0..n-1`, ReLU between, no sigmoid): hypernetworks and the IoU head. */
export class MLP extends Module {
  readonly layers: ModuleList<Linear>;
  constructor(inDim: number, hidden: number, outDim: number, numLayers: number) {
    super();
    const dims = [inDim, ...Array(numLayers - 1).fill(hidden), outDim];
    this.layers = this.child(
      'layers',
      new ModuleList(Array.from({ length: numLayers }, (_, i) => new Linear(dims[i], dims[i + 1]))),
    );
  }
  forward(x: tf.Tensor): tf.Tensor {
    return tf.tidy(() => {
      let y = x;
      this.layers.items.forEach((l, i) => {
        y = l.forward(y);
        if (i < this.layers.length - 1) y = tf.relu(y);
      });
      return y;
    });
  }
}

/** The modality classifier (`category_prediction_head`): fc1, GELU, fc2. */
export class Classifier extends Module {
  readonly fc1: Linear;
  readonly fc2: Linear;
  constructor(dim: number, hidden: number, numClasses: number) {
    super();
    this.fc1 = this.child('fc1', new Linear(dim, hidden));
    this.fc2 = this.child('fc2', new Linear(hidden, numClasses));
  }
  forward(x: tf.Tensor): tf.Tensor {
    return tf.tidy(() => this.fc2.forward(nn.gelu(this.fc1.forward(x))));
  }
}

/**
 * The decoder's residual `Block` (`convs`, `c_conv`, `m_conv`): conv-BN-LReLU-conv, plus the input.
 * Unlike the crop net's block it has no second BN and no final activation (spec §5.2).
 */
export class DecBlock extends Module {
  readonly conv1: Conv2d;
  readonly batch_norm1: BatchNorm2d;
  readonly conv2: Conv2d;
  constructor(ch: number) {
    super();
    this.conv1 = this.child('conv1', new Conv2d(ch, ch, 3, { padding: 1, bias: false }));
    this.batch_norm1 = this.child('batch_norm1', new BatchNorm2d(ch));
    this.conv2 = this.child('conv2', new Conv2d(ch, ch, 3, { padding: 1, bias: false }));
  }
  forward(x: tf.Tensor): tf.Tensor {
    return tf.tidy(() => {
      const y = nn.leakyRelu(nn.conv2dBatchNorm(x, this.conv1, this.batch_norm1), 0.1);
      return tf.add(this.conv2.forward(y), x);
    });
  }
}
