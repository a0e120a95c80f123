// Training forward + backward time per sample for each preset (wasm unless MCP_MEDSAM_BACKEND
// says otherwise; BENCH_PRESET=<name> for one preset). Each preset runs in its own process: a wasm heap exhaustion aborts the
// process, and is reported as a result line instead of ending the benchmark.
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { emit } from './common.mjs';

const PRESETS = [
  // forward + backward ≈ 3x the forward FLOPs (spec §13: 37.5 + 21.2 + 16.9 GMAC per sample);
  // two-phase backward recomputes the encoder once more (+37.5 GMAC).
  { preset: 'mcp-medsam', batch: 1, gflopPerSample: 2 * (3 * (37.5 + 21.2 + 16.9) + 37.5) },
  // Batch 4 is the memory data point: on wasm32 (4 GB heap) it is reported as exhausted.
  { preset: 'mcp-medsam', batch: 2, gflopPerSample: 2 * (3 * (37.5 + 21.2 + 16.9) + 37.5) },
  { preset: 'mcp-medsam', batch: 4, gflopPerSample: 2 * (3 * (37.5 + 21.2 + 16.9) + 37.5) },
  // tiny as the loop trains it (loop-long.test.ts, the demo): without gradient checkpointing, so
  // one tape and one encoder pass per step.
  { preset: 'tiny', batch: 1, checkpointing: false },
  { preset: 'tiny', batch: 2, checkpointing: false },
];

if (process.argv[2] === '--child') {
  const { initBackend, tf } = await import('@mcp-medsam/core');
  const { McpMedsam, getPreset, stepGradients } = await import('@mcp-medsam/model');
  const { prompts, timeIt } = await import('./common.mjs');
  const spec = PRESETS.find((p) => p.preset === process.argv[3] && p.batch === Number(process.argv[4]));
  const backend = (await initBackend({ log: null })).name;
  const checkpointing = spec.checkpointing ?? true;
  const model = new McpMedsam(getPreset(spec.preset)).train().setGradientCheckpointing(checkpointing);
  const b = spec.batch;
  const inputs = { image: tf.randomUniform([b, 3, 256, 256], 0, 1, 'float32', 5), ...prompts(b) };
  const loss = (o) =>
    tf.addN([
      tf.mean(tf.sigmoid(o.low_res_logits)),
      tf.mean(tf.square(o.iou)),
      tf.mul(tf.mean(tf.square(o.category_logits)), 0.01),
      tf.mul(tf.sum(tf.mul(o.clip_vec, o.img_vec)), 0.01),
    ]);
  const ms = timeIt(
    () => {
      const { loss: l, grads } = stepGradients(model, inputs, loss);
      l.dataSync();
      l.dispose();
      grads.forEach((g) => g.dispose());
    },
    spec.preset === 'tiny' ? 5 : 1,
  );
  const heap = tf.backend().wasm?.HEAPU8?.length;
  emit({
    name: 'train.step',
    preset: spec.preset,
    backend,
    batch: b,
    checkpointing,
    msPerSample: ms / b,
    ...(spec.gflopPerSample ? { gflops: spec.gflopPerSample / (ms / b / 1000) } : {}),
    peakRssMB: Math.round(process.memoryUsage().rss / 2 ** 20),
    ...(heap ? { wasmHeapMB: Math.round(heap / 2 ** 20) } : {}),
  });
} else {
  // BENCH_PRESET=tiny runs one preset's rows (the mcp-medsam ones take ~15 minutes).
  const only = process.env.BENCH_PRESET;
  for (const spec of PRESETS.filter((p) => !only || p.preset === only)) {
    const r = spawnSync(
      process.execPath,
      [fileURLToPath(import.meta.url), '--child', spec.preset, String(spec.batch)],
      {
        stdio: ['ignore', 'pipe', 'pipe'],
        encoding: 'utf8',
      },
    );
    if (r.status === 0) process.stdout.write(r.stdout);
    else
      emit({
        name: 'train.step',
        preset: spec.preset,
        batch: spec.batch,
        error: /Aborted|memory access out of bounds/.test(r.stderr)
          ? 'wasm heap exhausted (4 GB limit of wasm32)'
          : `exit ${r.status}: ${r.stderr.trim().split('\n').slice(-1)[0]}`,
      });
  }
}
