/**
 * The training losses of MCP-MedSAM (spec §9.1), as differentiable tf ops.
 *
 * Mask tensors (`logits`, `gt`) have one channel and may be laid out NCHW `(B,1,H,W)` (what the
 * model returns as `low_res_logits`) or NHWC `(B,H,W,1)`: with a single channel both are the same
 * array in memory, and every mask loss reduces over all of a sample's H·W elements, so the result
 * does not depend on which of the two is meant. Long sums are taken blockwise (see `optim/sum.ts`)
 * so that they stay close to PyTorch's float32 values on backends with a naive running sum.
 */
import { InputError, tf } from '@mcp-medsam/core';
import { noGrad } from './detach.js';
import { sumRows } from './optim/sum.js';

/** MONAI DiceLoss smoothing (`smooth_nr = smooth_dr = 1e-5`). */
const DICE_SMOOTH = 1e-5;

const shapeStr = (s: readonly number[]) => `[${s.join(', ')}]`;

function checkTensor(where: string, name: string, t: unknown): asserts t is tf.Tensor {
  if (!(t instanceof tf.Tensor)) throw new InputError(`${where}: ${name} must be a tensor`);
  if (t.isDisposed) throw new InputError(`${where}: ${name} is disposed`);
}

function checkFloat(where: string, name: string, t: tf.Tensor): void {
  if (t.dtype !== 'float32') throw new InputError(`${where}: ${name} must be float32, got ${t.dtype}`);
}

/** Validates a (logits, gt) mask pair and returns both as (B, H·W) float32 matrices. */
function maskRows(where: string, logits: unknown, gt: unknown): [tf.Tensor2D, tf.Tensor2D] {
  checkTensor(where, 'logits', logits);
  checkTensor(where, 'gt', gt);
  checkFloat(where, 'logits', logits);
  const s = logits.shape;
  if (s.length !== 4 || (s[1] !== 1 && s[3] !== 1) || s[0] < 1)
    throw new InputError(
      `${where}: logits must have shape (B,1,H,W) or (B,H,W,1) with B >= 1, got ${shapeStr(s)}`,
    );
  if (gt.shape.length !== 4 || gt.shape.some((d, i) => d !== s[i]))
    throw new InputError(
      `${where}: gt shape ${shapeStr(gt.shape)} differs from the logits shape ${shapeStr(s)}`,
    );
  if (gt.dtype !== 'float32' && gt.dtype !== 'int32' && gt.dtype !== 'bool')
    throw new InputError(`${where}: gt must be float32, int32 or bool (0/1 values), got ${gt.dtype}`);
  const n = s[1] * s[2] * s[3];
  const z = tf.reshape(logits, [s[0], n]) as tf.Tensor2D;
  const g = tf.reshape(gt.dtype === 'float32' ? gt : tf.cast(gt, 'float32'), [s[0], n]) as tf.Tensor2D;
  return [z, g];
}

/**
 * MONAI `DiceLoss(sigmoid=True, squared_pred=True, reduction='mean')` for one channel: per sample
 * `1 − (2·Σp·g + 1e-5) / (Σg² + Σp² + 1e-5)` with `p = σ(logits)`, then the mean over the batch.
 * `logits`, `gt`: (B,1,H,W) or (B,H,W,1), `gt` holding 0/1 (float32, int32 or bool).
 */
export function diceLoss(logits: tf.Tensor, gt: tf.Tensor): tf.Scalar {
  return tf.tidy(() => {
    const [z, g] = maskRows('diceLoss', logits, gt);
    const p = tf.sigmoid(z);
    const intersection = sumRows(tf.mul(g, p) as tf.Tensor2D);
    const denominator = tf.add(sumRows(tf.square(g)), sumRows(tf.square(p)));
    const f = tf.sub(
      1,
      tf.div(tf.add(tf.mul(intersection, 2), DICE_SMOOTH), tf.add(denominator, DICE_SMOOTH)),
    );
    return tf.mean(f) as tf.Scalar;
  });
}

/**
 * `BCEWithLogitsLoss` (mean over all elements): `max(z,0) − z·g + log(1 + e^{−|z|})`.
 * Shapes as for `diceLoss`.
 */
