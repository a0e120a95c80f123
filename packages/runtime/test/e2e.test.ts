// The whole inference path against ../shared/fixtures/e2e/expected: checkpoint-a, the CLIP
// stand-in, both engines. Masks must be identical except pixels whose upsampled logit lies within
// 1e-3 of the threshold (counted), and the 2D per-box logits within 1e-4.
import { readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { longestSideSize, postprocessLogits, readNpzFile } from '@mcp-medsam/io';
import { OnnxClipVision, TextFeatureTable } from '@mcp-medsam/prompts';
import { sharedPath } from '../../../test-utils/shared.js';
import {
  MedsamPredictor,
  OnnxEngine,
  TfjsEngine,
  exportCheckpointCached,
  modalityToken,
  type SegmentResult,
  type SegmentationEngine,
} from '../src/index.js';

const CKPT = 'fixtures/model/checkpoint-a.pth';
const CASE_2D = '2D_XRay_cxr-pneumonia-day0';
const CASE_3D = '3D_CT_lesion-000015';
const NEAR = 1e-3;

let tmp: string;
let vision: OnnxClipVision;
let text: TextFeatureTable;
const engines: Record<string, () => Promise<SegmentationEngine>> = {};
let exportDir: string;

beforeAll(async () => {
  tmp = await mkdtemp(path.join(os.tmpdir(), 'mcp-medsam-e2e-'));
  vision = await OnnxClipVision.create(sharedPath('fixtures/clip-standin/vision.onnx'), { threads: 1 });
  text = await TextFeatureTable.fromFile(sharedPath('fixtures/clip-standin/text-features.json'));
  exportDir = await exportCheckpointCached(sharedPath(CKPT), { cacheDir: tmp });
  engines.onnx = () => OnnxEngine.load(exportDir, { threads: 2 });
  engines.tfjs = () => TfjsEngine.fromCheckpoint(sharedPath(CKPT));
}, 600_000);

afterAll(async () => {
  await vision?.close();
  if (tmp) await rm(tmp, { recursive: true, force: true });
});

async function run(engine: SegmentationEngine, stem: string): Promise<SegmentResult> {
  const input = await readNpzFile(sharedPath(`fixtures/e2e/input/${stem}.npz`));
  const predictor = new MedsamPredictor(engine, vision, text);
  return predictor.segment(
    {
      imgs: input.imgs,
      boxes: input.boxes,
      modality: modalityToken(`${stem}.npz`),
      dims: stem.startsWith('3D') ? 3 : 2,
    },
    { keepLogits: true },
  );
}

/** Pixels of each slice whose upsampled logit (any call on that slice) is within NEAR of 0. */
function nearThreshold(r: SegmentResult, shape: number[]): Uint8Array {
  const [H, W] = shape.slice(-2);
  const near = new Uint8Array(shape.reduce((a, b) => a * b, 1));
  const { newH, newW } = longestSideSize(H, W);
  r.calls.forEach((c, i) => {
    const { logits } = postprocessLogits(r.lowResLogits![i], newH, newW, H, W, { keepLogits: true });
    const base = (c.z ?? 0) * H * W;
    logits!.forEach((v, p) => {
      if (Math.abs(v) < NEAR) near[base + p] = 1;
    });
  });
  return near;
}

function compareSegs(r: SegmentResult, expected: Uint8Array, shape: number[]) {
  const got = r.segs.data as Uint8Array;
  expect(r.segs.shape).toEqual(shape);
  const near = nearThreshold(r, shape);
  let far = 0;
  let flipped = 0;
  for (let p = 0; p < got.length; p++) {
    if (got[p] === expected[p]) continue;
    if (near[p]) flipped++;
    else far++;
  }
  return { far, flipped };
}

function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

interface TraceCall {
  box: number;
  z: number | null;
  box256: number[];
  crop_box: number[];
  n_px_abs_logit_lt_1e3?: number;
}

function trace(stem: string): TraceCall[] {
  return JSON.parse(readFileSync(sharedPath(`fixtures/e2e/expected/${stem}.trace.json`), 'utf8')).calls;
}

describe.each(['onnx', 'tfjs'])('e2e with checkpoint-a, %s engine', (name) => {
  let engine: SegmentationEngine;
  beforeAll(async () => {
    engine = await engines[name]();
  }, 300_000);
  afterAll(() => engine?.close());

  it('2D: per-box logits within 1e-4, masks identical off the threshold', async () => {
    const r = await run(engine, CASE_2D);
    const want = await readNpzFile(sharedPath(`fixtures/e2e/expected/${CASE_2D}.logits.npz`));
    const n = want.logits.shape[0];
    expect(r.calls.length).toBe(n);
    const box256 = Array.from(want.box256.data as Float32Array);
    const cropBox = Array.from(want.crop_box.data as BigInt64Array, Number);
    r.calls.forEach((c, i) => {
      expect(c.box256).toEqual(box256.slice(4 * i, 4 * i + 4));
      expect(c.cropBox).toEqual(cropBox.slice(4 * i, 4 * i + 4));
      const ref = (want.logits.data as Float32Array).subarray(i * 65536, (i + 1) * 65536);
      expect(maxAbsDiff(r.lowResLogits![i], ref)).toBeLessThan(1e-4);
      expect(Math.abs(c.iou - (want.iou.data as Float32Array)[i])).toBeLessThan(2e-5);
    });
    const segs = (await readNpzFile(sharedPath(`fixtures/e2e/expected/${CASE_2D}.npz`))).segs;
    const { far, flipped } = compareSegs(r, segs.data as Uint8Array, segs.shape);
    expect(far).toBe(0);
    // The fixture counts 41 pixels within 1e-4 of the threshold; a port flips a few of them at most.
    expect(flipped).toBeLessThanOrEqual(41);
  }, 600_000);

  it('3D: same propagation boxes as the original, masks identical off the threshold', async () => {
    const r = await run(engine, CASE_3D);
    const want = trace(CASE_3D);
    expect(r.calls.map((c) => [c.box, c.z, c.cropBox])).toEqual(want.map((t) => [t.box, t.z, t.crop_box]));
    r.calls.forEach((c, i) => c.box256.forEach((v, k) => expect(v).toBeCloseTo(want[i].box256[k], 10)));
    const segs = (await readNpzFile(sharedPath(`fixtures/e2e/expected/${CASE_3D}.npz`))).segs;
    const { far, flipped } = compareSegs(r, segs.data as Uint8Array, segs.shape);
    expect(far).toBe(0);
    expect(flipped).toBeLessThanOrEqual(31);
  }, 900_000);
});

it('a cached export of the same checkpoint is reused', async () => {
  const again = await exportCheckpointCached(sharedPath(CKPT), { cacheDir: tmp });
  expect(again).toBe(exportDir);
});
