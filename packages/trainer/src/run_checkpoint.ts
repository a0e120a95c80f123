/**
 * Resumable run checkpoints: one safetensors file holding the model's state dict (`model.*`),
 * the AdamW moments (`optim.exp_avg.*`, `optim.exp_avg_sq.*`) and, as JSON in the metadata, the
 * step counters, the optimizer's hyperparameters and per-parameter step counts, the scheduler,
 * the loader (sampler state and next draw) and the loop's own counters. Written to a temporary
 * file and renamed, so a crash never leaves a half-written checkpoint behind.
 */
import { FormatError, InputError } from '@mcp-medsam/core';
import { writeFileAtomic, type NdArray } from '@mcp-medsam/io';
import {
  loadStateDict,
  readCheckpointFile,
  stateDictArrays,
  writeSafetensors,
  type McpMedsam,
} from '@mcp-medsam/model';
import type { LoaderState } from '@mcp-medsam/samplers';
import type { AdamW, AdamWState } from './optim/adamw.js';
import type { ReduceLROnPlateau, ReduceLROnPlateauState } from './optim/reduce_lr_on_plateau.js';

export const RUN_CHECKPOINT_FORMAT = 'mcp-medsam-run/1';

/** The loop's own counters. */
export interface LoopState {
  /** Optimizer steps done. */
  step: number;
  /** Sum and count of the step losses of the current epoch (for the scheduler). */
  epochLossSum: number;
  epochSteps: number;
  /** Best epoch loss so far (null before the first epoch ends). */
  bestLoss: number | null;
  /** Mean loss of every finished epoch, in order. */
  epochLosses: number[];
}

export interface RunMeta {
  format: typeof RUN_CHECKPOINT_FORMAT;
  preset: string;
  loop: LoopState;
  optimizer: { options: AdamWState['options']; steps: Record<string, number> };
  scheduler: ReduceLROnPlateauState;
  loader: LoaderState;
  /** The configuration the run was started with (for information). */
  config: unknown;
}

export interface RunParts {
  model: McpMedsam;
  optimizer: AdamW;
  scheduler: ReduceLROnPlateau;
  loader: LoaderState;
  loop: LoopState;
  preset: string;
  config: unknown;
}

/** Writes a run checkpoint atomically. */
export async function saveRunCheckpoint(file: string, parts: RunParts): Promise<void> {
  const tensors = new Map<string, NdArray>();
  for (const [k, a] of stateDictArrays(parts.model)) tensors.set(`model.${k}`, a);
  const opt = parts.optimizer.state();
  const steps: Record<string, number> = {};
  for (const [name, s] of Object.entries(opt.params)) {
    steps[name] = s.step;
    tensors.set(`optim.exp_avg.${name}`, { dtype: 'float32', shape: s.shape, data: s.exp_avg });
    tensors.set(`optim.exp_avg_sq.${name}`, { dtype: 'float32', shape: s.shape, data: s.exp_avg_sq });
  }
  const meta: RunMeta = {
    format: RUN_CHECKPOINT_FORMAT,
    preset: parts.preset,
    loop: parts.loop,
    optimizer: { options: opt.options, steps },
    scheduler: parts.scheduler.state(),
    loader: parts.loader,
    config: parts.config,
  };
  await writeFileAtomic(file, writeSafetensors(tensors, { mcp_medsam_run: JSON.stringify(meta) }));
}

/** What `readRunCheckpoint` gives: the model state dict, the optimizer state and the metadata. */
export interface RunCheckpoint {
  meta: RunMeta;
  stateDict: Map<string, NdArray>;
  optimizer: AdamWState;
}

export async function readRunCheckpoint(file: string): Promise<RunCheckpoint> {
  const ck = await readCheckpointFile(file);
  const raw = ck.meta.mcp_medsam_run;
  if (ck.format !== 'safetensors' || typeof raw !== 'string')
    throw new FormatError('not a run checkpoint (no mcp_medsam_run metadata); use --init for weights', {
      file,
    });
  let meta: RunMeta;
  try {
    meta = JSON.parse(raw) as RunMeta;
  } catch (e) {
    throw new FormatError(`run checkpoint metadata is not valid JSON: ${(e as Error).message}`, { file });
  }
  if (meta.format !== RUN_CHECKPOINT_FORMAT)
    throw new FormatError(`run checkpoint format ${String(meta.format)}, expected ${RUN_CHECKPOINT_FORMAT}`, {
      file,
    });
  const stateDict = new Map<string, NdArray>();
  const moments = new Map<string, NdArray>();
  for (const [k, a] of ck.stateDict) {
    if (k.startsWith('model.')) stateDict.set(k.slice(6), a);
    else if (k.startsWith('optim.')) moments.set(k, a);
    else throw new FormatError(`run checkpoint: unexpected tensor ${k}`, { file });
  }
  const params: AdamWState['params'] = {};
  for (const [name, step] of Object.entries(meta.optimizer.steps)) {
    const m = moments.get(`optim.exp_avg.${name}`);
    const v = moments.get(`optim.exp_avg_sq.${name}`);
    if (!m || !v) throw new FormatError(`run checkpoint: optimizer moments of ${name} are missing`, { file });
    Object.defineProperty(params, name, {
      value: { step, shape: m.shape, exp_avg: m.data as Float32Array, exp_avg_sq: v.data as Float32Array },
      enumerable: true,
      writable: true,
      configurable: true,
    });
  }
  return { meta, stateDict, optimizer: { options: meta.optimizer.options, params } };
}

/** Puts a run checkpoint's model, optimizer and scheduler state in place (strictly). */
export function restoreRun(
  ck: RunCheckpoint,
  parts: Pick<RunParts, 'model' | 'optimizer' | 'scheduler'>,
  file?: string,
): void {
  const report = loadStateDict(parts.model, ck.stateDict, { strict: true, file });
  if (report.kind !== 'full')
    throw new InputError(`run checkpoint holds a ${report.kind} state dict, not a full model`, { file });
  parts.optimizer.loadState(ck.optimizer);
  parts.scheduler.loadState(ck.meta.scheduler);
}
