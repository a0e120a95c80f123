import type { Command } from 'commander';
import { initBackend, tf } from '@mcp-medsam/core';
import { writeNpzFile, type NdArray } from '@mcp-medsam/io';
import { McpMedsam, getPreset, loadWeights } from '@mcp-medsam/model';
import { AdamW, batchGradients, disposeBatch, readBatchFile } from '@mcp-medsam/trainer';

export interface TrainStepOptions {
  weights: string;
  batch: string;
  output: string;
  preset?: string;
  lr?: string;
  weightDecay?: string;
}

const scalar = (v: number): NdArray => ({ dtype: 'float64', shape: [], data: Float64Array.of(v) });

/**
 * One training step of the original's loop body on a batch file named as fixtures/train/step-a.npz
 * (train mode, default loss weights, AdamW lr 2e-4, weight decay 1e-3), written with the
 * fixture's array names: `loss_*`, `grad_norm`, `grad_is_none`, `grad_norm_keys_utf8`,
 * `grad.<param>` and `after.<param>` for every parameter, and every BatchNorm's running statistics.
 */
export async function runTrainStep(opts: TrainStepOptions): Promise<Record<string, NdArray>> {
  await initBackend();
  const model = new McpMedsam(getPreset(opts.preset ?? 'mcp-medsam'));
  try {
    await loadWeights(model, opts.weights);
    model.train().setGradientCheckpointing(true);
    const batch = await readBatchFile(opts.batch);
    let step;
    try {
      step = batchGradients(model, batch);
    } finally {
      disposeBatch(batch);
    }
    const out: Record<string, NdArray> = {};
    for (const [k, v] of Object.entries(step.loss)) out[`loss_${k}`] = scalar(v);
    const params = model.namedParameters();
    const norms = new Float64Array(params.length);
    const none = new Uint8Array(params.length);
    params.forEach(([name, p], i) => {
      const g = step.grads.get(name);
      if (!g) {
        none[i] = 1;
        return;
      }
      const data = g.dataSync() as Float32Array;
      let s = 0;
      for (let j = 0; j < data.length; j++) s += data[j] * data[j];
      norms[i] = Math.sqrt(s);
      out[`grad.${name}`] = { dtype: 'float32', shape: p.shape.slice(), data: new Float32Array(data) };
    });
    out.grad_norm = { dtype: 'float64', shape: [params.length], data: norms };
    out.grad_is_none = { dtype: 'bool', shape: [params.length], data: none };
    const keys = new TextEncoder().encode(params.map(([k]) => k).join('\n'));
    out.grad_norm_keys_utf8 = { dtype: 'uint8', shape: [keys.length], data: keys };
    const opt = new AdamW(params, {
      lr: opts.lr !== undefined ? Number(opts.lr) : undefined,
      weightDecay: opts.weightDecay !== undefined ? Number(opts.weightDecay) : undefined,
    });
    try {
      opt.step(step.grads);
    } finally {
      tf.dispose([...step.grads.values()]);
      opt.dispose();
    }
    for (const [name, p] of model.namedParameters())
      out[`after.${name}`] = {
        dtype: 'float32',
        shape: p.shape.slice(),
        data: new Float32Array(p.dataSync()),
      };
    for (const [k, t] of model.stateDict()) {
      if (!/\.(running_mean|running_var|num_batches_tracked)$/.test(k)) continue;
      out[`bn.${k}`] = { dtype: t.dtype, shape: t.shape, data: t.data } as NdArray;
    }
    await writeNpzFile(opts.output, out, { compress: true });
    return out;
  } finally {
    model.dispose();
  }
}

export function registerTrainStep(program: Command): void {
  program
    .command('train-step')
    .description(
      'one training step (train mode, AdamW) on a batch npz; writes losses, gradients and updated weights',
    )
    .requiredOption('--weights <file>', 'checkpoint (.pth or .safetensors)')
    .requiredOption(
      '--batch <file>',
      'npz with image, gt2D, boxes, crops, features, text_features, category_idx',
    )
    .requiredOption('--output <file>', 'npz to write (names as in fixtures/train/step-a.npz)')
    .option('--preset <name>', 'model preset', 'mcp-medsam')
    .option('--lr <value>', 'AdamW learning rate', '2e-4')
    .option('--weight-decay <value>', 'AdamW weight decay', '1e-3')
    .action(async (o: TrainStepOptions) => {
      const out = await runTrainStep(o);
      process.stderr.write(
        `loss ${(out.loss_total.data as Float64Array)[0].toFixed(6)}; wrote ${Object.keys(out).length} arrays to ${o.output}\n`,
      );
    });
}
