/**
 * Data-dependent BatchNorm statistics for a model about to train with frozen BatchNorm: the
 * running mean and variance become the averages over a few batches (PyTorch's momentum=None
 * cumulative average), so each layer starts out normalised for the data at hand, as batch
 * statistics would give, while training and evaluation stay the same function. Without it, fresh
 * running statistics (0 and 1) leave a small model's activations badly scaled and it barely learns.
 */
import { InputError, nn, tf } from '@mcp-medsam/core';
import type { ForwardInputs, McpMedsam } from '@mcp-medsam/model';

export async function calibrateBatchNorm(
  model: McpMedsam,
  batches: AsyncIterable<ForwardInputs> | Iterable<ForwardInputs>,
): Promise<number> {
  const layers: nn.BatchNorm2d[] = [];
  for (const [, m] of model.namedModules()) if (m instanceof nn.BatchNorm2d) layers.push(m);
  const wasTraining = model.training;
  const frozen = layers.map((l) => l.frozen);
  const momentum = layers.map((l) => l.momentum);
  model.train();
  for (const l of layers) {
    l.frozen = false;
    for (const name of ['running_mean', 'running_var'] as const)
      l.setBuffer(name, tf.zerosLike(l.getBuffer(name)));
  }
  let n = 0;
  try {
    for await (const inputs of batches) {
      // Cumulative average: batch k weighs 1/(k+1) against the mean of the ones before.
      for (const l of layers) l.momentum = 1 / (n + 1);
      tf.tidy(() => {
        model.forward(inputs);
      });
      n++;
    }
    if (n === 0) throw new InputError('BatchNorm calibration needs at least one batch');
  } finally {
    layers.forEach((l, i) => {
      l.momentum = momentum[i];
      l.frozen = frozen[i];
    });
    model.train(wasTraining);
  }
  return n;
}
