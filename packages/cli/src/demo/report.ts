/** The demo's report: what was trained on, how the model and the box baseline scored, how long it took. */
import type { EvaluateResult } from '@mcp-medsam/metrics';
import type { CaseReport } from '@mcp-medsam/runtime';
import type { StepLog, TrainResult } from '@mcp-medsam/trainer';
import type { DemoData } from './data.js';

export interface DemoReport {
  preset: 'tiny';
  backend: string;
  data: { source: DemoData['source']; trainCases: number; testCases: number };
  /** Where training started: the bundled checkpoint (with its scores on the same test cases) or random weights. */
  start: { checkpoint: string | null; dsc: number | null; nsd: number | null };
  training: {
    steps: number;
    samples: number;
    minutes: number;
    /** Mean loss of the first and the last 20 steps. */
    lossStart: number;
    lossEnd: number;
  };
  /** Macro averages over modalities, as the challenge ranks. */
  dsc: number;
  nsd: number;
  boxBaselineDsc: number;
  boxBaselineNsd: number;
  beatsBoxBaseline: boolean;
  byModality: { modality: string; cases: number; dsc: number; nsd: number; boxDsc: number; boxNsd: number }[];
  cases: { case: string; dsc: number; nsd: number; boxDsc: number; seconds: number }[];
  failures: { case: string; error: string }[];
  seconds: Record<string, number>;
  files: { overlays: string[]; lossCurve: string; model: string; onnx: string; clip: string };
}

export interface ReportInput {
  data: DemoData;
  train: TrainResult;
  steps: StepLog[];
  inference: CaseReport[];
  model: EvaluateResult;
  baseline: EvaluateResult;
  /** Scores of the starting checkpoint, when there was one. */
  before?: EvaluateResult;
  init: string | null;
  seconds: Record<string, number>;
  overlays: string[];
}

const mean = (xs: number[]) => (xs.length ? xs.reduce((a, b) => a + b, 0) / xs.length : NaN);

export function buildReport(r: ReportInput): DemoReport {
  const losses = r.steps.map((s) => s.loss);
  const boxByCase = new Map(r.baseline.cases.map((c) => [c.case, c]));
  const boxByModality = new Map(r.baseline.byModality.map((m) => [m.modality, m]));
  const timeByCase = new Map(r.inference.map((c) => [c.name, c.seconds]));
  return {
    preset: 'tiny',
    backend: r.train.backend,
    data: { source: r.data.source, trainCases: r.data.trainCases, testCases: r.data.testCases },
    start: {
      checkpoint: r.init,
      dsc: r.before ? r.before.overall.dsc : null,
      nsd: r.before ? r.before.overall.nsd : null,
    },
    training: {
      steps: r.train.steps,
      samples: r.steps.reduce((a, s) => a + s.samples, 0),
      minutes: r.seconds.train / 60,
      lossStart: mean(losses.slice(0, 20)),
      lossEnd: mean(losses.slice(-20)),
    },
    dsc: r.model.overall.dsc,
    nsd: r.model.overall.nsd,
    boxBaselineDsc: r.baseline.overall.dsc,
    boxBaselineNsd: r.baseline.overall.nsd,
    beatsBoxBaseline: r.model.overall.dsc > r.baseline.overall.dsc,
    byModality: r.model.byModality
      .filter((m) => m.n > 0)
      .map((m) => ({
        modality: m.modality,
        cases: m.n,
        dsc: m.dsc,
        nsd: m.nsd,
        boxDsc: boxByModality.get(m.modality)?.dsc ?? NaN,
        boxNsd: boxByModality.get(m.modality)?.nsd ?? NaN,
      })),
    cases: r.model.cases.map((c) => ({
      case: c.case,
      dsc: c.dsc,
      nsd: c.nsd,
      boxDsc: boxByCase.get(c.case)?.dsc ?? NaN,
      seconds: timeByCase.get(c.case) ?? NaN,
    })),
    failures: [
      ...r.inference.filter((c) => !c.ok).map((c) => ({ case: c.name, error: c.error ?? 'failed' })),
      ...r.model.failures
        .filter((f) => f.code !== 'missing')
        .map((f) => ({ case: f.case, error: `${f.code}: ${f.message}` })),
    ],
    seconds: r.seconds,
    files: {
      overlays: r.overlays,
      lossCurve: 'loss-curve.png',
      model: 'model.safetensors',
      onnx: 'onnx/',
      clip: 'clip/',
    },
  };
}

