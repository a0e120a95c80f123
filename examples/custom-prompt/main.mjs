// Trains the tiny MCP-MedSAM with a point prompt added through the prompt extension interface,
// exports it to ONNX and segments a held-out case with onnxruntime, passing points.
//
//   node main.mjs [--out custom-prompt-output] [--steps 100]
import path from 'node:path';
import { parseArgs } from 'node:util';
import { pathToFileURL } from 'node:url';
import { initBackend, Rng } from '@mcp-medsam/core';
import { buildTrainingSample, readNpzFile } from '@mcp-medsam/io';
import { McpMedsam, TINY, loadWeights } from '@mcp-medsam/model';
import { parseTrainConfig, RUN_FILES, train } from '@mcp-medsam/trainer';
import { exportOnnx } from '@mcp-medsam/exporter';
import { OnnxEngine } from '@mcp-medsam/runtime';
import { writeSyntheticCases } from './cases.mjs';
import { PointPrompt, pointArrays } from './point_prompt.mjs';

const CLIP_DIM = 512;
const CLIP_SIDE = 224;

/**
 * Frozen-CLIP stand-ins (the real towers are an ONNX export of pubmed-clip, see
 * docs/clip-export.md): image features from the crop's channel means through a fixed random
 * map, text features drawn from the text's hash. Enough to exercise the content and modality
 * prompts without downloads.
 */
export function standinClip(seed = 7) {
  const rng = new Rng(seed);
  const proj = Float32Array.from({ length: 3 * CLIP_DIM }, () => 0.5 * rng.normal());
  const per = 3 * CLIP_SIDE * CLIP_SIDE;
  const plane = CLIP_SIDE * CLIP_SIDE;
  return {
    vision: {
      dim: CLIP_DIM,
      imageSize: CLIP_SIDE,
      async embed(pixels, n) {
        const out = new Float32Array(n * CLIP_DIM);
        for (let i = 0; i < n; i++)
          for (let c = 0; c < 3; c++) {
            let m = 0;
            for (let k = 0; k < plane; k++) m += pixels[i * per + c * plane + k];
            m /= plane;
            for (let j = 0; j < CLIP_DIM; j++) out[i * CLIP_DIM + j] += m * proj[c * CLIP_DIM + j];
          }
        return out;
      },
      async close() {},
    },
    text: {
      get(text) {
        let h = seed;
        for (const ch of text) h = (Math.imul(h, 31) + ch.codePointAt(0)) >>> 0;
        const r = new Rng(h);
        return Float32Array.from({ length: CLIP_DIM }, () => 0.1 * r.normal());
      },
    },
  };
}

/**
 * The extension as the model, the trainer and the engine build it: a function of the
 * configuration, called after the base modules are built (their initial weights stay those of a
 * model without extensions).
 * @param {import('@mcp-medsam/model').McpMedsamConfig} config
 */
export const pointPrompt = (config) => new PointPrompt({ embedDim: config.embedDim });

/** Dice of logits > 0 against a 0/1 mask. */
export function dice(logits, gt) {
  let inter = 0;
  let a = 0;
  let b = 0;
  for (let i = 0; i < gt.length; i++) {
    const p = logits[i] > 0 ? 1 : 0;
    inter += p & gt[i];
    a += p;
    b += gt[i];
  }
  return a + b ? (2 * inter) / (a + b) : 1;
}

/** The target pixel nearest the target's centroid, and a background pixel inside the box. */
export function examplePoints(sample) {
  const side = 256;
  let sx = 0;
  let sy = 0;
  let n = 0;
  for (let i = 0; i < side * side; i++)
    if (sample.gt2D[i]) {
      sx += i % side;
      sy += Math.floor(i / side);
      n++;
    }
  const [cx, cy] = [sx / n, sy / n];
  let pos = [0, 0];
  let best = Infinity;
  let neg = null;
  const [x0, y0, x1, y1] = sample.box;
  for (let i = 0; i < side * side; i++) {
    const x = i % side;
    const y = Math.floor(i / side);
    if (sample.gt2D[i]) {
      const d = (x - cx) ** 2 + (y - cy) ** 2;
      if (d < best) [best, pos] = [d, [x, y]];
    } else if (!neg && x >= x0 + 2 && x <= x1 - 2 && y >= y0 + 2 && y <= y1 - 2) neg = [x, y];
  }
  return { pos, neg };
}

