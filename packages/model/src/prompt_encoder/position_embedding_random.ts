import { Module, nn, tf } from '@mcp-medsam/core';

/**
 * SAM's random Fourier positional encoding (`pe_layer`): a persistent (2, F) Gaussian matrix G;
 * PE(u, v) = [sin(c), cos(c)] with c = 2π·((2u−1)·G[0] + (2v−1)·G[1]) for u, v in [0, 1].
 */
export class PositionEmbeddingRandom extends Module {
  constructor(readonly numPosFeats: number) {
    super();
    this.buffer('positional_encoding_gaussian_matrix', nn.normalInit([2, numPosFeats]));
  }

  /** coords: (..., 2) as (u, v) in [0,1] -> (..., 2F). */
  encode(coords: tf.Tensor): tf.Tensor {
    return tf.tidy(() => {
      const lead = coords.shape.slice(0, -1);
      const c2 = tf.reshape(tf.sub(tf.mul(coords, 2), 1), [-1, 2]);
      const proj = tf.mul(
        tf.matMul(c2 as tf.Tensor2D, this.getBuffer('positional_encoding_gaussian_matrix') as tf.Tensor2D),
        2 * Math.PI,
      );
      return tf.reshape(tf.concat([tf.sin(proj), tf.cos(proj)], -1), [...lead, 2 * this.numPosFeats]);
    });
  }

  /** Dense PE of an h×w grid at cell centres: (1, h, w, 2F) NHWC. */
  grid(h: number, w: number): tf.Tensor {
    return tf.tidy(() => {
      const uv = new Float32Array(h * w * 2);
      for (let i = 0; i < h; i++)
        for (let j = 0; j < w; j++) {
          uv[(i * w + j) * 2] = (j + 0.5) / w;
          uv[(i * w + j) * 2 + 1] = (i + 0.5) / h;
        }
      return this.encode(tf.tensor4d(uv, [1, h, w, 2]));
    });
  }

  /** Points in pixels of an image of size (H, W): (..., 2) as (x, y) -> (..., 2F). */
  encodeWithCoords(points: tf.Tensor, imageH: number, imageW: number): tf.Tensor {
    return tf.tidy(() => this.encode(tf.div(points, tf.tensor1d([imageW, imageH]))));
  }
}
