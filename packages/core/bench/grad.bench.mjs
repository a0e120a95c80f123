// Forward vs backward speed of the wasm gradient kernels.
// Run after building the package:  node packages/core/bench/grad.bench.mjs [--quick]
// (imports the built dist; set MCP_MEDSAM_CORE_DIST to point at another build).
import { pathToFileURL } from 'node:url';
import path from 'node:path';

const dist =
  process.env.MCP_MEDSAM_CORE_DIST ??
  path.resolve(import.meta.dirname ?? path.dirname(new URL(import.meta.url).pathname), '../dist/index.js');
const { tf, initBackend } = await import(pathToFileURL(dist).href);

const quick = process.argv.includes('--quick');
const reps = quick ? 2 : 5;

function time(f) {
  tf.dispose(f()); // warm-up (operator creation, weight packing)
  let best = Infinity;
  for (let i = 0; i < reps; i++) {
    const t = performance.now();
    const out = f(); // wasm runs synchronously
    best = Math.min(best, performance.now() - t);
    tf.dispose(out);
  }
  return best;
}

/** One JSON line per measurement (best of `reps`). */
function row(name, flops, ms) {
  process.stdout.write(
    JSON.stringify({
      name: `grad.${name.replace(/\s+/g, ' ').trim()}`,
      backend: tf.getBackend(),
      ms,
      gflops: flops / ms / 1e6,
    }) + '\n',
  );
}

const run = (name, inputs, attrs) => tf.engine().runKernel(name, inputs, attrs);

await initBackend({ backend: 'wasm', log: null });
process.stderr.write(`backend ${tf.getBackend()}, best of ${reps}\n`);

{
  const x = tf.randomNormal([1, 64, 64, 256]);
  const w = tf.randomNormal([3, 3, 256, 256]);
  const dy = tf.randomNormal([1, 64, 64, 256]);
  const flops = 2 * 9 * 256 * 256 * 64 * 64;
  const attrs = { strides: 1, pad: 1, dataFormat: 'NHWC', dimRoundingMode: undefined };
  row(
    'conv2d 3x3 256->256 @64x64  forward',
    flops,
    time(() => tf.conv2d(x, w, 1, 1)),
  );
  row(
    'conv2d 3x3 256->256 @64x64  dX (Conv2DBackpropInput)',
    flops,
    time(() => run('Conv2DBackpropInput', { dy, filter: w }, { ...attrs, inputShape: x.shape })),
  );
  row(
    'conv2d 3x3 256->256 @64x64  dW (Conv2DBackpropFilter)',
    flops,
    time(() => run('Conv2DBackpropFilter', { x, dy }, { ...attrs, filterShape: w.shape })),
  );
  const dy2 = tf.randomNormal([1, 32, 32, 256]);
  row(
    'conv2d 3x3 s2 256->256 @64x64  forward',
    flops / 4,
    time(() => tf.conv2d(x, w, 2, 1)),
  );
  row(
    'conv2d 3x3 s2 256->256 @64x64  dX',
    flops / 4,
    time(() =>
      run('Conv2DBackpropInput', { dy: dy2, filter: w }, { ...attrs, strides: 2, inputShape: x.shape }),
    ),
  );
  row(
    'conv2d 3x3 s2 256->256 @64x64  dW',
    flops / 4,
    time(() => run('Conv2DBackpropFilter', { x, dy: dy2 }, { ...attrs, strides: 2, filterShape: w.shape })),
  );
  const w2 = tf.randomNormal([2, 2, 128, 256]);
  const f2 = 2 * 4 * 128 * 256 * 64 * 64;
  row(
    'conv2dTranspose k2 s2 256->128 @64x64->128  forward',
    f2,
    time(() => tf.conv2dTranspose(x, w2, [1, 128, 128, 128], 2, 'valid')),
  );
  const ddx = tf.randomNormal([1, 128, 128, 128]);
  row(
    'conv2dTranspose k2 s2  d(input) = conv2d',
    f2,
    time(() => tf.conv2d(ddx, w2, 2, 'valid')),
  );
  row(
    'conv2dTranspose k2 s2  d(filter)',
    f2,
    time(() =>
      run(
        'Conv2DBackpropFilter',
        { x: ddx, dy: x },
        { ...attrs, strides: 2, pad: 'valid', filterShape: w2.shape },
      ),
    ),
  );
  tf.dispose([x, w, dy, dy2, w2, ddx]);
}

