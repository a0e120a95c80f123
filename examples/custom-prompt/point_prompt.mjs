// A positive/negative point prompt for MCP-MedSAM, added through the prompt extension interface
// of @mcp-medsam/model: SAM's point encoding (the random Fourier PE of the point plus a learned
// embedding of its label), with padding points that carry no position.
import { Embedding, tf } from '@mcp-medsam/core';
import { PromptExtension } from '@mcp-medsam/model';

/** Side of the frame the points are given in (the model input). */
const FRAME = 256;

export class PointPrompt extends PromptExtension {
  /**
   * @param {object} options
   * @param {number} options.embedDim the model's prompt width (`config.embedDim`)
   * @param {string} [options.name] state-dict name under `prompt_encoder.extensions`
   * @param {number} [options.maxPositive] training: at most this many positive points per sample
   * @param {number} [options.maxNegative] training: at most this many negative points per sample
   */
  constructor({ embedDim, name = 'points', maxPositive = 2, maxNegative = 2 }) {
    super();
    this.name = name;
    this.maxPositive = maxPositive;
    this.maxNegative = maxNegative;
    /** @type {import('@mcp-medsam/model').ExtensionInputSpec[]} */
    this.inputs = [
      {
        name: 'point_coords',
        dtype: 'float32',
        shape: ['B', 'P', 2],
        description: '(x, y) pixel coordinates in the 256 frame, like the boxes',
      },
      {
        name: 'point_labels',
        dtype: 'float32',
        shape: ['B', 'P'],
        description: '1 positive (on the target), 0 negative (off it), -1 padding (ignored)',
      },
    ];
    this.pos_embed = this.child('pos_embed', new Embedding(1, embedDim));
    this.neg_embed = this.child('neg_embed', new Embedding(1, embedDim));
    this.pad_embed = this.child('pad_embed', new Embedding(1, embedDim));
  }

  /**
   * @param {Record<string, import('@mcp-medsam/core').Tensor>} inputs
   * @param {import('@mcp-medsam/model').PromptEncoder} encoder
   */
  embed(inputs, encoder) {
    const { point_coords: coords, point_labels: labels } = inputs;
    return tf.tidy(() => {
      // Indicators of the three labels as polynomials of l ∈ {-1, 0, 1}: arithmetic only, so
      // the same ops trace into ONNX and no comparison sits on the gradient tape.
      const l = labels;
      const isPos = tf.mul(tf.mul(l, tf.add(l, 1)), 0.5);
      const isNeg = tf.sub(1, tf.mul(l, l));
      const isPad = tf.mul(tf.mul(l, tf.sub(l, 1)), 0.5);
      const col = (t) => tf.expandDims(t, -1);
      // Pixel centres, as the box corners get them.
      const pe = encoder.pe_layer.encodeWithCoords(tf.add(coords, 0.5), FRAME, FRAME);
      return tf.addN([
        tf.mul(pe, col(tf.sub(1, isPad))),
        tf.mul(col(isPos), this.pos_embed.weight),
        tf.mul(col(isNeg), this.neg_embed.weight),
        tf.mul(col(isPad), this.pad_embed.weight),
      ]);
    });
  }

  /** @param {Record<string, import('@mcp-medsam/core').Tensor>} inputs */
  checkValues(inputs) {
    const bad = tf.tidy(() => {
      const l = inputs.point_labels;
      const valid = tf.logicalOr(tf.logicalOr(tf.equal(l, 1), tf.equal(l, 0)), tf.equal(l, -1));
      return tf.logicalNot(tf.all(valid)).dataSync()[0];
    });
    if (bad)
      throw this.inputError('point_labels', 'labels must be 1 (positive), 0 (negative) or -1 (padding)');
  }

  /**
   * Training points from a sample's 256² ground truth: 1..maxPositive points on the target,
   * 0..maxNegative off it inside the box prompt (anywhere off it when the box is all target),
   * then padding up to maxPositive + maxNegative.
   */
  sampleInputs(sample, rng) {
    const p = this.maxPositive + this.maxNegative;
    const coords = new Float32Array(2 * p);
    const labels = new Float32Array(p).fill(-1);
    const fg = [];
    const bgInBox = [];
    const bg = [];
    const [x0, y0, x1, y1] = sample.box;
    for (let i = 0; i < FRAME * FRAME; i++) {
      const x = i % FRAME;
      const y = (i - x) / FRAME;
      if (sample.gt2D[i]) fg.push(i);
      else {
        bg.push(i);
        if (x >= x0 && x <= x1 && y >= y0 && y <= y1) bgInBox.push(i);
      }
    }
    let k = 0;
    const put = (pool, label) => {
      const i = pool[rng.int(0, pool.length - 1)];
      coords[2 * k] = i % FRAME;
      coords[2 * k + 1] = Math.floor(i / FRAME);
      labels[k++] = label;
    };
    const nPos = fg.length ? rng.int(1, this.maxPositive) : 0;
    const nNeg = rng.int(0, this.maxNegative);
    for (let j = 0; j < nPos; j++) put(fg, 1);
    const negPool = bgInBox.length ? bgInBox : bg;
    for (let j = 0; j < nNeg && negPool.length; j++) put(negPool, 0);
    return {
      point_coords: { data: coords, shape: [p, 2] },
      point_labels: { data: labels, shape: [p] },
    };
  }

  /** Valid example points for tracing the export: one of each label per sample where P allows. */
  exampleInputs(batch, sizes, seed) {
    const p = sizes.P;
    const coords = tf.randomUniform([batch, p, 2], 0, FRAME, 'float32', seed);
    const labels = Array.from({ length: batch * p }, (_, i) => [1, 0, -1][(i % p) % 3]);
    return { point_coords: coords, point_labels: tf.tensor2d(labels, [batch, p]) };
  }
}

/** Host arrays of points for `DecodePrompts.extra` / `PromptInputs.extra`: rows of [x, y, label]. */
export function pointArrays(rows) {
  const n = rows.length;
  const p = Math.max(1, ...rows.map((r) => r.length));
  const coords = new Float32Array(n * p * 2);
  const labels = new Float32Array(n * p).fill(-1);
  rows.forEach((pts, i) =>
    pts.forEach(([x, y, label], j) => {
      coords[2 * (i * p + j)] = x;
      coords[2 * (i * p + j) + 1] = y;
      labels[i * p + j] = label;
    }),
  );
  return {
    point_coords: { data: coords, shape: [n, p, 2] },
    point_labels: { data: labels, shape: [n, p] },
  };
}

/** The same points as tensors, for `model.decode(..., { extra })`. */
export function pointTensors(rows) {
  const a = pointArrays(rows);
  return {
    point_coords: tf.tensor(a.point_coords.data, a.point_coords.shape),
    point_labels: tf.tensor(a.point_labels.data, a.point_labels.shape),
  };
}
