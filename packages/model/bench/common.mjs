import { tf } from '@mcp-medsam/core';

export const RUNS = Number(process.env.BENCH_RUNS ?? 3);

/** Median wall time of `fn` over `n` runs after one warm-up (kernel setup, heap growth). */
export function timeIt(fn, n = RUNS) {
  fn();
  const ms = [];
  for (let i = 0; i < n; i++) {
    const t0 = performance.now();
    fn();
    ms.push(performance.now() - t0);
  }
  ms.sort((a, b) => a - b);
  return ms[Math.floor(ms.length / 2)];
}

export function emit(obj) {
  process.stdout.write(JSON.stringify(obj) + '\n');
}

/** Prompt inputs for `b` boxes. */
export function prompts(b) {
  return {
    boxes: tf.tile(tf.tensor([[40, 52, 180, 200]]), [b, 1]),
    clipImage: tf.randomNormal([b, 512], 0, 1, 'float32', 1),
    clipText: tf.randomNormal([b, 512], 0, 1, 'float32', 2),
    categoryIdx: tf.tensor(
      Array.from({ length: b }, (_, i) => i % 11),
      [b],
      'int32',
    ),
    crops: tf.randomUniform([b, 3, 64, 64], 0, 1, 'float32', 3),
  };
}
