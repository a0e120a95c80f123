import { tf } from '../tf.js';
import { Module } from './module.js';
import { normalInit, uniformInit } from './init.js';
import { layerNorm, linear } from './functional.js';
import { batchNormTrain } from './norm.js';
import { isRecomputing } from './checkpoint.js';

/** nn.Linear: weight (out, in), bias (out); works on (..., in) inputs. */
export class Linear extends Module {
  readonly weight: tf.Variable;
  readonly bias?: tf.Variable;
  constructor(
    readonly inFeatures: number,
    readonly outFeatures: number,
    options: { bias?: boolean } = {},
  ) {
    super();
    const bound = 1 / Math.sqrt(inFeatures);
    this.weight = this.param('weight', uniformInit([outFeatures, inFeatures], bound));
    if (options.bias ?? true) this.bias = this.param('bias', uniformInit([outFeatures], bound));
  }
  forward(x: tf.Tensor): tf.Tensor {
    return linear(x, this.weight, this.bias, !this.training);
  }
}

export interface Conv2dOptions {
  stride?: number;
  padding?: number;
  groups?: number;
  bias?: boolean;
}

/**
 * nn.Conv2d with the PyTorch weight layout (out, in/groups, kh, kw), applied to NHWC maps.
 * Supports groups = 1 and depthwise (groups = in = out), the two kinds the model uses.
 */
export class Conv2d extends Module {
  readonly weight: tf.Variable;
  readonly bias?: tf.Variable;
  readonly stride: number;
  readonly padding: number;
  readonly groups: number;
  constructor(
    readonly inChannels: number,
    readonly outChannels: number,
    readonly kernelSize: number,
    options: Conv2dOptions = {},
  ) {
    super();
    this.stride = options.stride ?? 1;
    this.padding = options.padding ?? 0;
    this.groups = options.groups ?? 1;
    if (this.groups !== 1 && !(this.groups === inChannels && this.groups === outChannels)) {
      throw new Error(
        `Conv2d: only groups=1 or depthwise (groups=in=out) are supported, got groups=${this.groups}`,
      );
    }
    const fanIn = (inChannels / this.groups) * kernelSize * kernelSize;
    const bound = 1 / Math.sqrt(fanIn);
    this.weight = this.param(
      'weight',
      uniformInit([outChannels, inChannels / this.groups, kernelSize, kernelSize], bound),
    );
    if (options.bias ?? true) this.bias = this.param('bias', uniformInit([outChannels], bound));
  }

  /** x: (N, H, W, C_in) -> (N, H', W', C_out). */
  forward(x: tf.Tensor): tf.Tensor {
    return conv2dNHWC(x, this.weight, this.bias, this.stride, this.padding, this.groups, !this.training);
  }
}

/**
 * The convolution behind Conv2d, reusable with weights that do not live in a module (folded BN).
 * With `fused` (inference only: tfjs's fused ops have slow gradients on wasm) the bias add runs
 * inside the convolution kernel instead of as a separate pass.
 */
export function conv2dNHWC(
  x: tf.Tensor,
  weight: tf.Tensor,
  bias: tf.Tensor | undefined,
  stride: number,
  padding: number,
  groups: number,
  fused = false,
): tf.Tensor {
  return tf.tidy(() => {
    const [outC, , kh, kw] = weight.shape;
    const fb = fused ? bias : undefined;
    let y: tf.Tensor;
    if (groups > 1) {
      // (C, 1, kh, kw) -> (kh, kw, C, 1)
      const filter = tf.transpose(weight, [2, 3, 0, 1]) as tf.Tensor4D;
      y = fb
        ? tf.fused.depthwiseConv2d({ x: x as tf.Tensor4D, filter, strides: stride, pad: padding, bias: fb })
        : tf.depthwiseConv2d(x as tf.Tensor4D, filter, stride, padding);
    } else if (kh === 1 && kw === 1 && stride === 1 && padding === 0) {
      // A 1x1 convolution is a matMul over pixels, faster than the conv kernel on wasm.
      const [n, h, w, c] = x.shape;
      const a = tf.reshape(x, [n * h * w, c]) as tf.Tensor2D;
      const b = tf.transpose(tf.reshape(weight, [outC, c])) as tf.Tensor2D;
      y = tf.reshape(fb ? tf.fused.matMul({ a, b, bias: fb }) : tf.matMul(a, b), [n, h, w, outC]);
    } else {
      const filter = tf.transpose(weight, [2, 3, 1, 0]) as tf.Tensor4D;
      y = fb
        ? tf.fused.conv2d({ x: x as tf.Tensor4D, filter, strides: stride, pad: padding, bias: fb })
        : tf.conv2d(x as tf.Tensor4D, filter, stride, padding);
    }
    return bias && !fb ? tf.add(y, bias) : y;
  });
}