export function bceWithLogits(logits: tf.Tensor, gt: tf.Tensor): tf.Scalar {
  return tf.tidy(() => {
    const [z, g] = maskRows('bceWithLogits', logits, gt);
    const elementwise = tf.add(tf.sub(tf.relu(z), tf.mul(z, g)), tf.log1p(tf.exp(tf.neg(tf.abs(z)))));
    const total = tf.sum(sumRows(elementwise as tf.Tensor2D));
    return tf.div(total, z.size) as tf.Scalar;
  });
}

/**
 * The IoU regression target, computed without gradient: per sample `|P ∧ g| / |P ∨ g|` with
 * `P = σ(logits) > 0.5` evaluated in float32 (as the original does, so that logits within float32
 * rounding of 0 count as background). Returns (B,1) float32. A sample whose union is empty (no
 * prediction and an empty gt) gives NaN, as in PyTorch; the original never has an empty gt.
 * Safe to call under `tf.grad`/`tf.variableGrads`: nothing of it is taped.
 */
export function iouTarget(logits: tf.Tensor, gt: tf.Tensor): tf.Tensor2D {
  return noGrad(() => {
    const [z, g] = maskRows('iouTarget', logits, gt);
    const pred = tf.cast(tf.greater(tf.sigmoid(z), 0.5), 'float32');
    const truth = tf.cast(tf.greater(g, 0), 'float32');
    // Counts below 2^24 are exact in float32, so the division is the only rounding.
    const intersection = tf.sum(tf.mul(pred, truth), 1);
    const union = tf.sum(tf.maximum(pred, truth), 1);
    return tf.reshape(tf.div(intersection, union), [z.shape[0], 1]) as tf.Tensor2D;
  });
}

/** `MSELoss` (mean) between the predicted IoU and its target; both (B,1) or both (B,). */
export function iouLoss(iouPred: tf.Tensor, target: tf.Tensor): tf.Scalar {
  checkTensor('iouLoss', 'iouPred', iouPred);
  checkTensor('iouLoss', 'target', target);
  checkFloat('iouLoss', 'iouPred', iouPred);
  checkFloat('iouLoss', 'target', target);
  const ok =
    (iouPred.rank === 1 || (iouPred.rank === 2 && iouPred.shape[1] === 1)) &&
    iouPred.shape[0] >= 1 &&
    target.rank === iouPred.rank &&
    target.shape.every((d, i) => d === iouPred.shape[i]);
  if (!ok)
    throw new InputError(
      `iouLoss: iouPred and target must both be (B,1) or (B,), got ${shapeStr(iouPred.shape)} and ${shapeStr(target.shape)}`,
    );
  return tf.tidy(() => tf.mean(tf.square(tf.sub(iouPred, target))) as tf.Scalar);
}

function checkIndices(where: string, targetIdx: unknown, batch: number, classes: number): tf.Tensor1D {
  checkTensor(where, 'targetIdx', targetIdx);
  if (targetIdx.rank !== 1 || targetIdx.shape[0] !== batch)
    throw new InputError(`${where}: targetIdx must have shape (${batch},), got ${shapeStr(targetIdx.shape)}`);
  if (targetIdx.dtype !== 'int32')
    throw new InputError(`${where}: targetIdx must be int32, got ${targetIdx.dtype}`);
  // A handful of integers: reading them back is cheap, and an index out of range would otherwise
  // silently select nothing.
  const idx = targetIdx.dataSync();
  for (let i = 0; i < idx.length; i++) {
    if (!(idx[i] >= 0 && idx[i] < classes))
      throw new InputError(`${where}: targetIdx[${i}] = ${idx[i]} is outside [0, ${classes})`);
  }
  return targetIdx as tf.Tensor1D;
}

/**
 * `CrossEntropyLoss` (mean over rows) of `logits` (B,K) against class indices `targetIdx` (B,)
 * int32: `mean_i[ logsumexp(logits_i) − logits_{i, y_i} ]`, through a max-shifted log-softmax.
 */
export function crossEntropy(logits: tf.Tensor, targetIdx: tf.Tensor): tf.Scalar {
  checkTensor('crossEntropy', 'logits', logits);
  checkFloat('crossEntropy', 'logits', logits);
  const [b, k]: number[] = logits.shape;
  if (logits.rank !== 2 || b < 1 || k < 1)
    throw new InputError(`crossEntropy: logits must have shape (B,K), got ${shapeStr(logits.shape)}`);
  const idx = checkIndices('crossEntropy', targetIdx, b, k);
  return tf.tidy(() => crossEntropyUnchecked(logits as tf.Tensor2D, idx));
}

