/**
 * One training step as the original's loop body does it: train mode, forward with the box,
 * content and modality prompts, the five-term loss, backward, optimizer step. The gradients come
 * from the model package's two-phase `stepGradients` (the encoder's activations and the
 * decoder's are never on one tape), so a step's peak memory is the larger of the two.
 */
import { tf } from '@mcp-medsam/core';
import { stepGradients, type McpMedsam } from '@mcp-medsam/model';
import { forwardInputs, type TrainBatch } from './batch.js';
import { mcpMedsamLoss, type LossTerms, type LossWeights } from './losses.js';
import { clipGradNorm } from './optim/clip.js';
import type { AdamW } from './optim/adamw.js';

export type LossValues = { [K in keyof LossTerms]: number } & { total: number };

export interface BatchGradients {
  loss: LossValues;
  /** Gradient of every parameter that got one, by state-dict name (the caller disposes them). */
  grads: Map<string, tf.Tensor>;
}

/**
 * The loss terms and parameter gradients of one batch (no update). Parameters the loss does not
 * reach (the unused point and mask embeddings) are absent from `grads`, as PyTorch leaves their
 * `.grad` None; parameters reached only through sliced-away outputs get zeros.
 */
export function batchGradients(
  model: McpMedsam,
  batch: TrainBatch,
  weights: Partial<LossWeights> = {},
): BatchGradients {
  let terms: LossTerms | null = null;
  const { loss, grads } = stepGradients(model, forwardInputs(batch), (outputs) => {
    const r = mcpMedsamLoss(outputs, { gt: batch.gt, categoryIdx: batch.categoryIdx }, weights);
    // The terms outlive the tape's scope for logging (they are scalars).
    for (const t of Object.values(r.terms)) tf.keep(t);
    terms = r.terms;
    return r.total;
  });
  const values = {} as LossValues;
  for (const [k, t] of Object.entries(terms!) as [keyof LossTerms, tf.Scalar][]) {
    values[k] = t.dataSync()[0];
    t.dispose();
  }
  values.total = loss.dataSync()[0];
  loss.dispose();
  return { loss: values, grads };
}

export interface TrainStepOptions {
  weights?: Partial<LossWeights>;
  /** Clip the total gradient norm to this value before the update (default: no clipping). */
  maxGradNorm?: number;
  /** Return the gradients instead of disposing them (for inspection; the caller disposes). */
  keepGrads?: boolean;
}

export interface TrainStepResult {
  loss: LossValues;
  /** Total L2 norm of the gradients before clipping, when clipping was asked for. */
  gradNorm?: number;
  grads?: Map<string, tf.Tensor>;
}

/** Forward, loss, backward and one optimizer step; the model must be in train mode. */
export function trainStep(
  model: McpMedsam,
  optimizer: AdamW,
  batch: TrainBatch,
  options: TrainStepOptions = {},
): TrainStepResult {
  const { loss, grads } = batchGradients(model, batch, options.weights);
  const res: TrainStepResult = { loss };
  try {
    if (options.maxGradNorm !== undefined) {
      res.gradNorm = clipGradNorm(grads as Map<string, tf.Tensor | null | undefined>, options.maxGradNorm);
    }
    optimizer.step(grads);
  } finally {
    if (options.keepGrads) res.grads = grads;
    else tf.dispose([...grads.values()]);
  }
  return res;
}
