/**
 * The training loop (spec §9.2): modality-balanced batches from the worker loader, frozen CLIP
 * features, one AdamW step per batch (or per `accumulate` micro-batches), the epoch loss into
 * ReduceLROnPlateau, the last epoch at a fixed learning rate, and everything a run needs to be
 * stopped and continued: resumable checkpoints every N steps and at each epoch's end, the latest
 * and best weights, `log.jsonl` and the loss curve. Ctrl-C finishes the current step, writes a
 * checkpoint and returns.
 */
import { appendFile, mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { initBackend, InputError, nn, tf } from '@mcp-medsam/core';
import { writeFileAtomic } from '@mcp-medsam/io';
import { McpMedsam, getPreset, saveWeights, type PromptExtensionSpec } from '@mcp-medsam/model';
import {
  CachedImageFeatures,
  OnnxClipVision,
  TextFeatureTable,
  type ImageFeatureProvider,
} from '@mcp-medsam/prompts';
import {
  buildCaseIndex,
  createLoader,
  modalityBalanced,
  uniformCases,
  uniformSlices,
  type CaseIndex,
  type Loader,
  type Sampler,
} from '@mcp-medsam/samplers';
import {
  batchWithClip,
  disposeBatch,
  extensionRng,
  forwardInputs,
  type ClipProviders,
  type TrainBatch,
} from './batch.js';
import type { TrainConfig } from './config.js';
import { calibrateBatchNorm } from './calibrate_batch_norm.js';
import { initWeights, type InitReport } from './init_weights.js';
import { writeLossCurve } from './loss_curve.js';
import { AdamW } from './optim/adamw.js';
import { GradAccumulator } from './optim/accumulate.js';
import { clipGradNorm } from './optim/clip.js';
import { ReduceLROnPlateau } from './optim/reduce_lr_on_plateau.js';
import { ProgressLine } from './progress.js';
import { readRunCheckpoint, restoreRun, saveRunCheckpoint, type LoopState } from './run_checkpoint.js';
import { batchGradients, type LossValues } from './train_step.js';
import { buildValidationSet, validate, type ValidationResult, type ValidationSet } from './validation.js';

/** One line of log.jsonl. */
export interface StepLog extends LossValues {
  step: number;
  epoch: number;
  lr: number;
  loss: number;
  samples: number;
  seconds: number;
  gradNorm?: number;
}

export interface TrainHooks {
  /** Called after every step (after the log line is written). */
  onStep?(log: StepLog): void;
  /** Called after every epoch with its mean loss (and the validation scores when validated). */
  onEpoch?(epoch: number, meanLoss: number, lr: number, validation?: ValidationResult): void;
  /** Replaces the ONNX/JSON CLIP providers (tests, custom towers). */
  clip?: ClipProviders & { vision: ImageFeatureProvider };
  /** Asked after every step; true stops the run as Ctrl-C does (checkpoint, then return). */
  shouldStop?(): boolean;
  /** Messages for the user (default: stderr). */
  log?(msg: string): void;
  /**
   * Prompt extensions of the trained model (see `McpMedsamOptions`); each derives its inputs
   * from the samples with `sampleInputs`, from a generator seeded by the run seed and the step.
   * Prefer functions: a new model is built per run.
   */
  promptExtensions?: readonly PromptExtensionSpec[];
}

export interface TrainResult {
  steps: number;
  epochs: number;
  /** Loss of every step of the run so far (a resumed run includes the steps before its checkpoint). */
  stepLosses: number[];
  epochLosses: number[];
  interrupted: boolean;
  outDir: string;
  init?: InitReport;
  backend: string;
}

export const RUN_FILES = {
  checkpoint: 'checkpoint.safetensors',
  latest: 'model_latest.safetensors',
  best: 'model_best.safetensors',
  log: 'log.jsonl',
  validation: 'validation.jsonl',
  curve: 'loss.png',
  config: 'config.json',
} as const;

function makeSampler(kind: TrainConfig['sampler'], index: CaseIndex, seed: number): Sampler {
  if (kind === 'uniform-cases') return uniformCases(index, { seed });
  if (kind === 'uniform-slices') return uniformSlices(index, { seed });
  return modalityBalanced(index, { seed });
}

export async function train(config: TrainConfig, hooks: TrainHooks = {}): Promise<TrainResult> {
  const say = hooks.log ?? ((m: string) => process.stderr.write(`${m}\n`));
  const out = path.resolve(config.out);
  await mkdir(out, { recursive: true });
  const backend = (await initBackend({ backend: config.backend, log: say })).name;

  const index = await buildCaseIndex(config.data, { cachePath: path.join(out, 'case-index.json') });
  if (index.entries.length === 0) throw new InputError(`no usable npz case in ${config.data}`);
  const stepsPerEpoch = config.stepsPerEpoch ?? Math.ceil(index.entries.length / config.batchSize);
  const totalSteps = config.steps ?? config.epochs * stepsPerEpoch;
  const epochs = Math.ceil(totalSteps / stepsPerEpoch);

  // Fresh weights are drawn from the run seed, so two runs with one configuration start alike.
  nn.setInitSeed(config.seed);
  const model = new McpMedsam(getPreset(config.preset), { promptExtensions: hooks.promptExtensions });
  const extensions = model.promptExtensions;
  const optimizer = new AdamW(model.namedParameters(), {
    lr: config.lr,
    betas: config.betas,
    eps: config.eps,
    weightDecay: config.weightDecay,
  });
  const scheduler = new ReduceLROnPlateau(optimizer, config.plateau);
  let loop: LoopState = { step: 0, epochLossSum: 0, epochSteps: 0, bestLoss: null, epochLosses: [] };
  let loaderResume;
  let init: InitReport | undefined;
  const resumeFile =
    config.resume === true ? path.join(out, RUN_FILES.checkpoint) : config.resume || undefined;
  if (resumeFile) {
    const ck = await readRunCheckpoint(resumeFile);
    if (ck.meta.preset !== config.preset)
      throw new InputError(
        `the checkpoint is of preset ${ck.meta.preset}, the run asks for ${config.preset}`,
        {
          file: resumeFile,
        },
      );
    restoreRun(ck, { model, optimizer, scheduler }, resumeFile);
    loop = ck.meta.loop;
    loaderResume = ck.meta.loader;
    say(`resuming from ${resumeFile} at step ${loop.step}`);
  } else if (config.init) {
    init = await initWeights(model, config.init);
    say(
      `initialised from ${config.init}: ${init.kind}, ${init.loaded} tensors` +
        (init.kind === 'partial'
          ? ` (${init.missing.length} model keys left as initialised, ${init.skipped.length} file keys skipped)`
          : ''),
    );
  }
  model.train().setGradientCheckpointing(config.gradientCheckpointing);
  if (config.freezeBatchNorm) nn.freezeBatchNorm(model);
  await writeFile(path.join(out, RUN_FILES.config), JSON.stringify(config, null, 2) + '\n');
  const stepLosses = await startLog(path.join(out, RUN_FILES.log), loop.step);

  const ownClip = !hooks.clip;
  const clip = hooks.clip ?? {
    vision: new CachedImageFeatures(await OnnxClipVision.create(config.clipVision)),
    text: await TextFeatureTable.fromFile(config.clipText),
  };

  const loader: Loader = createLoader({
    index,
    sampler: makeSampler(config.sampler, index, config.seed),
    batchSize: config.batchSize,
    workers: config.workers,
    prefetch: config.prefetch,
    seed: config.seed,
    volumeCacheDir: path.join(out, 'cache'),
    resume: loaderResume,
  });

  let interrupted = false;
  const onSigint = () => {
    if (interrupted) process.exit(130); // a second Ctrl-C: no checkpoint
    interrupted = true;
    say('\ninterrupt: finishing this step, then writing a checkpoint (Ctrl-C again to quit now)');
  };
  process.on('SIGINT', onSigint);
  const progress = new ProgressLine(
    totalSteps,
    loop.step,
    (config.progress ?? process.stderr.isTTY) ? process.stderr : null,
  );
  const epochEnds = loop.epochLosses.map((_, i) => (i + 1) * stepsPerEpoch);
  const checkpoint = () =>
    saveRunCheckpoint(path.join(out, RUN_FILES.checkpoint), {
      model,
      optimizer,
      scheduler,
      loader: loader.state(),
      loop,
      preset: config.preset,
      config,
    });

  let valSet: ValidationSet | null = null;
  if (config.validation) {
    valSet = await buildValidationSet(config.validation.data, config.validation.maxCases);
    for (const s of valSet.skipped) say(`validation: skipped ${s.file}: ${s.error}`);
    if (valSet.samples.length === 0)
      throw new InputError(`no validation sample from ${config.validation.data}`);
  }

  let samplesSeen = 0;
  try {
    if (config.freezeBatchNorm && !resumeFile && config.batchNormCalibration > 0) {
      const n = await calibrateBatchNorm(
        model,
        calibrationBatches(loader, clip, config.batchNormCalibration, extensions, config.seed),
      );
      say(`BatchNorm frozen at the statistics of ${n} batches`);
    }
    while (loop.step < totalSteps) {
      const epoch = Math.floor(loop.step / stepsPerEpoch);
      // Spec §9.3: the last epoch runs at a fixed learning rate (set at its start).
      if (
        config.lastEpochLr !== null &&
        epoch === epochs - 1 &&
        loop.step % stepsPerEpoch === 0 &&
        epochs > 1
      )
        optimizer.lr = config.lastEpochLr;
      const t0 = performance.now();
      const acc = config.accumulate > 1 ? new GradAccumulator() : null;
      let lossSum: LossValues | null = null;
      let grads: Map<string, tf.Tensor> | null = null;
      let n = 0;
      for (let micro = 0; micro < config.accumulate; micro++) {
        const r = await loader.next();
        if (r.done) throw new InputError('the loader ended before the run did');
        const batch: TrainBatch = await batchWithClip(
          r.value.samples.map((s) => s.sample),
          clip,
          extensions.length ? { extensions, rng: extensionRng(config.seed, loop.step, micro) } : undefined,
        );
        n += r.value.samples.length;
        try {
          const g = batchGradients(model, batch, config.lossWeights);
          lossSum = lossSum ? addLosses(lossSum, g.loss) : g.loss;
          if (acc) {
            acc.add(g.grads);
            tf.dispose([...g.grads.values()]);
          } else grads = g.grads;
        } finally {
          disposeBatch(batch);
        }
      }
      if (acc) {
        grads = acc.mean();
        acc.dispose();
      }
      const loss = scaleLosses(lossSum!, 1 / config.accumulate);
      let gradNorm: number | undefined;
      try {
        if (config.maxGradNorm !== undefined)
          gradNorm = clipGradNorm(grads as Map<string, tf.Tensor | null | undefined>, config.maxGradNorm);
        const lr = optimizer.lr;
        optimizer.step(grads!);
        loop.step++;
        loop.epochLossSum += loss.total;
        loop.epochSteps++;
        samplesSeen += n;
        stepLosses.push(loss.total);
        const entry: StepLog = {
          step: loop.step,
          epoch,
          lr,
          ...loss,
          loss: loss.total,
          samples: n,
          seconds: (performance.now() - t0) / 1000,
          ...(gradNorm !== undefined ? { gradNorm } : {}),
        };
        await appendFile(path.join(out, RUN_FILES.log), JSON.stringify(entry) + '\n');
        hooks.onStep?.(entry);
        progress.update(loop.step, samplesSeen, loss.total, epoch);
      } finally {
        tf.dispose([...grads!.values()]);
      }

      const epochEnd = loop.step % stepsPerEpoch === 0 || loop.step === totalSteps;
      if (epochEnd) {
        const mean = loop.epochLossSum / loop.epochSteps;
        loop.epochLosses.push(mean);
        epochEnds.push(loop.step);
        loop.epochLossSum = 0;
        loop.epochSteps = 0;
        scheduler.step(mean);
        await saveWeights(model, path.join(out, RUN_FILES.latest));
        if (loop.bestLoss === null || mean < loop.bestLoss) {
          loop.bestLoss = mean;
          await saveWeights(model, path.join(out, RUN_FILES.best));
        }
        await writeLossCurve(path.join(out, RUN_FILES.curve), stepLosses, loop.epochLosses, epochEnds);
        let val: ValidationResult | undefined;
        if (valSet && config.validation && (epoch + 1) % config.validation.every === 0) {
          val = await validate(model, valSet, clip);
          await appendFile(
            path.join(out, RUN_FILES.validation),
            JSON.stringify({ step: loop.step, epoch, loss: mean, ...val }) + '\n',
          );
          say(
            `epoch ${epoch + 1}: loss ${mean.toFixed(4)}, validation DSC ${val.dsc.toFixed(4)} NSD ${val.nsd.toFixed(4)} (${val.cases} cases)`,
          );
        }
        hooks.onEpoch?.(epoch, mean, optimizer.lr, val);
      }
      if (epochEnd || (config.checkpointEvery > 0 && loop.step % config.checkpointEvery === 0))
        await checkpoint();
      if (interrupted || hooks.shouldStop?.()) {
        interrupted = true;
        if (!epochEnd) await checkpoint();
        break;
      }
    }
  } finally {
    progress.end();
    process.off('SIGINT', onSigint);
    await loader.close();
    if (ownClip) await clip.vision.close();
    optimizer.dispose();
    model.dispose();
  }
  return {
    steps: loop.step,
    epochs,
    stepLosses,
    epochLosses: loop.epochLosses,
    interrupted,
    outDir: out,
    init,
    backend,
  };
}

/** The model inputs of the loader's next `count` batches, each disposed once used. */
async function* calibrationBatches(
  loader: Loader,
  clip: ClipProviders,
  count: number,
  extensions: McpMedsam['promptExtensions'],
  seed: number,
): AsyncGenerator<ReturnType<typeof forwardInputs>> {
  for (let i = 0; i < count; i++) {
    const r = await loader.next();
    if (r.done) return;
    // Step -1-i: draws of their own, apart from those of the training steps.
    const sampling = extensions.length ? { extensions, rng: extensionRng(seed, -1 - i) } : undefined;
    const batch = await batchWithClip(
      r.value.samples.map((s) => s.sample),
      clip,
      sampling,
    );
    try {
      yield forwardInputs(batch);
    } finally {
      disposeBatch(batch);
    }
  }
}

/**
 * Starts `log.jsonl` at step `upTo`: a fresh run empties it; a resumed run keeps the lines up to
 * its checkpoint and drops those of steps after it (written before a crash, and about to be run
 * again), so every step appears once. Returns the kept steps' losses, for the loss curve.
 */
async function startLog(file: string, upTo: number): Promise<number[]> {
  let kept: StepLog[] = [];
  if (upTo > 0) {
    const text = await readFile(file, 'utf8').catch(() => '');
    kept = text
      .split('\n')
      .filter((l) => l.trim())
      .map((l) => JSON.parse(l) as StepLog)
      .filter((l) => l.step <= upTo);
  }
  await writeFileAtomic(file, new TextEncoder().encode(kept.map((l) => JSON.stringify(l) + '\n').join('')));
  return kept.map((l) => l.loss);
}

function addLosses(a: LossValues, b: LossValues): LossValues {
  const o = { ...a };
  for (const k of Object.keys(b) as (keyof LossValues)[]) o[k] += b[k];
  return o;
}

function scaleLosses(a: LossValues, s: number): LossValues {
  const o = { ...a };
  for (const k of Object.keys(a) as (keyof LossValues)[]) o[k] *= s;
  return o;
}
