import type { Command } from 'commander';
import { InputError } from '@mcp-medsam/core';
import { runDemo } from '../demo/run_demo.js';

function positiveNumber(value: string, flag: string): number {
  const n = Number(value);
  if (!(Number.isFinite(n) && n > 0))
    throw new InputError(`${flag} must be a positive number, got '${value}'`);
  return n;
}

/** `mcp-medsam demo`: learn, export and segment on synthetic data (or `--data`), then report. */
export function registerDemo(program: Command): void {
  program
    .command('demo')
    .description(
      'train the tiny model for a few minutes on a synthetic multi-modality set (or --data), export it to ONNX, ' +
        'segment the held-out cases and compare with the box baseline (no downloads, no GPU)',
    )
    .option('--out <dir>', 'output folder', 'demo-output')
    .option('--data <dir>', 'a folder of challenge npz cases (imgs, gts) instead of the synthetic set')
    .option('--minutes <m>', 'training time budget in minutes', '5')
    .option('--steps <n>', 'most training steps (default: as many as fit in the budget)')
    .option('--short', 'a quick smoke run: small data, 20 training steps')
    .option('--from-scratch', 'start from random weights instead of the bundled synthetic-data checkpoint')
    .option('--seed <n>', 'random seed', '2024')
    .option('--threads <n>', 'onnxruntime threads for inference', '2')
    .action(
      async (o: {
        out: string;
        data?: string;
        minutes: string;
        steps?: string;
        short?: boolean;
        fromScratch?: boolean;
        seed: string;
        threads: string;
      }) => {
        const seed = Number(o.seed);
        if (!Number.isSafeInteger(seed) || seed < 0)
          throw new InputError(`--seed must be a non-negative integer, got '${o.seed}'`);
        const steps = o.steps === undefined ? undefined : positiveNumber(o.steps, '--steps');
        if (steps !== undefined && !Number.isSafeInteger(steps))
          throw new InputError(`--steps must be a whole number, got '${o.steps}'`);
        await runDemo({
          out: o.out,
          data: o.data,
          minutes: positiveNumber(o.minutes, '--minutes'),
          steps,
          short: o.short,
          fromScratch: o.fromScratch,
          seed,
          threads: positiveNumber(o.threads, '--threads'),
        });
      },
    );
}
