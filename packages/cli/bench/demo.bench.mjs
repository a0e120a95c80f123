// `pnpm demo` as the README runs it (synthetic data, five minutes of training from the bundled
// checkpoint, ONNX export, onnxruntime inference, scoring), timed end to end. The goal: under ten
// minutes on 2 cores, and a DSC above the box baseline's. `BENCH_DEMO_SCRATCH=1` starts from
// random weights instead. Prints one JSON line.
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { runDemo } from '@mcp-medsam/cli';

const out = await mkdtemp(path.join(os.tmpdir(), 'mcp-medsam-demo-bench-'));
try {
  const t0 = performance.now();
  const r = await runDemo({
    out,
    fromScratch: process.env.BENCH_DEMO_SCRATCH === '1',
    log: (l) => process.stderr.write(l + '\n'),
  });
  process.stdout.write(
    JSON.stringify({
      name: 'demo',
      start: r.start.checkpoint ?? 'random',
      seconds: (performance.now() - t0) / 1000,
      stages: r.seconds,
      steps: r.training.steps,
      dsc: r.dsc,
      nsd: r.nsd,
      boxBaselineDsc: r.boxBaselineDsc,
      startDsc: r.start.dsc,
      beatsBoxBaseline: r.beatsBoxBaseline,
      byModality: r.byModality.map((m) => ({ modality: m.modality, dsc: m.dsc, boxDsc: m.boxDsc })),
      cpus: os.cpus().length,
    }) + '\n',
  );
} finally {
  await rm(out, { recursive: true, force: true });
}
