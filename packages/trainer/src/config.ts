/**
 * The training configuration: every option of `mcp-medsam train`, validated with zod so that a
 * YAML or JSON file and the command-line flags give the same clear messages. Defaults are the
 * original's (spec §9), except where the original's value needs a GPU (batch size 16).
 */
import { readFile } from 'node:fs/promises';
import { InputError } from '@mcp-medsam/core';
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';

const positiveInt = z.number().int().positive();
const nonNegative = z.number().finite().nonnegative();

export const TrainConfigSchema = z
  .object({
    /** Model preset: `mcp-medsam` (the paper's) or `tiny`. */
    preset: z.enum(['mcp-medsam', 'tiny']).default('mcp-medsam'),
    /** Directory of challenge npz files. */
    data: z.string().min(1),
    /** Run directory: checkpoints, log.jsonl, loss curve. */
    out: z.string().min(1),
    /** Epochs (the original: 25). An epoch is `stepsPerEpoch` steps. */
    epochs: positiveInt.default(25),
    /** Stop after this many steps in all (default: epochs × stepsPerEpoch). */
    steps: positiveInt.optional(),
    /** Steps per epoch (default: ⌈cases / batch size⌉, as the original's dataset length). */
    stepsPerEpoch: positiveInt.optional(),
    batchSize: positiveInt.default(4),
    /** Micro-batches whose gradients are averaged before each update. */
    accumulate: positiveInt.default(1),
    lr: z.number().finite().positive().default(2e-4),
    weightDecay: nonNegative.default(1e-3),
    betas: z.tuple([z.number().min(0).lt(1), z.number().min(0).lt(1)]).default([0.9, 0.999]),
    eps: z.number().finite().positive().default(1e-8),
    /** The learning rate set at the start of the last epoch (the original: 5e-5); null: keep. */
    lastEpochLr: z.number().finite().positive().nullable().default(5e-5),
    plateau: z
      .object({
        factor: z.number().gt(0).lt(1).default(0.9),
        patience: z.number().int().nonnegative().default(5),
      })
      .default({ factor: 0.9, patience: 5 }),
    /** Clip the total gradient norm (default: no clipping, as the original). */
    maxGradNorm: z.number().finite().positive().optional(),
    lossWeights: z
      .object({
        dice: nonNegative.default(1),
        bce: nonNegative.default(1),
        iou: nonNegative.default(1),
        sim: nonNegative.default(0.01),
        cat: nonNegative.default(0.01),
      })
      .default({ dice: 1, bce: 1, iou: 1, sim: 0.01, cat: 0.01 }),
    sampler: z.enum(['modality-balanced', 'uniform-cases', 'uniform-slices']).default('modality-balanced'),
    seed: z.number().int().nonnegative().default(2024),
    /** Loader worker threads (0: build samples in the training thread). */
    workers: z.number().int().nonnegative().default(2),
    prefetch: positiveInt.default(2),
    /** Write a resumable checkpoint every N steps (0: only at the end of each epoch). */
    checkpointEvery: z.number().int().nonnegative().default(0),
    /** Weights to start from: a full MCP-MedSAM or LiteMedSAM checkpoint or a bare TinyViT state dict. */
    init: z.string().optional(),
    /** A run checkpoint to continue from (`true`: `<out>/checkpoint.safetensors`). */
    resume: z.union([z.string(), z.boolean()]).optional(),
    /** CLIP image tower as ONNX (`pixel_values` → `image_embeds`) and the text-feature table. */
    clipVision: z.string().min(1),
    clipText: z.string().min(1),
    /**
     * BatchNorm layers normalise with their running statistics in training too and keep them as
     * they are (default false: batch statistics, as the original). For small batches of mixed
     * modalities, whose statistics are far from the population's, e.g. training from scratch on
     * a CPU: the model then trains as it is evaluated and exported.
     */
    freezeBatchNorm: z.boolean().default(false),
    /**
     * With `freezeBatchNorm`, except when resuming: batches whose average statistics become the
     * frozen ones before the first step (0: keep the statistics of the initial weights).
     */
    batchNormCalibration: z.number().int().nonnegative().default(8),
    /** Recompute activations in the backward pass (less memory, ~30% more time). */
    gradientCheckpointing: z.boolean().default(true),
    /** Force a tfjs backend (default: the best available). */
    backend: z.enum(['tensorflow-gpu', 'tensorflow', 'wasm', 'cpu']).optional(),
    /** Validation: a directory of npz cases evaluated with DSC/NSD after every N epochs. */
    validation: z
      .object({ data: z.string().min(1), every: positiveInt.default(1), maxCases: positiveInt.optional() })
      .optional(),
    /** Show a progress bar on stderr (default: when it is a terminal). */
    progress: z.boolean().optional(),
  })
  .strict();

export type TrainConfig = z.infer<typeof TrainConfigSchema>;
export type TrainConfigInput = z.input<typeof TrainConfigSchema>;

/** Validates a configuration; the error lists every problem with its option name. */
export function parseTrainConfig(input: unknown, file?: string): TrainConfig {
  const r = TrainConfigSchema.safeParse(input);
  if (r.success) return r.data;
  const lines = r.error.issues.map((i) => `  ${i.path.length ? i.path.join('.') : '(config)'}: ${i.message}`);
  throw new InputError(`invalid training configuration:\n${lines.join('\n')}`, { file });
}

/** Reads a YAML or JSON configuration file (not yet validated: flags may still be merged in). */
export async function readConfigFile(file: string): Promise<Record<string, unknown>> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (e) {
    throw new InputError(`cannot read the configuration: ${(e as Error).message}`, { file, cause: e });
  }
  let obj: unknown;
  try {
    obj = /\.json$/i.test(file) ? JSON.parse(text) : parseYaml(text);
  } catch (e) {
    throw new InputError(
      `the configuration is not valid ${/\.json$/i.test(file) ? 'JSON' : 'YAML'}: ${(e as Error).message}`,
      {
        file,
        cause: e,
      },
    );
  }
  if (obj === null || typeof obj !== 'object' || Array.isArray(obj))
    throw new InputError('the configuration must be a mapping of option names to values', { file });
  return obj as Record<string, unknown>;
}
