import { tf } from '../tf.js';
import type { Module } from './module.js';
import { variableGradsEager } from './backprop.js';

let recomputeDepth = 0;

/** True while a checkpointed block re-runs its forward pass for the backward pass. */
export function isRecomputing(): boolean {
  return recomputeDepth > 0;
}

/** Runs `fn` as a recomputation: BatchNorm layers use batch statistics but do not update them. */
export function recomputing<T>(fn: () => T): T {
  recomputeDepth++;
  try {
    return fn();
  } finally {
    recomputeDepth--;
  }
}

/**
 * Gradient checkpointing (activation recomputation) for one block: the outer gradient tape keeps
 * only the block's input; the backward pass runs the block again under its own tape. Costs one
 * more forward of the block and bounds the memory of a training step by the largest block
 * instead of the whole network (TinyViT's stage 0 alone keeps ~0.5 GB per sample per block).
 * BatchNorm running statistics are updated once, by the first forward.
 */
export function checkpoint(block: Module, x: tf.Tensor, run: (x: tf.Tensor) => tf.Tensor): tf.Tensor {
  if (!block.training || !block.checkpointGradients) return run(x);
  const params = block
    .namedParameters()
    .map(([, p]) => p)
    .filter((p) => p.trainable);
  const op = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
    const input = args[0] as tf.Tensor;
    (args[args.length - 1] as tf.GradSaveFunc)([input]);
    return {
      value: run(input),
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
        const inputVar = tf.variable(saved[0], true);
        // A gradient computed inside a gradient function: tfjs's engine starts a fresh tape and
        // drops it afterwards, which would also drop the outer pass's tape; keep that one aside.
        const state = (tf.engine() as unknown as { state: { activeTape: unknown } }).state;
        const outerTape = state.activeTape;
        recomputeDepth++;
        try {
          const { value, grads } = variableGradsEager(() => run(inputVar), [inputVar, ...params], { dy });
          value.dispose();
          return [grads[inputVar.name], ...params.map((p) => grads[p.name] ?? tf.zerosLike(p))];
        } finally {
          state.activeTape = outerTape;
          recomputeDepth--;
          inputVar.dispose();
        }
      },
    };
  });
  return op(x, ...params);
}
