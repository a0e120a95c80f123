import { nn, tf } from '@mcp-medsam/core';
import { forwardOutputs, type ForwardInputs, type ForwardOutputs, type McpMedsam } from './mcp_medsam.js';

export interface StepGradients {
  /** The loss value. */
  loss: tf.Scalar;
  /** Gradient of every parameter the loss depends on, by state-dict name. */
  grads: Map<string, tf.Tensor>;
}

/**
 * Loss and parameter gradients of one training step, in two phases so that the peak memory is
 * the larger of the encoder's and the decoder's instead of their sum (tfjs keeps every
 * activation and every intermediate gradient of a tape until its backward pass ends):
 *
 * 1. the image encoder runs without a tape (BatchNorm statistics are updated as usual);
 * 2. prompt encoder + decoder + loss run under a tape with the embedding as a leaf, giving the
 *    loss, their parameter gradients and dL/d(embedding);
 * 3. the encoder runs again under a tape (as a recomputation: no second statistics update) and
 *    is back-propagated from dL/d(embedding).
 *
 * The gradients equal a single tape's; the encoder's forward pass runs twice. Without gradient
 * checkpointing (set on the image encoder: small models such as the tiny preset, which have the
 * memory to spare) the step is that single tape, and the encoder runs once.
 */
export function stepGradients(
  model: McpMedsam,
  inputs: ForwardInputs,
  lossFn: (outputs: ForwardOutputs) => tf.Scalar,
): StepGradients {
  const named = new Map(model.namedParameters().map(([k, v]) => [v.name, k]));
  const encoderVars = model.image_encoder
    .namedParameters()
    .map(([, v]) => v)
    .filter((v) => v.trainable);
  const otherVars = [...model.mask_decoder.namedParameters(), ...model.prompt_encoder.namedParameters()]
    .map(([, v]) => v)
    .filter((v) => v.trainable);
  const grads = new Map<string, tf.Tensor>();

  if (!model.image_encoder.checkpointGradients) {
    const r = nn.variableGradsEager(() => lossFn(model.forward(inputs)), [...encoderVars, ...otherVars]);
    for (const [varName, g] of Object.entries(r.grads)) grads.set(named.get(varName) ?? varName, g);
    return { loss: r.value, grads };
  }

  const emb = tf.tidy(() => model.encodeImage(inputs.image));
  const embVar = tf.variable(emb, true);
  emb.dispose();
  let loss: tf.Scalar;
  let dEmb: tf.Tensor;
  try {
    const phase2 = nn.variableGradsEager(() => {
      const outputs = forwardOutputs(embVar, model.decode(embVar, inputs));
      return lossFn(outputs);
    }, [embVar, ...otherVars]);
    loss = phase2.value;
    dEmb = phase2.grads[embVar.name];
    for (const [varName, g] of Object.entries(phase2.grads)) {
      if (varName === embVar.name) continue;
      grads.set(named.get(varName) ?? varName, g);
    }
  } finally {
    embVar.dispose();
  }

  const phase3 = nn.recomputing(() =>
    nn.variableGradsEager(() => model.encodeImage(inputs.image), encoderVars, { dy: dEmb }),
  );
  phase3.value.dispose();
  dEmb.dispose();
  for (const [varName, g] of Object.entries(phase3.grads)) grads.set(named.get(varName) ?? varName, g);
  return { loss, grads };
}
