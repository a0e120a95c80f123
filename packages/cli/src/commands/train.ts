import type { Command } from 'commander';
import { InputError } from '@mcp-medsam/core';
import { parseTrainConfig, readConfigFile, train, type TrainResult } from '@mcp-medsam/trainer';

/** Flags as commander gives them (strings), before validation. */
export interface TrainFlags {
  config?: string;
  preset?: string;
  data?: string;
  out?: string;
  epochs?: string;
  steps?: string;
  stepsPerEpoch?: string;
  batchSize?: string;
  accumulate?: string;
  lr?: string;
  weightDecay?: string;
  lastEpochLr?: string;
  maxGradNorm?: string;
  plateauFactor?: string;
  plateauPatience?: string;
  lossWeights?: string;
  sampler?: string;
  seed?: string;
  workers?: string;
  prefetch?: string;
  checkpointEvery?: string;
  init?: string;
  resume?: string | boolean;
  clipVision?: string;
  clipText?: string;
  gradientCheckpointing?: boolean;
  freezeBatchNorm?: boolean;
  backend?: string;
  validationData?: string;
  progress?: boolean;
}

function num(flag: string, v: string): number {
  const n = Number(v);
  if (v.trim() === '' || !Number.isFinite(n)) throw new InputError(`--${flag}: '${v}' is not a number`);
  return n;
}

/** `dice=1,bce=1,iou=1,sim=0.01,cat=0.01` (any subset). */
function lossWeights(v: string): Record<string, number> {
  const out: Record<string, number> = {};
  for (const part of v.split(',').filter(Boolean)) {
    const [k, x] = part.split('=');
    if (!k || x === undefined) throw new InputError(`--loss-weights: '${part}' is not name=value`);
    out[k.trim()] = num('loss-weights', x);
  }
  return out;
}

/** The configuration file (if any) with the flags laid over it, validated. */
export async function trainConfigFromFlags(flags: TrainFlags) {
  const base: Record<string, unknown> = flags.config ? await readConfigFile(flags.config) : {};
  const set = (k: string, v: unknown) => {
    if (v !== undefined) base[k] = v;
  };
  const n = (flag: string, v: string | undefined) => (v === undefined ? undefined : num(flag, v));
  set('preset', flags.preset);
  set('data', flags.data);
  set('out', flags.out);
  set('epochs', n('epochs', flags.epochs));
  set('steps', n('steps', flags.steps));
  set('stepsPerEpoch', n('steps-per-epoch', flags.stepsPerEpoch));
  set('batchSize', n('batch-size', flags.batchSize));
  set('accumulate', n('accumulate', flags.accumulate));
  set('lr', n('lr', flags.lr));
  set('weightDecay', n('weight-decay', flags.weightDecay));
  if (flags.lastEpochLr !== undefined)
    set('lastEpochLr', flags.lastEpochLr === 'none' ? null : num('last-epoch-lr', flags.lastEpochLr));
  set('maxGradNorm', n('max-grad-norm', flags.maxGradNorm));
  if (flags.plateauFactor !== undefined || flags.plateauPatience !== undefined) {
    const p = { ...((base.plateau as object) ?? {}) } as Record<string, unknown>;
    if (flags.plateauFactor !== undefined) p.factor = num('plateau-factor', flags.plateauFactor);
    if (flags.plateauPatience !== undefined) p.patience = num('plateau-patience', flags.plateauPatience);
    base.plateau = p;
  }
  if (flags.lossWeights !== undefined)
    base.lossWeights = { ...((base.lossWeights as object) ?? {}), ...lossWeights(flags.lossWeights) };
  set('sampler', flags.sampler);
  set('seed', n('seed', flags.seed));
  set('workers', n('workers', flags.workers));
  set('prefetch', n('prefetch', flags.prefetch));
  set('checkpointEvery', n('checkpoint-every', flags.checkpointEvery));
  set('init', flags.init);
  set('resume', flags.resume);
  set('clipVision', flags.clipVision);
  set('clipText', flags.clipText);
  if (flags.gradientCheckpointing === false) base.gradientCheckpointing = false;
  if (flags.freezeBatchNorm) base.freezeBatchNorm = true;
  set('backend', flags.backend);
  if (flags.validationData !== undefined)
    base.validation = { ...((base.validation as object) ?? {}), data: flags.validationData };
  set('progress', flags.progress);
  return parseTrainConfig(base, flags.config);
}

export function registerTrain(program: Command): void {
  program
    .command('train')
    .description(
      'train MCP-MedSAM on a directory of challenge npz files (every option may also come from --config)',
    )
    .option('--config <file>', 'YAML or JSON file with any of the options below (flags win)')
    .option('--preset <name>', 'mcp-medsam (the paper) or tiny', undefined)
    .option('--data <dir>', 'directory of challenge npz files')
    .option('--out <dir>', 'run directory (checkpoints, log.jsonl, loss.png)')
    .option('--epochs <n>', 'epochs (default 25)')
    .option('--steps <n>', 'stop after this many steps')
    .option('--steps-per-epoch <n>', 'steps per epoch (default: cases / batch size)')
    .option('--batch-size <n>', 'samples per step (default 4)')
    .option('--accumulate <n>', 'micro-batches per optimizer step (default 1)')
    .option('--lr <x>', 'AdamW learning rate (default 2e-4)')
    .option('--weight-decay <x>', 'AdamW weight decay (default 1e-3)')
    .option(
      '--last-epoch-lr <x>',
      "learning rate of the last epoch (default 5e-5; 'none' keeps the schedule's)",
    )
    .option('--max-grad-norm <x>', 'clip the total gradient norm (default: off)')
    .option('--plateau-factor <x>', 'ReduceLROnPlateau factor (default 0.9)')
    .option('--plateau-patience <n>', 'ReduceLROnPlateau patience in epochs (default 5)')
    .option('--loss-weights <list>', 'e.g. dice=1,bce=1,iou=1,sim=0.01,cat=0.01')
    .option('--sampler <kind>', 'modality-balanced (default), uniform-cases or uniform-slices')
    .option('--seed <n>', 'run seed (default 2024)')
    .option('--workers <n>', 'data loader worker threads (default 2)')
    .option('--prefetch <n>', 'batches built ahead (default 2)')
    .option('--checkpoint-every <n>', 'also write a resumable checkpoint every n steps')
    .option('--init <file>', 'start from MCP-MedSAM, LiteMedSAM or bare TinyViT weights')
    .option('--resume [file]', 'continue a run (default: <out>/checkpoint.safetensors)')
    .option('--clip-vision <onnx>', 'CLIP image tower as ONNX (pixel_values -> image_embeds)')
    .option('--clip-text <json>', 'CLIP text-feature table (JSON)')
    .option('--no-gradient-checkpointing', 'keep every activation (faster, more memory)')
    .option(
      '--freeze-batch-norm',
      'normalise with the running statistics in training too (small mixed batches)',
    )
    .option('--backend <name>', 'tensorflow-gpu, tensorflow, wasm or cpu (default: best available)')
    .option('--validation-data <dir>', 'npz cases to evaluate after each epoch')
    .option('--progress', 'show the progress bar even when stderr is not a terminal')
    .option('--no-progress', 'never show the progress bar')
    .action(async (flags: TrainFlags) => {
      const config = await trainConfigFromFlags(flags);
      const r: TrainResult = await train(config);
      process.stderr.write(
        `${r.interrupted ? 'stopped' : 'finished'} after ${r.steps} steps; run directory ${r.outDir}\n`,
      );
      if (r.interrupted) process.exitCode = 130;
    });
}