function crossEntropyUnchecked(logits: tf.Tensor2D, idx: tf.Tensor1D): tf.Scalar {
  const [b, k] = logits.shape;
  const logp = tf.logSoftmax(logits, 1);
  // logp[i, idx[i]] through a flat gather (a one-hot product would turn a −∞ elsewhere into NaN).
  const flat = tf.add(tf.range(0, b * k, k, 'int32'), idx);
  const picked = tf.gather(tf.reshape(logp, [b * k]), flat);
  return tf.neg(tf.mean(picked)) as tf.Scalar;
}

/**
 * The image–token similarity loss: rows of `clipVec` and `imgVec` (both (B,D)) are L2-normalised
 * (no epsilon, as in the original: a zero row gives NaN), `S = C·Vᵀ` (no temperature), and the
 * loss is `½[CE(S, arange B) + CE(Sᵀ, arange B)]`.
 */
export function contrastiveLoss(clipVec: tf.Tensor, imgVec: tf.Tensor): tf.Scalar {
  checkTensor('contrastiveLoss', 'clipVec', clipVec);
  checkTensor('contrastiveLoss', 'imgVec', imgVec);
  checkFloat('contrastiveLoss', 'clipVec', clipVec);
  checkFloat('contrastiveLoss', 'imgVec', imgVec);
  const [b, d]: number[] = clipVec.shape;
  if (clipVec.rank !== 2 || b < 1 || d < 1)
    throw new InputError(`contrastiveLoss: clipVec must have shape (B,D), got ${shapeStr(clipVec.shape)}`);
  if (imgVec.rank !== 2 || imgVec.shape[0] !== b || imgVec.shape[1] !== d)
    throw new InputError(
      `contrastiveLoss: imgVec shape ${shapeStr(imgVec.shape)} differs from the clipVec shape ${shapeStr(clipVec.shape)}`,
    );
  return tf.tidy(() => {
    const unit = (x: tf.Tensor) => tf.div(x, tf.sqrt(tf.sum(tf.square(x), 1, true)));
    const s = tf.matMul(unit(clipVec), unit(imgVec), false, true) as tf.Tensor2D;
    const labels = tf.range(0, b, 1, 'int32') as tf.Tensor1D;
    const ce = tf.add(
      crossEntropyUnchecked(s, labels),
      crossEntropyUnchecked(tf.transpose(s) as tf.Tensor2D, labels),
    );
    return tf.mul(ce, 0.5) as tf.Scalar;
  });
}

/** Weights of the loss terms (`total = Σ weight·term`). */
export interface LossWeights {
  dice: number;
  bce: number;
  iou: number;
  sim: number;
  cat: number;
}

/** The original's weights (its `-seg_loss_weight`-style flags are never used). */
export const DEFAULT_LOSS_WEIGHTS: Readonly<LossWeights> = Object.freeze({
  dice: 1,
  bce: 1,
  iou: 1,
  sim: 0.01,
  cat: 0.01,
});

/** The model outputs the loss reads (names as in `ForwardOutputs`). */
export interface LossOutputs {
  /** (B,1,256,256) mask logits (or (B,H,W,1); see the module note). */
  low_res_logits: tf.Tensor;
  /** (B,1) raw IoU prediction. */
  iou: tf.Tensor;
  /** (B,11) modality logits. */
  category_logits: tf.Tensor;
  /** (B,256) CLIP content token. */
  clip_vec: tf.Tensor;
  /** (B,256) spatial mean of the crop-net output. */
  img_vec: tf.Tensor;
}

export interface LossBatch {
  /** (B,1,256,256) ground truth, 0/1 (float32, int32 or bool), same shape as the logits. */
  gt: tf.Tensor;
  /** (B,) int32 modality indices. */
  categoryIdx: tf.Tensor;
}

export interface LossTerms {
  dice: tf.Scalar;
  bce: tf.Scalar;
  iou_mse: tf.Scalar;
  sim_ce: tf.Scalar;
  cat_ce: tf.Scalar;
}

export interface LossResult {
  /** The weighted sum; differentiable w.r.t. every output tensor. */
  total: tf.Scalar;
  /** The unweighted terms. */
  terms: LossTerms;
  /** The IoU target (B,1), a constant (no gradient). */
  iouTarget: tf.Tensor2D;
}

