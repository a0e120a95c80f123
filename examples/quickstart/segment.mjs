#!/usr/bin/env node
// Quickstart: segment one 2D image with one box through the library API, save the mask as a PNG.
//
//   node segment.mjs --image slice.png --box 40,30,120,90 [--out mask.png] [--modality CT]
//                    [--model demo-output/onnx] [--clip demo-output/clip] [--engine onnx|tfjs] [--threads n]
import { existsSync } from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { InputError } from '@mcp-medsam/core';
import {
  fileNameToken,
  ndarray,
  readImageFile,
  readNpzFile,
  toRgb8,
  validateChallengeCase,
  writePngFile,
} from '@mcp-medsam/io';
import { OnnxClipVision, StandinClipVision, TextFeatureTable, standinTextTable } from '@mcp-medsam/prompts';
import { MedsamPredictor, loadEngine } from '@mcp-medsam/runtime';

// What `pnpm demo` writes: the model as an ONNX export and as a checkpoint, and the CLIP stand-in.
const DEMO_ONNX = 'demo-output/onnx';
const DEMO_CHECKPOINT = 'demo-output/model.safetensors';
const DEMO_CLIP = 'demo-output/clip';

/** `x0,y0,x1,y1` as a (1,4) box array. */
function parseBox(text) {
  const v = text.split(',').map((s) => (s.trim() === '' ? NaN : Number(s)));
  if (v.length !== 4 || !v.every(Number.isSafeInteger))
    throw new InputError(`--box '${text}' must be four integers x0,y0,x1,y1 (pixels)`);
  return ndarray('int32', [1, 4], Int32Array.from(v));
}

/** The CLIP image tower and text table: ONNX files from a folder, or the seeded stand-in. */
async function openClip(dir, log) {
  if (!dir) {
    log('no CLIP folder: using the seeded CLIP stand-in (fine for trying things, not for real masks)');
    return { vision: new StandinClipVision(), text: standinTextTable() };
  }
  const text = await TextFeatureTable.fromFile(path.join(dir, 'text-features.json'));
  return { vision: await OnnxClipVision.create(path.join(dir, 'vision.onnx')), text };
}

/**
 * Segment `image` (PNG, JPEG, BMP, TIFF, GIF, or a 2D challenge npz) inside `box` and write the
 * mask (0 / 255) to `out`. Returns the mask, its area in pixels and the seconds taken.
 */
export async function segmentImage({
  image,
  box,
  out = 'mask.png',
  modality,
  model = existsSync(DEMO_ONNX) ? DEMO_ONNX : DEMO_CHECKPOINT,
  clip = existsSync(DEMO_CLIP) ? DEMO_CLIP : undefined,
  engine = 'onnx',
  threads,
  log = console.log,
}) {
  // 1. The image as (H,W,3) uint8 (grey replicated, alpha dropped, 16-bit scaled), and the box,
  //    checked before any model is loaded.
  const imgs = image.toLowerCase().endsWith('.npz')
    ? (await readNpzFile(image)).imgs
    : toRgb8((await readImageFile(image)).array);
  const boxes = parseBox(box);
  validateChallengeCase({ imgs, boxes }, 2, image);
  // A challenge file name (2D_XRay_x.npz) names its modality; anything else is taken as CT.
  const named = fileNameToken(image);
  modality ??= named.dims ? named.token : 'CT';

  // 2. The model (an export directory, or a checkpoint: exported to ONNX once and cached, or run
  //    by tfjs with engine 'tfjs') and CLIP.
  const t0 = performance.now();
  const { vision, text } = await openClip(clip, log);
  const predictor = new MedsamPredictor(await loadEngine({ model, engine, threads, log }), vision, text);
  const loadSeconds = (performance.now() - t0) / 1000;

  // 3. Segment, and save the mask as a black-and-white PNG.
  try {
    const t1 = performance.now();
    const result = await predictor.segment({ imgs, boxes, modality, dims: 2, file: image });
    const seconds = (performance.now() - t1) / 1000;
    const mask = ndarray(
      'uint8',
      result.segs.shape,
      result.segs.data.map((v) => (v ? 255 : 0)),
    );
    const area = mask.data.reduce((n, v) => n + (v ? 1 : 0), 0);
    await writePngFile(out, mask);
    const [h, w] = mask.shape;
    log(
      `${out}: ${area} pixels (${((100 * area) / (h * w)).toFixed(1)}% of ${w}x${h}), ${modality}, ` +
        `segmented in ${seconds.toFixed(2)} s (${predictor.engine.name} model loaded in ${loadSeconds.toFixed(2)} s)`,
    );
    return { out, mask, area, seconds, loadSeconds };
  } finally {
    await predictor.close();
  }
}

/** The command line: `--image`, `--box` and the options of {@link segmentImage}. */
export async function main(argv = process.argv.slice(2)) {
  const { values } = parseArgs({
    args: argv,
    options: {
      image: { type: 'string' },
      box: { type: 'string' },
      out: { type: 'string' },
      modality: { type: 'string' },
      model: { type: 'string' },
      clip: { type: 'string' },
      engine: { type: 'string' },
      threads: { type: 'string' },
    },
  });
  if (!values.image || !values.box)
    throw new InputError('usage: node segment.mjs --image <png|jpg|npz> --box x0,y0,x1,y1 [--out mask.png]');
  const threads = values.threads === undefined ? undefined : Number(values.threads);
  return segmentImage({ ...values, threads });
}

if (process.argv[1] && import.meta.url === pathToFileURL(path.resolve(process.argv[1])).href) {
  main().catch((e) => {
    console.error(`error: ${e.message}`);
    process.exitCode = 1;
  });
}