const f4 = (x: number) => (Number.isFinite(x) ? x.toFixed(4) : '–');

export function renderReportMarkdown(r: DemoReport): string {
  const lines = [
    '# MCP-MedSAM demo report',
    '',
    `The tiny preset trained for ${r.training.steps} steps (${r.training.samples} samples, ` +
      `${r.training.minutes.toFixed(1)} min on ${r.backend}) on ${r.data.trainCases} ${r.data.source} cases, ` +
      (r.start.checkpoint
        ? `starting from the bundled checkpoint \`${r.start.checkpoint}\` (trained on the synthetic generator's cases beforehand; see packages/cli/assets/README.md), `
        : 'starting from random weights, ') +
      `then exported to ONNX and run with onnxruntime on ${r.data.testCases} held-out cases.`,
    '',
    `**${r.beatsBoxBaseline ? 'It beats' : 'It does not beat'} the box baseline** (each box prompt filled as the mask).`,
    '',
    '| | DSC | NSD |',
    '|---|---:|---:|',
    `| MCP-MedSAM (tiny) | ${f4(r.dsc)} | ${f4(r.nsd)} |`,
    ...(r.start.checkpoint
      ? [`| the starting checkpoint, before this run | ${f4(r.start.dsc!)} | ${f4(r.start.nsd!)} |`]
      : []),
    `| box baseline | ${f4(r.boxBaselineDsc)} | ${f4(r.boxBaselineNsd)} |`,
    '',
    'Means over modalities (each modality weighs the same, as the challenge ranks); NSD at 2 px / 2 mm.',
    '',
    '## By modality',
    '',
    '| modality | cases | DSC | box DSC | NSD | box NSD |',
    '|---|---:|---:|---:|---:|---:|',
    ...r.byModality.map(
      (m) =>
        `| ${m.modality} | ${m.cases} | ${f4(m.dsc)} | ${f4(m.boxDsc)} | ${f4(m.nsd)} | ${f4(m.boxNsd)} |`,
    ),
    '',
    '## Training',
    '',
    `Loss (dice + BCE + IoU + the small alignment terms), mean of the first 20 steps ${f4(r.training.lossStart)}, ` +
      `of the last 20 ${f4(r.training.lossEnd)}.`,
    '',
    `![loss curve](${r.files.lossCurve})`,
    '',
    '## Cases',
    '',
    '| case | DSC | box DSC | NSD | seconds | overlay |',
    '|---|---:|---:|---:|---:|---|',
    ...r.cases.map((c) => {
      const png = r.files.overlays.find((o) => o.endsWith(c.case.replace(/\.npz$/, '.png')));
      return `| ${c.case} | ${f4(c.dsc)} | ${f4(c.boxDsc)} | ${f4(c.nsd)} | ${c.seconds.toFixed(2)} | ${png ? `[png](${png})` : ''} |`;
    }),
    '',
    'Overlays: predicted labels tinted, ground-truth outline white, box prompts yellow (3D: the middle slice of the first box).',
    '',
  ];
  if (r.failures.length)
    lines.push('## Failures', '', ...r.failures.map((f) => `- ${f.case}: ${f.error}`), '');
  lines.push(
    '## Time',
    '',
    '| step | seconds |',
    '|---|---:|',
    ...Object.entries(r.seconds).map(([k, v]) => `| ${k} | ${v.toFixed(1)} |`),
    '',
    `Files: \`${r.files.model}\` (weights), \`${r.files.onnx}\` (ONNX export), \`${r.files.clip}\` (the CLIP stand-in), ` +
      '`segs/` (predictions), `box-baseline/`, `run/` (training log and checkpoints).',
    '',
  );
  return lines.join('\n');
}
