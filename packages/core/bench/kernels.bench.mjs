// The fused wasm kernels against the tf-ops forms they replace (same numbers, fewer passes and
// no map-sized temporaries). Run after building the package:
//   node packages/core/bench/kernels.bench.mjs [--quick]
// Prints one JSON line per measurement (best of the repetitions, ms).
import { pathToFileURL } from 'node:url';
import path from 'node:path';

const here = import.meta.dirname ?? path.dirname(new URL(import.meta.url).pathname);
const dist = process.env.MCP_MEDSAM_CORE_DIST ?? path.resolve(here, '../dist/index.js');
const load = (rel) => import(pathToFileURL(path.resolve(path.dirname(dist), rel)).href);
const { tf, nn, initBackend } = await import(pathToFileURL(dist).href);
const { depthwiseFilterGrad } = await load('grad/conv.js');
const { normCdf } = await load('kernels/norm_cdf.js');

const quick = process.argv.includes('--quick');
const reps = quick ? 2 : 5;

function time(f) {
  tf.dispose(f());
  let best = Infinity;
  for (let i = 0; i < reps; i++) {
    const t = performance.now();
    const out = f(); // wasm runs synchronously
    best = Math.min(best, performance.now() - t);
    tf.dispose(out);
  }
  return best;
}
const row = (name, ms) =>
  process.stdout.write(JSON.stringify({ name: `kernels.${name}`, backend: tf.getBackend(), ms }) + '\n');

await initBackend({ backend: 'wasm', log: null });
process.stderr.write(`backend ${tf.getBackend()}, best of ${reps}\n`);

for (const [size, c] of [
  [64, 256],
  [256, 256],
]) {
  const x = tf.randomNormal([1, size, size, c]);
  const dy = tf.randomNormal([1, size, size, c]);
  const shape = [3, 3, c, 1];
  const attrs = { strides: 1, pad: 1, dilations: 1, dimRoundingMode: undefined, filterShape: shape };
  const tag = `depthwise dW 3x3 s1 ${c}ch @${size}x${size}`;
  row(
    `${tag}  SIMD kernel`,
    time(() => tf.engine().runKernel('DepthwiseConv2dNativeBackpropFilter', { x, dy }, attrs)),
  );
  row(
    `${tag}  tf ops (before)`,
    time(() => tf.tidy(() => depthwiseFilterGrad(x, dy, shape, 1, 1))),
  );
  tf.dispose([x, dy]);
}

{
  const x = tf.randomNormal([1, 256, 256, 256]);
  const dy = tf.randomNormal([1, 256, 256, 256]);
  const tag = 'gelu 1x256x256x256';
  row(
    `${tag}  forward, fused`,
    time(() => nn.gelu(x)),
  );
  row(
    `${tag}  forward, x*normCdf(x) (before)`,
    time(() => tf.tidy(() => tf.mul(x, normCdf(x)))),
  );
  const g = (f) => () => tf.tidy(() => tf.grad((v) => tf.sum(tf.mul(f(v), dy)))(x));
  const before = (v) =>
    tf.customGrad((t, save) => {
      const cdf = normCdf(t);
      save([t, cdf]);
      return {
        value: tf.mul(t, cdf),
        gradFunc: (d, [s, phi]) =>
          tf.mul(
            d,
            tf.add(phi, tf.mul(s, tf.mul(tf.exp(tf.mul(tf.square(s), -0.5)), 1 / Math.sqrt(2 * Math.PI)))),
          ),
      };
    })(v);
  row(`${tag}  forward+backward, fused`, time(g(nn.gelu)));
  row(`${tag}  forward+backward, tf ops (before)`, time(g(before)));
  tf.dispose([x, dy]);
}

{
  const x = tf.randomNormal([1, 256, 256, 256], 0.3, 2);
  const dy = tf.randomNormal([1, 256, 256, 256]);
  const g = tf.randomUniform([256], 0.5, 1.5);
  const b = tf.randomNormal([256]);
  const tag = 'batchNormTrain 1x256x256x256';
  const colMean = (t) => tf.reshape(tf.avgPool(t, [256, 256], [256, 256], 'valid'), [256]);
  row(
    `${tag}  forward, fused`,
    time(() => {
      const r = nn.batchNormTrain(x, g, b, 1e-5);
      return [r.y, r.mean, r.variance];
    }),
  );
  // The tf-ops form (per-channel means through an average pool), as on the other backends.
  const tfOps = () =>
    tf.tidy(() => {
      const m = colMean(x);
      const centred = tf.sub(x, m);
      const v = colMean(tf.square(centred));
      const xhat = tf.mul(centred, tf.rsqrt(tf.add(v, 1e-5)));
      return [tf.add(tf.mul(xhat, g), b), xhat];
    });
  row(`${tag}  forward, tf ops (before)`, time(tfOps));
  const bwd = (xhat, inv) => () =>
    tf.tidy(() => {
      const dyMean = colMean(dy);
      const dyXhatMean = colMean(tf.mul(dy, xhat));
      const dx = tf.mul(tf.sub(tf.sub(dy, dyMean), tf.mul(xhat, dyXhatMean)), tf.mul(g, inv));
      return [dx, tf.mul(dyXhatMean, 65536), tf.mul(dyMean, 65536)];
    });
  const [, xhat] = tfOps();
  const inv = tf.ones([256]);
  row(
    `${tag}  backward, fused`,
    time(() => tf.engine().runKernel('McpBatchNormGrad', { dy, xhat, scale: tf.mul(g, inv) })),
  );
  row(`${tag}  backward, tf ops (before)`, time(bwd(xhat, inv)));
  tf.dispose([x, dy, g, b, xhat, inv]);
}