{
  const x = tf.randomNormal([1, 256, 256, 256]);
  const w = tf.randomNormal([3, 3, 256, 1]);
  const dy = tf.randomNormal([1, 256, 256, 256]);
  const flops = 2 * 9 * 256 * 256 * 256;
  const attrs = { strides: 1, pad: 1, dilations: 1, dimRoundingMode: undefined };
  row(
    'depthwise 3x3 256ch @256x256  forward',
    flops,
    time(() => tf.depthwiseConv2d(x, w, 1, 1)),
  );
  row(
    'depthwise 3x3 256ch @256x256  dX',
    flops,
    time(() =>
      run('DepthwiseConv2dNativeBackpropInput', { dy, filter: w }, { ...attrs, inputShape: x.shape }),
    ),
  );
  row(
    'depthwise 3x3 256ch @256x256  dW',
    flops,
    time(() => run('DepthwiseConv2dNativeBackpropFilter', { x, dy }, { ...attrs, filterShape: w.shape })),
  );
  tf.dispose([x, w, dy]);
}

{
  // Backward = the registered BatchMatMul gradient (dA and dB), without re-running the forward.
  const mmGrad = tf.getGradient('BatchMatMul');
  const backward =
    (a, b, dy, transposeA = false, transposeB = false) =>
    () => {
      const g = mmGrad.gradFunc(dy, [a, b], { transposeA, transposeB });
      return [g.a(), g.b()];
    };
  const a = tf.randomNormal([1444, 49, 32]);
  const b = tf.randomNormal([1444, 32, 49]);
  const bt = tf.randomNormal([1444, 49, 32]);
  const dy = tf.randomNormal([1444, 49, 49]);
  const flops = 2 * 1444 * 49 * 32 * 49;
  row(
    'batched matMul 1444 x (49x32 @ 32x49)  forward',
    flops,
    time(() => tf.matMul(a, b)),
  );
  row('  backward dA+dB', 2 * flops, time(backward(a, b, dy)));
  row(
    'q @ k^T (transposeB) 1444 x (49x32 @ 32x49)  forward',
    flops,
    time(() => tf.matMul(a, bt, false, true)),
  );
  row('  backward dA+dB', 2 * flops, time(backward(a, bt, dy, false, true)));
  const x2 = tf.randomNormal([4096, 256]);
  const w2 = tf.randomNormal([256, 256]);
  const d2 = tf.randomNormal([4096, 256]);
  const f2 = 2 * 4096 * 256 * 256;
  row(
    '2-D matMul 4096x256 @ 256x256  forward',
    f2,
    time(() => tf.matMul(x2, w2)),
  );
  row('  backward dA+dB', 2 * f2, time(backward(x2, w2, d2)));
  row(
    '  stock formulation (transpose flags)',
    2 * f2,
    time(() => [tf.matMul(d2, w2, false, true), tf.matMul(x2, d2, true, false)]),
  );
  row(
    '2-D x @ W^T (transposeB)  forward',
    f2,
    time(() => tf.matMul(x2, w2, false, true)),
  );
  row('  backward dA+dB', 2 * f2, time(backward(x2, w2, d2, false, true)));
  const a3 = tf.randomNormal([16, 256, 256]);
  const d3 = tf.randomNormal([16, 256, 256]);
  row(
    '3-D @ 2-D: [16,256,256] @ [256,256]  forward',
    f2,
    time(() => tf.matMul(a3, w2)),
  );
  row('  backward dA+dB', 2 * f2, time(backward(a3, w2, d3)));
  tf.dispose([a, b, bt, dy, x2, w2, d2, a3, d3]);
}
