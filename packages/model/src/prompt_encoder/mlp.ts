import { Linear, Module, nn, tf } from '@mcp-medsam/core';

/** timm-style Mlp: fc1, GELU, fc2 (dropout 0). Used by clip_img_mlp, clip_text_mlp and mlps. */
export class Mlp extends Module {
  readonly fc1: Linear;
  readonly fc2: Linear;
  constructor(inF: number, hidden: number, outF: number) {
    super();
    this.fc1 = this.child('fc1', new Linear(inF, hidden));
    this.fc2 = this.child('fc2', new Linear(hidden, outF));
  }
  forward(x: tf.Tensor): tf.Tensor {
    return tf.tidy(() => this.fc2.forward(nn.gelu(this.fc1.forward(x))));
  }
}
