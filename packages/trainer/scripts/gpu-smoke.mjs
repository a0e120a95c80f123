#!/usr/bin/env node
// GPU smoke test (not part of CI): on a CUDA machine with @tensorflow/tfjs-node-gpu installed
// (see docs/gpu.md), checks that the tensorflow-gpu backend is picked and that a forward pass
// and a training step of the mcp-medsam preset run on it with finite results; prints timings as
// JSON lines. Usage: pnpm test:gpu   (builds first)
import { initBackend, tf } from '@mcp-medsam/core';
import { McpMedsam, MCP_MEDSAM } from '@mcp-medsam/model';
import { AdamW, trainStep } from '@mcp-medsam/trainer';

const info = await initBackend({ backend: process.env.MCP_MEDSAM_BACKEND ?? 'tensorflow-gpu' });
const b = Number(process.env.GPU_SMOKE_BATCH ?? 4);
const batch = {
  image: tf.randomUniform([b, 3, 256, 256], 0, 1, 'float32', 1),
  gt: tf.cast(tf.greater(tf.randomUniform([b, 1, 256, 256], 0, 1, 'float32', 2), 0.7), 'float32'),
  boxes: tf.tile(tf.tensor2d([[40, 52, 180, 200]]), [b, 1]),
  crops: tf.randomUniform([b, 3, 64, 64], 0, 1, 'float32', 3),
  clipImage: tf.randomNormal([b, 512], 0, 1, 'float32', 4),
  clipText: tf.randomNormal([b, 512], 0, 1, 'float32', 5),
  categoryIdx: tf.tensor1d(
    Array.from({ length: b }, (_, i) => i % 11),
    'int32',
  ),
};
const model = new McpMedsam(MCP_MEDSAM);
let t0 = performance.now();
const out = model.eval().forward(batch);
const logits = await out.low_res_logits.data();
const fwdMs = performance.now() - t0;
if (!logits.every(Number.isFinite)) throw new Error('forward: non-finite logits');
tf.dispose(Object.values(out));
console.log(JSON.stringify({ name: 'gpu.forward', backend: info.name, batch: b, ms: fwdMs }));

model.train().setGradientCheckpointing(process.env.GPU_SMOKE_CHECKPOINTING === '1');
const opt = new AdamW(model.namedParameters());
for (let i = 0; i < 3; i++) {
  t0 = performance.now();
  const r = trainStep(model, opt, batch);
  const ms = performance.now() - t0;
  if (!Number.isFinite(r.loss.total)) throw new Error(`train step ${i}: loss ${r.loss.total}`);
  console.log(
    JSON.stringify({
      name: 'gpu.train.step',
      backend: info.name,
      batch: b,
      step: i,
      ms,
      msPerSample: ms / b,
      loss: r.loss.total,
    }),
  );
}
const mem = tf.memory();
console.log(JSON.stringify({ name: 'gpu.memory', numBytes: mem.numBytes, numTensors: mem.numTensors }));
if (info.name !== 'tensorflow-gpu') {
  console.error(`note: ran on ${info.name}, not tensorflow-gpu`);
  process.exitCode = 1;
}