function resolveWeights(weights: Partial<LossWeights> | undefined): LossWeights {
  const out: LossWeights = { ...DEFAULT_LOSS_WEIGHTS };
  if (weights === undefined) return out;
  if (weights === null || typeof weights !== 'object')
    throw new InputError('mcpMedsamLoss: weights must be an object');
  for (const [key, value] of Object.entries(weights)) {
    if (!Object.prototype.hasOwnProperty.call(DEFAULT_LOSS_WEIGHTS, key))
      throw new InputError(
        `mcpMedsamLoss: unknown loss weight '${key}' (expected ${Object.keys(DEFAULT_LOSS_WEIGHTS).join(', ')})`,
      );
    if (value === undefined) continue;
    if (typeof value !== 'number' || !Number.isFinite(value) || value < 0)
      throw new InputError(`mcpMedsamLoss: loss weight '${key}' must be a finite number >= 0, got ${value}`);
    out[key as keyof LossWeights] = value;
  }
  return out;
}

/**
 * The MCP-MedSAM training loss: `dice + bce + iou_mse + 0.01·sim_ce + 0.01·cat_ce` by default
 * (spec §9.1). Every term is always computed and reported; a term whose weight is 0 is left out of
 * `total` altogether (so that it contributes neither value nor gradient, even if it is NaN).
 * All returned tensors are owned by the caller.
 */
export function mcpMedsamLoss(
  outputs: LossOutputs,
  batch: LossBatch,
  weights?: Partial<LossWeights>,
): LossResult {
  const w = resolveWeights(weights);
  if (outputs === null || typeof outputs !== 'object')
    throw new InputError('mcpMedsamLoss: outputs must be an object');
  if (batch === null || typeof batch !== 'object')
    throw new InputError('mcpMedsamLoss: batch must be an object');
  const where = 'mcpMedsamLoss';
  checkTensor(where, 'outputs.low_res_logits', outputs.low_res_logits);
  checkTensor(where, 'outputs.iou', outputs.iou);
  checkTensor(where, 'outputs.category_logits', outputs.category_logits);
  checkTensor(where, 'outputs.clip_vec', outputs.clip_vec);
  checkTensor(where, 'outputs.img_vec', outputs.img_vec);
  checkTensor(where, 'batch.gt', batch.gt);
  checkTensor(where, 'batch.categoryIdx', batch.categoryIdx);
  const b = outputs.low_res_logits.shape[0];
  const batchOf: [string, tf.Tensor][] = [
    ['outputs.iou', outputs.iou],
    ['outputs.category_logits', outputs.category_logits],
    ['outputs.clip_vec', outputs.clip_vec],
    ['outputs.img_vec', outputs.img_vec],
    ['batch.gt', batch.gt],
    ['batch.categoryIdx', batch.categoryIdx],
  ];
  for (const [name, t] of batchOf) {
    if (t.rank < 1 || t.shape[0] !== b)
      throw new InputError(
        `${where}: ${name} has shape ${shapeStr(t.shape)}, but the logits batch size is ${b}`,
      );
  }
  if (outputs.iou.rank !== 2 || outputs.iou.shape[1] !== 1)
    throw new InputError(`${where}: outputs.iou must have shape (B,1), got ${shapeStr(outputs.iou.shape)}`);

  return tf.tidy(() => {
    const target = iouTarget(outputs.low_res_logits, batch.gt);
    const terms: LossTerms = {
      dice: diceLoss(outputs.low_res_logits, batch.gt),
      bce: bceWithLogits(outputs.low_res_logits, batch.gt),
      iou_mse: iouLoss(outputs.iou, target),
      sim_ce: contrastiveLoss(outputs.clip_vec, outputs.img_vec),
      cat_ce: crossEntropy(outputs.category_logits, batch.categoryIdx),
    };
    const weighted: [number, tf.Scalar][] = [
      [w.dice, terms.dice],
      [w.bce, terms.bce],
      [w.iou, terms.iou_mse],
      [w.sim, terms.sim_ce],
      [w.cat, terms.cat_ce],
    ];
    let total: tf.Scalar | undefined;
    // Added one by one in the original's order (float32 addition is not associative).
    for (const [weight, term] of weighted) {
      if (weight === 0) continue;
      const t = tf.mul(term, weight) as tf.Scalar; // exact for a weight of 1
      total = total === undefined ? t : (tf.add(total, t) as tf.Scalar);
    }
    const result: LossResult = { total: total ?? tf.scalar(0), terms, iouTarget: target };
    return result as unknown as tf.TensorContainer;
  }) as unknown as LossResult;
}
