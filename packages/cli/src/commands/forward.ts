import type { Command } from 'commander';
import { InputError, initBackend, tf } from '@mcp-medsam/core';
import { readNpzFile, writeNpzFile, type NdArray } from '@mcp-medsam/io';
import { ndarrayToTensor, tensorToNdarray } from '@mcp-medsam/io/tensor';
import { McpMedsam, getPreset, loadWeights } from '@mcp-medsam/model';
import { requireArray } from '../lib/inputs.js';

export interface ForwardOptions {
  weights: string;
  inputs: string;
  output: string;
  mode?: 'eval' | 'train';
  preset?: string;
  taps?: boolean;
}

/** The input arrays of `forward`, named as in the forward-a-*.npz fixtures. */
export const FORWARD_INPUTS = ['image', 'box256', 'clip_img', 'clip_txt', 'category_idx', 'crop64'] as const;

/** Runs the network on raw tensors from an npz and writes every output (fixture names) to an npz. */
export async function runForward(opts: ForwardOptions): Promise<Record<string, NdArray>> {
  const mode = opts.mode ?? 'eval';
  if (mode !== 'eval' && mode !== 'train')
    throw new InputError(`--mode must be eval or train, got '${mode}'`);
  await initBackend();
  const arrays = await readNpzFile(opts.inputs);
  const model = new McpMedsam(getPreset(opts.preset ?? 'mcp-medsam'));
  try {
    await loadWeights(model, opts.weights);
    model.train(mode === 'train');
    const t = Object.fromEntries(
      FORWARD_INPUTS.map((n) => [n, ndarrayToTensor(requireArray(arrays, n, opts.inputs), n)]),
    ) as Record<(typeof FORWARD_INPUTS)[number], tf.Tensor>;
    let out;
    try {
      out = model.forward(
        {
          image: t.image,
          boxes: t.box256,
          clipImage: t.clip_img,
          clipText: t.clip_txt,
          categoryIdx: t.category_idx,
          crops: t.crop64,
        },
        { taps: opts.taps ?? true },
      );
    } catch (e) {
      if (e instanceof InputError) throw new InputError(e.message, { file: opts.inputs, cause: e });
      throw e;
    } finally {
      Object.values(t).forEach((x) => x.dispose());
    }
    const result: Record<string, NdArray> = {};
    for (const [k, v] of Object.entries(out)) {
      if (!v) continue;
      result[k] = tensorToNdarray(v as tf.Tensor);
      (v as tf.Tensor).dispose();
    }
    await writeNpzFile(opts.output, result, { compress: true });
    return result;
  } finally {
    model.dispose();
  }
}

export function registerForward(program: Command): void {
  program
    .command('forward')
    .description('run the network on raw tensors from an npz and write every output to an npz')
    .requiredOption('--weights <file>', 'checkpoint (.pth or .safetensors)')
    .requiredOption('--inputs <file>', `npz with ${FORWARD_INPUTS.join(', ')}`)
    .requiredOption('--output <file>', 'npz to write (outputs and encoder taps, named as in the fixtures)')
    .option('--mode <mode>', 'eval (BatchNorm running statistics) or train (batch statistics)', 'eval')
    .option('--preset <name>', 'model preset', 'mcp-medsam')
    .option('--no-taps', 'do not write the encoder stage outputs')
    .action(async (o: ForwardOptions) => {
      const out = await runForward(o);
      process.stderr.write(`wrote ${Object.keys(out).length} arrays to ${o.output}\n`);
    });
}
