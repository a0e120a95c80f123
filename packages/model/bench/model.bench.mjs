// Forward and training-step speed of the tfjs model. FLOPs from spec §13 (MACs x 2).
// Prints one JSON line per result.
import { initBackend, nn, tf } from '@mcp-medsam/core';
import { McpMedsam, MCP_MEDSAM, TINY } from '@mcp-medsam/model';

const ENCODER_GFLOP = 2 * 37.5; // mcp-medsam image encoder, per image
const DECODER_BOX_GFLOP = 2 * (21.2 + 16.9); // prompt encoder + mask decoder, per box
const backend = (await initBackend({ log: null })).name;
const runs = Number(process.env.BENCH_RUNS ?? 3);
let peakRss = 0;
const sampleRss = () => (peakRss = Math.max(peakRss, process.memoryUsage().rss));

function median(xs) {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}

function timeIt(fn, n = runs) {
  fn(); // warm-up: kernel setup, weight transposes, wasm memory growth
  const ms = [];
  for (let i = 0; i < n; i++) {
    const t0 = performance.now();
    fn();
    ms.push(performance.now() - t0);
    sampleRss();
  }
  return median(ms);
}

function emit(obj) {
  process.stdout.write(JSON.stringify({ ...obj, backend }) + '\n');
}

function prompts(b) {
  return {
    boxes: tf.tile(tf.tensor([[40, 52, 180, 200]]), [b, 1]),
    clipImage: tf.randomNormal([b, 512], 0, 1, 'float32', 1),
    clipText: tf.randomNormal([b, 512], 0, 1, 'float32', 2),
    categoryIdx: tf.tensor(Array.from({ length: b }, (_, i) => i % 11), [b], 'int32'),
    crops: tf.randomUniform([b, 3, 64, 64], 0, 1, 'float32', 3),
  };
}

nn.setInitSeed(0);
const model = new McpMedsam(MCP_MEDSAM).eval();
const image = tf.randomUniform([1, 3, 256, 256], 0, 1, 'float32', 4);
const encMs = timeIt(() => tf.tidy(() => model.encodeImage(image).dataSync()));
emit({ name: 'tfjs.encoder', preset: 'mcp-medsam', ms: encMs, gflops: ENCODER_GFLOP / (encMs / 1000) });

const emb = model.encodeImage(image);
const p1 = prompts(1);
const decMs = timeIt(() => tf.tidy(() => model.decode(emb, p1).lowResLogits.dataSync()));
emit({ name: 'tfjs.decoder.box', preset: 'mcp-medsam', ms: decMs, gflops: DECODER_BOX_GFLOP / (decMs / 1000) });
emb.dispose();

/** One forward + backward in train mode; the loss touches every output the real loss uses. */
function trainStep(m, batch) {
  const inputs = { image: tf.randomUniform([batch, 3, 256, 256], 0, 1, 'float32', 5), ...prompts(batch) };
  const vars = m.namedParameters().map(([, v]) => v);
  return () => {
    const { value, grads } = tf.variableGrads(() => {
      const o = m.forward(inputs);
      const loss = tf.addN([
        tf.mean(tf.sigmoid(o.low_res_logits)),
        tf.mean(tf.square(o.iou)),
        tf.mul(tf.mean(tf.square(o.category_logits)), 0.01),
        tf.mul(tf.sum(tf.mul(o.clip_vec, o.img_vec)), 0.01),
      ]);
      for (const t of Object.values(o)) if (t) t.dispose();
      return loss;
    }, vars.filter((v) => v.trainable));
    value.dataSync();
    value.dispose();
    Object.values(grads).forEach((g) => g.dispose());
  };
}

model.train();
for (const [preset, m, batch, gflopPerSample] of [
  // forward + backward ≈ 3x the forward FLOPs
  ['mcp-medsam', model, 2, 3 * (ENCODER_GFLOP + DECODER_BOX_GFLOP)],
  ['tiny', new McpMedsam(TINY).train(), 4, undefined],
]) {
  const ms = timeIt(trainStep(m, batch), preset === 'tiny' ? runs : 1);
  emit({
    name: 'train.step',
    preset,
    batch,
    msPerSample: ms / batch,
    ...(gflopPerSample ? { gflops: gflopPerSample / (ms / batch / 1000) } : {}),
    peakRssMB: Math.round(peakRss / 2 ** 20),
  });
}
