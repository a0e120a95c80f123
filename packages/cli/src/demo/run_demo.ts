/**
 * `pnpm demo`: MCP-MedSAM learning, exporting and segmenting on a laptop, with no downloads.
 * The steps are the library's own, in the order a user would run them: data → `train` (tiny
 * preset, modality-balanced) → `exportOnnx` → runtime inference on the held-out cases →
 * challenge metrics against the box baseline → report.
 */
import { copyFile, mkdir, readdir, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { OnnxClipVision, TextFeatureTable } from '@mcp-medsam/prompts';
import { writeStandinClip } from '@mcp-medsam/exporter';
import { evaluateDirs, type EvaluateResult } from '@mcp-medsam/metrics';
import { readChallengeCase, readNpzFile } from '@mcp-medsam/io';
import {
  MedsamPredictor,
  OnnxEngine,
  exportCheckpoint,
  inferDirectory,
  type CaseReport,
} from '@mcp-medsam/runtime';
import { RUN_FILES, parseTrainConfig, train, type StepLog } from '@mcp-medsam/trainer';
import { writeBoxBaseline } from './box_baseline.js';
import { prepareDemoData } from './data.js';
import { writeOverlay } from './overlay.js';
import { buildReport, renderReportMarkdown, type DemoReport } from './report.js';

export interface DemoOptions {
  /** Output folder (default demo-output). */
  out: string;
  /** A folder of challenge npz cases to use instead of the synthetic set. */
  data?: string;
  seed?: number;
  /** Training time budget in minutes (default 5; the run stops at the first epoch end past it). */
  minutes?: number;
  /** Most training steps (default: as many as fit in the budget). */
  steps?: number;
  /** A quick run for CI and smoke tests: two cases per kind, 20 steps. */
  short?: boolean;
  /**
   * Start from seeded random weights instead of the bundled synthetic-data checkpoint. From
   * scratch the tiny model needs about half an hour of CPU to pass the box baseline.
   */
  fromScratch?: boolean;
  /** onnxruntime threads for inference (default 2). */
  threads?: number;
  log?: (line: string) => void;
}

/** Steps between weight snapshots: the run stops only at one, so the exported weights are whole. */
const STEPS_PER_EPOCH = 20;

/**
 * The tiny preset after about three CPU hours on the synthetic set (assets/README.md says how it
 * was made). A few minutes from random weights are not enough to pass the box baseline on a laptop
 * CPU, so the demo continues training from here by default.
 */
export const DEMO_INIT_CHECKPOINT = fileURLToPath(
  new URL('../../assets/tiny-synthetic.safetensors', import.meta.url),
);

export async function runDemo(opts: DemoOptions): Promise<DemoReport> {
  const log = opts.log ?? ((l: string) => process.stderr.write(l + '\n'));
  const t0 = performance.now();
  const seconds: Record<string, number> = {};
  const lap = (name: string, since: number) => (seconds[name] = (performance.now() - since) / 1000);
  const seed = opts.seed ?? 2024;
  const init = opts.fromScratch ? undefined : DEMO_INIT_CHECKPOINT;
  const stages = ['data', ...(init ? ['before'] : []), 'train', 'segment', 'score'];
  const step = (name: string) => `${stages.indexOf(name) + 1}/${stages.length}`;
  const out = path.resolve(opts.out);
  const budgetS = (opts.short ? 0 : (opts.minutes ?? 5)) * 60;
  const maxSteps = opts.steps ?? (opts.short ? STEPS_PER_EPOCH : 100_000);
  await mkdir(out, { recursive: true });
  // Outputs of an earlier demo in the same folder would otherwise mix into this one's.
  for (const d of ['data', 'run', 'onnx', 'segs', 'box-baseline', 'overlays', 'before'])
    await rm(path.join(out, d), { recursive: true, force: true });

  let t = performance.now();
  log(
    `[demo ${step('data')}] data: ${opts.data ? `splitting ${opts.data}` : 'generating the synthetic multi-modality set'}`,
  );
  const data = await prepareDemoData({
    out,
    data: opts.data,
    seed,
    trainPerKind: opts.short ? 2 : 12,
    // Four per kind: with two, one odd case moved a modality's mean by a quarter of its range.
    testPerKind: opts.short ? 1 : 4,
  });
  const clip = await writeStandinClip(path.join(out, 'clip'));
  lap('data', t);
  log(
    `           ${data.trainCases} training and ${data.testCases} test cases in ${path.relative(process.cwd(), path.dirname(data.trainDir)) || '.'}`,
  );

  let before: EvaluateResult | undefined;
  if (init) {
    t = performance.now();
    log(
      `[demo ${step('before')}] scoring the starting checkpoint (${path.basename(init)}) on the test cases`,
    );
    before = (
      await segmentAndScore(init, data.testDir, path.join(out, 'before'), clip, opts.threads, () => {})
    ).scores;
    lap('before', t);
    log(`           DSC ${before.overall.dsc.toFixed(4)} before this run's training`);
  }

  t = performance.now();
  const runDir = path.join(out, 'run');
  log(
    `[demo ${step('train')}] training the tiny preset on CPU ${init ? 'from the bundled checkpoint ' : 'from random weights '}` +
      (opts.short ? `for ${maxSteps} steps (short mode)` : `for about ${budgetS / 60} minutes`),
  );
  const config = parseTrainConfig({
    preset: 'tiny',
    ...(init ? { init } : {}),
    data: data.trainDir,
    out: runDir,
    steps: maxSteps,
    stepsPerEpoch: STEPS_PER_EPOCH,
    batchSize: 2,
    // From the bundle: the rate its last run ended at (assets/README.md).
    lr: init ? 3e-4 : 2e-3,
    lastEpochLr: null,
    sampler: 'modality-balanced',
    seed,
    workers: 1,
    gradientCheckpointing: false,
    // Batches of two images of different modalities: batch statistics would not be the ones the
    // exported model normalises with.
    freezeBatchNorm: true,
    // The bundled checkpoint was trained with frozen statistics: they are part of what it learned.
    batchNormCalibration: init ? 0 : 8,
    clipVision: clip.vision,
    clipText: clip.text,
    progress: false,
  });
  const steps: StepLog[] = [];
  let lastReport = performance.now();
  const result = await train(config, {
    log: (m) => log(`           ${m}`),
    onStep: (s) => {
      steps.push(s);
      if (performance.now() - lastReport > 15_000 || s.step === 1) {
        lastReport = performance.now();
        const recent = steps.slice(-STEPS_PER_EPOCH);
        const mean = recent.reduce((a, b) => a + b.loss, 0) / recent.length;
        const el = (performance.now() - t) / 1000;
        log(
          `           step ${s.step}, loss ${mean.toFixed(3)} (mean of the last ${recent.length}), ${el.toFixed(0)} s`,
        );
      }
    },
    shouldStop: () =>
      budgetS > 0 && steps.length % STEPS_PER_EPOCH === 0 && (performance.now() - t) / 1000 >= budgetS,
  });
  lap('train', t);
  const weights = path.join(runDir, RUN_FILES.latest);
  await copyFile(weights, path.join(out, 'model.safetensors'));
  await copyFile(path.join(runDir, RUN_FILES.curve), path.join(out, 'loss-curve.png'));

  t = performance.now();
  log(
    `[demo ${step('segment')}] exporting to ONNX and segmenting the ${data.testCases} test cases with onnxruntime`,
  );
  const done = await segmentAndScore(weights, data.testDir, out, clip, opts.threads, (l) =>
    log(`           ${l}`),
  );
  const cases = done.cases;
  const model = done.scores;
  lap('segment', t);

  t = performance.now();
  log(`[demo ${step('score')}] scoring against the box baseline`);
  const baselineDir = path.join(out, 'box-baseline');
  await writeBoxBaseline(data.testDir, baselineDir);
  const segsDir = path.join(out, 'segs');
  const baseline = await evaluateDirs({ predDir: baselineDir, gtDir: data.testDir });
  const overlays = await writeOverlays(data.testDir, segsDir, path.join(out, 'overlays'));
  lap('evaluate', t);
  seconds.total = (performance.now() - t0) / 1000;

  const report = buildReport({
    data,
    train: result,
    steps,
    inference: cases,
    model,
    baseline,
    before,
    init: init ? path.basename(init) : null,
    seconds,
    overlays: overlays.map((f) => path.relative(out, f)),
  });
  await writeFile(path.join(out, 'report.json'), JSON.stringify(report, null, 2) + '\n');
  await writeFile(path.join(out, 'report.md'), renderReportMarkdown(report));
  summarize(report, out, log, model);
  return report;
}

/** Exports a checkpoint to `<dir>/onnx`, segments `testDir` into `<dir>/segs` and scores it. */
async function segmentAndScore(
  weights: string,
  testDir: string,
  dir: string,
  clip: { vision: string; text: string },
  threads: number | undefined,
  log: (line: string) => void,
): Promise<{ cases: CaseReport[]; scores: EvaluateResult }> {
  const onnxDir = path.join(dir, 'onnx');
  const segsDir = path.join(dir, 'segs');
  await exportCheckpoint(weights, onnxDir, { preset: 'tiny' });
  const engine = await OnnxEngine.load(onnxDir, { threads: threads ?? 2 });
  const predictor = new MedsamPredictor(
    engine,
    await OnnxClipVision.create(clip.vision, { threads: 1 }),
    await TextFeatureTable.fromFile(clip.text),
  );
  let cases: CaseReport[];
  try {
    // The end slices of a 3D box are segmented too: the box baseline fills them as well.
    cases = await inferDirectory({ input: testDir, output: segsDir, predictor, inclusiveZ: true, log });
  } finally {
    await predictor.close();
  }
  return { cases, scores: await evaluateDirs({ predDir: segsDir, gtDir: testDir }) };
}

async function writeOverlays(testDir: string, segsDir: string, dir: string): Promise<string[]> {
  await mkdir(dir, { recursive: true });
  const files: string[] = [];
  for (const name of (await readdir(testDir)).filter((f) => f.endsWith('.npz')).sort()) {
    const c = await readChallengeCase(path.join(testDir, name));
    const segs = await readNpzFile(path.join(segsDir, name)).catch(() => null);
    if (!segs?.segs || !c.boxes) continue;
    const file = path.join(dir, name.replace(/\.npz$/, '.png'));
    await writeOverlay(file, { imgs: c.imgs, dims: c.dims, boxes: c.boxes, segs: segs.segs, gts: c.gts });
    files.push(file);
  }
  return files;
}

function summarize(report: DemoReport, out: string, log: (l: string) => void, model: EvaluateResult): void {
  const rel = path.relative(process.cwd(), out) || '.';
  const verdict = report.dsc > report.boxBaselineDsc ? 'beats' : 'does NOT beat';
  log('');
  log(
    `MCP-MedSAM (tiny, ${report.training.steps} steps, ${report.training.minutes.toFixed(1)} min) ${verdict} the box baseline:`,
  );
  log(
    `  DSC ${report.dsc.toFixed(4)} vs ${report.boxBaselineDsc.toFixed(4)}, NSD ${report.nsd.toFixed(4)} vs ${report.boxBaselineNsd.toFixed(4)}`,
  );
  if (model.failures.length) log(`  ${model.failures.length} test cases failed: see ${rel}/report.md`);
  log(`  total ${report.seconds.total.toFixed(0)} s`);
  log(`Look at: ${rel}/report.md, ${rel}/overlays/*.png, ${rel}/loss-curve.png`);
}