/**
 * Conv2d followed by BatchNorm2d. In eval mode the normalisation is folded into the
 * convolution's weight and bias (one pass over the map instead of two); in training mode they
 * run as two layers so the batch statistics are used and the running ones updated.
 */
export function conv2dBatchNorm(x: tf.Tensor, conv: Conv2d, bn: BatchNorm2d): tf.Tensor {
  if (bn.training || conv.training) return bn.forward(conv.forward(x));
  return tf.tidy(() => {
    const { scale, shift } = bn.affine();
    const weight = tf.mul(conv.weight, tf.reshape(scale, [-1, 1, 1, 1]));
    let bias = shift;
    if (conv.bias) bias = tf.add(bias, tf.mul(conv.bias, scale));
    return conv2dNHWC(x, weight, bias, conv.stride, conv.padding, conv.groups, true);
  });
}

/**
 * nn.ConvTranspose2d with kernel = stride (2 in the model): weight (in, out, k, k). Without overlap
 * it is one matMul followed by a pixel shuffle, which needs no backprop kernels.
 */
export class ConvTranspose2d extends Module {
  readonly weight: tf.Variable;
  readonly bias?: tf.Variable;
  constructor(
    readonly inChannels: number,
    readonly outChannels: number,
    readonly kernelSize: number,
    options: { stride?: number; bias?: boolean } = {},
  ) {
    super();
    const stride = options.stride ?? kernelSize;
    if (stride !== kernelSize) throw new Error('ConvTranspose2d: only stride = kernel_size is supported');
    const bound = 1 / Math.sqrt(outChannels * kernelSize * kernelSize);
    this.weight = this.param('weight', uniformInit([inChannels, outChannels, kernelSize, kernelSize], bound));
    if (options.bias ?? true) this.bias = this.param('bias', uniformInit([outChannels], bound));
  }
  /** x: (N, H, W, C_in) -> (N, kH, kW, C_out). */
  forward(x: tf.Tensor): tf.Tensor {
    return tf.tidy(() => {
      const [n, h, w, c] = x.shape;
      const k = this.kernelSize;
      const o = this.outChannels;
      // y[n, k·i+a, k·j+b, o] = Σ_c x[n,i,j,c]·W[c,o,a,b]
      const wm = tf.reshape(tf.transpose(this.weight, [0, 2, 3, 1]), [c, k * k * o]);
      const m = tf.matMul(tf.reshape(x, [n * h * w, c]) as tf.Tensor2D, wm as tf.Tensor2D);
      const shuffled = tf.transpose(tf.reshape(m, [n, h, w, k, k, o]), [0, 1, 3, 2, 4, 5]);
      const y = tf.reshape(shuffled, [n, h * k, w * k, o]);
      return this.bias ? tf.add(y, this.bias) : y;
    });
  }
}

/** nn.LayerNorm over the last axis (eps 1e-5 by default). */
export class LayerNorm extends Module {
  readonly weight: tf.Variable;
  readonly bias: tf.Variable;
  constructor(
    readonly dim: number,
    readonly eps = 1e-5,
  ) {
    super();
    this.weight = this.param('weight', tf.ones([dim]));
    this.bias = this.param('bias', tf.zeros([dim]));
  }
  forward(x: tf.Tensor): tf.Tensor {
    return layerNorm(x, this.weight, this.bias, this.eps, this.training);
  }
}

/**
 * SAM's LayerNorm2d: normalises over channels at each pixel (eps 1e-6). On NHWC maps the channel
 * is the last axis, so it is the same computation as LayerNorm.
 */
export class LayerNorm2d extends LayerNorm {
  constructor(dim: number, eps = 1e-6) {
    super(dim, eps);
  }
}