/**
 * The whole example: cases, a training run with the point prompt, the export, and one held-out
 * case segmented with the exported graph (box only, box + a positive point, box + a positive and
 * a negative point). Resolves to the file locations, the step losses and the Dice scores.
 */
export async function run({ outDir, steps = 100, cases = 8, batchSize = 2, lr = 3e-3, log = console.log }) {
  await initBackend({ log: null });
  const dataDir = path.join(outDir, 'data');
  await writeSyntheticCases(dataDir, { count: cases, seed: 1 });
  const [heldOut] = await writeSyntheticCases(path.join(outDir, 'held-out'), { count: 1, seed: 99 });
  const clip = standinClip();

  log(`training the tiny preset with a point prompt for ${steps} steps on ${cases} synthetic cases`);
  const runDir = path.join(outDir, 'run');
  const config = parseTrainConfig({
    preset: 'tiny',
    data: dataDir,
    out: runDir,
    steps,
    stepsPerEpoch: steps,
    batchSize,
    lr,
    workers: 0,
    gradientCheckpointing: false,
    progress: false,
    // The stand-in providers below replace these files.
    clipVision: 'standin',
    clipText: 'standin',
  });
  const result = await train(config, {
    clip,
    promptExtensions: [pointPrompt],
    log: () => {},
    onStep: (s) => {
      if (s.step === 1 || s.step % 10 === 0 || s.step === steps)
        log(`  step ${s.step}: loss ${s.loss.toFixed(4)}`);
    },
  });

  const weights = path.join(runDir, RUN_FILES.latest);
  const model = new McpMedsam(TINY, { promptExtensions: [pointPrompt] });
  await loadWeights(model, weights);
  const exportDir = path.join(outDir, 'onnx');
  exportOnnx(model, { outDir: exportDir });
  model.dispose();
  log(`exported to ${exportDir} (prompt_decoder.onnx takes point_coords and point_labels)`);

  const sample = buildTrainingSample(await readNpzFile(heldOut), path.basename(heldOut), new Rng(5), {
    boxShift: 0,
    cropShift: 0,
  });
  const engine = await OnnxEngine.load(exportDir, { threads: 1 });
  let scores;
  try {
    const [embedding] = await engine.encode(sample.image, 1);
    const { pos, neg } = examplePoints(sample);
    const rows = [[[0, 0, -1]], [[...pos, 1]], [[...pos, 1], ...(neg ? [[...neg, 0]] : [])]];
    const n = rows.length;
    const rep = (a) => {
      const out = new a.constructor(n * a.length);
      for (let i = 0; i < n; i++) out.set(a, i * a.length);
      return out;
    };
    const out = await engine.decode(
      embedding,
      {
        boxes: rep(sample.box),
        clipImage: rep(await clip.vision.embed(sample.crop224, 1)),
        clipText: rep(clip.text.get(sample.text)),
        categoryIdx: rep(Int32Array.of(sample.categoryIdx)),
        crops: rep(sample.crop64),
        extra: pointArrays(rows),
      },
      n,
    );
    const plane = 256 * 256;
    const logits = (i) => out.lowResLogits.subarray(i * plane, (i + 1) * plane);
    const boxOnly = logits(0);
    const change = (i) => logits(i).reduce((m, v, k) => Math.max(m, Math.abs(v - boxOnly[k])), 0);
    scores = { box: dice(logits(0), sample.gt2D), boxAndPositive: dice(logits(1), sample.gt2D) };
    scores.boxAndBoth = dice(logits(2), sample.gt2D);
    log(`held-out case (onnxruntime), Dice against the ground truth:`);
    log(`  box only (one padding point)      ${scores.box.toFixed(4)}`);
    log(
      `  box + positive point              ${scores.boxAndPositive.toFixed(4)}  (max |logit change| ${change(1).toFixed(4)})`,
    );
    log(
      `  box + positive and negative point ${scores.boxAndBoth.toFixed(4)}  (max |logit change| ${change(2).toFixed(4)})`,
    );
  } finally {
    await engine.close();
  }
  return { runDir, weights, exportDir, stepLosses: result.stepLosses, dice: scores };
}

if (process.argv[1] && import.meta.url === pathToFileURL(path.resolve(process.argv[1])).href) {
  const { values } = parseArgs({
    options: {
      out: { type: 'string', default: 'custom-prompt-output' },
      steps: { type: 'string', default: '100' },
    },
  });
  await run({ outDir: path.resolve(values.out), steps: Number(values.steps) });
}
