// Benchmark of the exact resizers and the training-sample builder.
// Run after `pnpm --filter @mcp-medsam/core --filter @mcp-medsam/io build`; prints one JSON line per result.
import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Rng } from '@mcp-medsam/core';
import {
  buildTrainingSample,
  cropContentData,
  ndarray,
  postprocessLogits,
  preprocessImage,
  readNpzFile,
  resizeAntialiasBilinear,
  resizeArea,
  resizeNearest,
  setWasmKernels,
  toTensor,
} from '../dist/index.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const SHARED = process.env.MCP_MEDSAM_SHARED ?? path.resolve(here, '../../../..', 'shared');

/** Median wall time (ms) of `fn` over `reps` runs after `warm` warm-up runs. */
function time(fn, reps = 15, warm = 3) {
  for (let i = 0; i < warm; i++) fn();
  const t = [];
  for (let i = 0; i < reps; i++) {
    const t0 = performance.now();
    fn();
    t.push(performance.now() - t0);
  }
  t.sort((a, b) => a - b);
  return t[t.length >> 1];
}

const emit = (o) => console.log(JSON.stringify(o));

/** A deterministic RGB test image. */
function image(h, w, c = 3) {
  const a = ndarray('uint8', c === 1 ? [h, w] : [h, w, c]);
  let s = 12345;
  for (let i = 0; i < a.data.length; i++) a.data[i] = (s = (s * 1103515245 + 12345) >>> 0) >>> 24;
  return a;
}

// INTER_AREA: general shrink of a big RGB image (the demo mammogram's size), 2x fast path,
// and enlarging.
const big = image(2604, 1726);
emit({ name: 'io.resize.area', case: '2604x1726x3->256x170', ms: time(() => resizeArea(big, 256, 170)) });
const ct = image(512, 512);
emit({ name: 'io.resize.area.2x', case: '512x512x3->256x256', ms: time(() => resizeArea(ct, 256, 256)) });
const small = image(120, 120);
emit({ name: 'io.resize.area.up', case: '120x120x3->256x256', ms: time(() => resizeArea(small, 256, 256)) });
const lbl = image(2604, 1726, 1);
emit({ name: 'io.resize.nearest', case: '2604x1726->256x170', ms: time(() => resizeNearest(lbl, 256, 170)) });
const crop = toTensor(image(400, 414));
emit({
  name: 'io.resize.aa224',
  case: '3x400x414->224',
  ms: time(() => resizeAntialiasBilinear(crop, 224, 224)),
});
// The training content crops (ToTensor + both antialiased resizes of a 400x414 box), with io's
// WebAssembly kernel and with the JS path it replaces.
const region = image(700, 900);
for (const kernel of ['wasm', 'js']) {
  setWasmKernels(kernel);
  emit({
    name: 'io.crop.content',
    case: '400x414x3 box->64+224',
    kernel,
    ms: time(() => cropContentData(region.data, 700, 900, 3, [250, 100, 664, 500], [64, 224])),
  });
}
setWasmKernels('auto');
emit({ name: 'io.preprocess.image', case: '2604x1726x3', ms: time(() => preprocessImage(big)) });
const logits = new Float32Array(65536).map((_, i) => Math.sin(i / 300));
emit({
  name: 'io.postprocess.logits',
  case: '256x170->2604x1726',
  ms: time(() => postprocessLogits(logits, 256, 170, 2604, 1726)),
});

// buildTrainingSample on a 2D case of shared/data/npz.
const file = path.join(SHARED, 'data/npz/2D_Endoscopy_kvasir-seg_medsam-fork_cju1fjsb4sipq09931lvd8e41.npz');
if (existsSync(file)) {
  const { imgs, gts } = await readNpzFile(file);
  const rng = new Rng(42);
  const run = (n, opts) => {
    const t0 = performance.now();
    for (let i = 0; i < n; i++) buildTrainingSample({ imgs, gts }, path.basename(file), rng, opts);
    return performance.now() - t0;
  };
  run(10);
  const n = 60;
  const ms = run(n);
  emit({
    name: 'io.sample2d',
    case: `${imgs.shape.join('x')} (with the 224 crop)`,
    samplesPerSecond: (n * 1000) / ms,
  });
  const ms64 = run(n, { crop224: false });
  emit({ name: 'io.sample2d.no224', case: `${imgs.shape.join('x')}`, samplesPerSecond: (n * 1000) / ms64 });
} else {
  emit({ name: 'io.sample2d', skipped: `not found: ${file}` });
}