/**
 * nn.BatchNorm2d on NHWC maps. Eval mode uses the running statistics; training mode uses the
 * batch statistics (biased variance) and updates the running ones as PyTorch does: momentum 0.1,
 * unbiased running variance, num_batches_tracked + 1.
 */
export class BatchNorm2d extends Module {
  readonly weight: tf.Variable;
  readonly bias: tf.Variable;
  constructor(
    readonly numFeatures: number,
    readonly eps = 1e-5,
    /** Weight of a new batch in the running statistics (settable: calibration averages batches). */
    public momentum = 0.1,
  ) {
    super();
    this.weight = this.param('weight', tf.ones([numFeatures]));
    this.bias = this.param('bias', tf.zeros([numFeatures]));
    this.buffer('running_mean', tf.zeros([numFeatures]));
    this.buffer('running_var', tf.ones([numFeatures]));
    this.buffer('num_batches_tracked', tf.scalar(0, 'int32'));
  }

  /**
   * Normalise with the running statistics in training mode too, and leave them as they are. For
   * training on small batches of mixed images (a few samples of different modalities), whose
   * statistics are far from the population's: the model then trains as it will be evaluated.
   */
  frozen = false;

  forward(x: tf.Tensor): tf.Tensor {
    if (this.training && this.frozen) {
      // The same affine map as eval mode, written with ops whose gradients every backend has.
      return tf.tidy(() => {
        const { scale, shift } = this.affine();
        return tf.add(tf.mul(x, scale), shift);
      });
    }
    if (!this.training) {
      return tf.batchNorm(
        x,
        this.getBuffer('running_mean') as tf.Tensor1D,
        this.getBuffer('running_var') as tf.Tensor1D,
        this.bias,
        this.weight,
        this.eps,
      );
    }
    const count = x.size / this.numFeatures;
    const { y, mean, variance } = batchNormTrain(x, this.weight, this.bias, this.eps);
    // A checkpointed block re-running its forward for the backward pass must not count twice.
    if (!isRecomputing()) this.updateRunningStats(mean, variance, count);
    mean.dispose();
    variance.dispose();
    return y;
  }

  /** Eval-mode normalisation as a per-channel affine map: y = x · scale + shift. */
  affine(): { scale: tf.Tensor; shift: tf.Tensor } {
    const scale = tf.mul(this.weight, tf.rsqrt(tf.add(this.getBuffer('running_var'), this.eps)));
    return { scale, shift: tf.sub(this.bias, tf.mul(this.getBuffer('running_mean'), scale)) };
  }

  private updateRunningStats(mean: tf.Tensor, variance: tf.Tensor, count: number): void {
    const m = this.momentum;
    const unbiased = count > 1 ? count / (count - 1) : 1;
    const [newMean, newVar, newCount] = tf.tidy(() => [
      tf.add(tf.mul(this.getBuffer('running_mean'), 1 - m), tf.mul(mean, m)),
      tf.add(tf.mul(this.getBuffer('running_var'), 1 - m), tf.mul(variance, m * unbiased)),
      tf.add(this.getBuffer('num_batches_tracked'), tf.scalar(1, 'int32')),
    ]);
    this.setBuffer('running_mean', newMean);
    this.setBuffer('running_var', newVar);
    this.setBuffer('num_batches_tracked', newCount);
  }
}

/** Sets {@link BatchNorm2d.frozen} on every BatchNorm2d of `module`; returns how many there are. */
export function freezeBatchNorm(module: Module, frozen = true): number {
  let n = 0;
  for (const [, m] of module.namedModules())
    if (m instanceof BatchNorm2d) {
      m.frozen = frozen;
      n++;
    }
  return n;
}

/** nn.Embedding: weight (num, dim); forward gathers rows. */
export class Embedding extends Module {
  readonly weight: tf.Variable;
  constructor(
    readonly num: number,
    readonly dim: number,
  ) {
    super();
    this.weight = this.param('weight', normalInit([num, dim]));
  }
  forward(indices: tf.Tensor): tf.Tensor {
    return tf.gather(this.weight, indices.dtype === 'int32' ? indices : tf.cast(indices, 'int32'));
  }
}
