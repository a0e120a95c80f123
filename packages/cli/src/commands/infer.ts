import type { Command } from 'commander';
import { InputError } from '@mcp-medsam/core';
import { OnnxClipVision, TextFeatureTable } from '@mcp-medsam/prompts';
import { MedsamPredictor, inferDirectory, loadEngine, type EngineName } from '@mcp-medsam/runtime';

interface InferCliOptions {
  model: string;
  input: string;
  output: string;
  clipVision: string;
  clipText: string;
  engine: string;
  threads?: string;
  preset?: string;
  inclusiveZ?: boolean;
  batch: string;
  embeddingCache: string;
}

function positiveInt(value: string, flag: string): number {
  const n = Number(value);
  if (!Number.isSafeInteger(n) || n < 1)
    throw new InputError(`${flag} must be a positive integer, got '${value}'`);
  return n;
}

/** `mcp-medsam infer`: segment a folder of challenge npz cases. */
export function registerInfer(program: Command): void {
  program
    .command('infer')
    .description(
      'segment every challenge npz of a folder (2D and 3D, box prompts) as the original infer.py does',
    )
    .requiredOption('--model <path>', 'export directory (manifest.json) or checkpoint (.pth / .safetensors)')
    .requiredOption('--input <dir>', 'folder of challenge npz cases (imgs, boxes)')
    .requiredOption('--output <dir>', 'where to write <case>.npz (segs) and efficiency.csv')
    .requiredOption('--clip-vision <onnx>', 'CLIP image tower as ONNX (see docs/clip-export.md)')
    .requiredOption('--clip-text <json>', 'CLIP text-feature table (JSON)')
    .option(
      '--engine <name>',
      "'onnx' (onnxruntime; a checkpoint is exported once and cached) or 'tfjs'",
      'onnx',
    )
    .option('--threads <n>', 'onnxruntime threads per operator (default: all cores)')
    .option('--preset <name>', 'model preset of a checkpoint (default: detected)')
    .option('--inclusive-z', "3D: also segment each box's first and last slice (the original skips them)")
    .option('--batch <n>', 'most boxes per decoder call', '16')
    .option('--embedding-cache <mb>', '3D: slice-embedding cache budget in MB', '256')
    .action(async (opts: InferCliOptions) => {
      if (opts.engine !== 'onnx' && opts.engine !== 'tfjs')
        throw new InputError(`--engine must be 'onnx' or 'tfjs', got '${opts.engine}'`);
      const threads = opts.threads === undefined ? undefined : positiveInt(opts.threads, '--threads');
      const maxBatch = positiveInt(opts.batch, '--batch');
      const cache = Number(opts.embeddingCache);
      if (!(cache >= 0)) throw new InputError(`--embedding-cache must be >= 0, got '${opts.embeddingCache}'`);
      const log = (line: string) => process.stderr.write(line + '\n');
      const text = await TextFeatureTable.fromFile(opts.clipText);
      const vision = await OnnxClipVision.create(opts.clipVision, threads ? { threads } : {});
      let predictor: MedsamPredictor | undefined;
      try {
        const engine = await loadEngine({
          model: opts.model,
          engine: opts.engine as EngineName,
          threads,
          preset: opts.preset,
          log,
        });
        predictor = new MedsamPredictor(engine, vision, text);
        log(`[infer] engine ${engine.name}, model ${opts.model}`);
        const reports = await inferDirectory({
          input: opts.input,
          output: opts.output,
          predictor,
          inclusiveZ: opts.inclusiveZ ?? false,
          maxBatch,
          embeddingCacheMB: cache,
          log,
        });
        const failed = reports.filter((r) => !r.ok);
        const total = reports.reduce((a, r) => a + r.seconds, 0);
        log(
          `[infer] ${reports.length - failed.length} of ${reports.length} cases segmented in ${total.toFixed(1)} s; efficiency.csv in ${opts.output}`,
        );
        for (const f of failed) process.stderr.write(`FAILED ${f.name}: ${f.error}\n`);
        if (failed.length) process.exitCode = 1;
      } finally {
        if (predictor) await predictor.close();
        else await vision.close();
      }
    });
}
