// wasm heap growth of one TinyViT stage-0 unit (depthwise 3x3 → train-mode BatchNorm → GELU) over
// its forward and backward, as in a checkpointed training step. Run after building the package:
//   node packages/core/bench/unit-mem.mjs [batch] [size] [channels]
// Prints the heap size (MB) and the live tensor bytes (MB) after each phase; the heap never
// shrinks, so its last value is the peak.
import { pathToFileURL } from 'node:url';
import path from 'node:path';

const dist =
  process.env.MCP_MEDSAM_CORE_DIST ??
  path.resolve(import.meta.dirname ?? path.dirname(new URL(import.meta.url).pathname), '../dist/index.js');
const { tf, nn, initBackend } = await import(pathToFileURL(dist).href);

const [b, size, c] = [1, 256, 256].map((d, i) => Number(process.argv[2 + i] ?? d));
await initBackend({ backend: 'wasm', log: null });
const heap = () => Math.round(tf.backend().wasm.HEAPU8.length / 2 ** 20);
const live = () => tf.memory().numBytes >> 20;
const report = (phase, ms) =>
  process.stdout.write(JSON.stringify({ phase, heapMB: heap(), liveMB: live(), ms: Math.round(ms) }) + '\n');

const x = tf.variable(tf.randomNormal([b, size, size, c], 0, 1, 'float32', 1));
const w = tf.variable(tf.randomNormal([3, 3, c, 1], 0, 0.3, 'float32', 2));
const gamma = tf.variable(tf.randomUniform([c], 0.5, 1.5, 'float32', 3));
const beta = tf.variable(tf.randomNormal([c], 0, 0.1, 'float32', 4));
const dy = tf.randomNormal([b, size, size, c], 0, 1, 'float32', 5);
report('inputs', 0);
const unit = () => {
  const h = tf.depthwiseConv2d(x, w, 1, 1);
  const { y, mean, variance } = nn.batchNormTrain(h, gamma, beta, 1e-5);
  tf.dispose([mean, variance]);
  return nn.gelu(y);
};
let t = performance.now();
tf.tidy(() => unit()).dispose();
report('forward', performance.now() - t);
t = performance.now();
const { value, grads } = nn.variableGradsEager(() => tf.sum(tf.mul(unit(), dy)), [x, w, gamma, beta]);
report('forward+backward', performance.now() - t);
tf.dispose([value, ...Object.values(grads)]);
report('end', 0);
