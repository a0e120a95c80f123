// The pipeline logic alone against ../shared/fixtures/e2e/stub-model: with the stand-in network,
// masks, crop boxes and prompt boxes must match the original exactly.
import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readNpzFile, type NdArray } from '@mcp-medsam/io';
import { OnnxClipVision, TextFeatureTable } from '@mcp-medsam/prompts';
import { sharedPath } from '../../../test-utils/shared.js';
import { MedsamPredictor, modalityToken } from '../src/index.js';
import { StubEngine } from './stub_engine.js';

interface TraceCall {
  box: number;
  z: number | null;
  box256: number[];
  crop_box: number[];
  fg_px: number;
}

let vision: OnnxClipVision;
let text: TextFeatureTable;
beforeAll(async () => {
  vision = await OnnxClipVision.create(sharedPath('fixtures/clip-standin/vision.onnx'), { threads: 1 });
  text = await TextFeatureTable.fromFile(sharedPath('fixtures/clip-standin/text-features.json'));
});
afterAll(() => vision?.close());

async function runCase(stem: string, engine: StubEngine, options = {}) {
  const input = await readNpzFile(sharedPath(`fixtures/e2e/input/${stem}.npz`));
  const predictor = new MedsamPredictor(engine, vision, text);
  const dims = stem.startsWith('3D') ? 3 : 2;
  return predictor.segment(
    { imgs: input.imgs, boxes: input.boxes, modality: modalityToken(`${stem}.npz`), dims },
    options,
  );
}

function expected(stem: string): Promise<Record<string, NdArray>> {
  return readNpzFile(sharedPath(`fixtures/e2e/stub-model/${stem}.npz`));
}

function trace(stem: string): TraceCall[] {
  return JSON.parse(readFileSync(sharedPath(`fixtures/e2e/stub-model/${stem}.trace.json`), 'utf8')).calls;
}

function countDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  expect(a.length).toBe(b.length);
  let n = 0;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) n++;
  return n;
}

describe('pipelines with the stand-in network (e2e/stub-model)', () => {
  it('2D: every call and every pixel as the original', async () => {
    const stem = '2D_XRay_cxr-pneumonia-day0';
    const engine = new StubEngine();
    const r = await runCase(stem, engine);
    const want = trace(stem);
    expect(r.calls.map((c) => [c.box, c.z, c.box256, c.cropBox, c.fgPx])).toEqual(
      want.map((c) => [c.box, c.z, c.box256, c.crop_box, c.fg_px]),
    );
    const segs = (await expected(stem)).segs;
    expect(r.segs.dtype).toBe('uint8');
    expect(r.segs.shape).toEqual(segs.shape);
    expect(countDiff(r.segs.data as Uint8Array, segs.data as Uint8Array)).toBe(0);
    // One embedding for the image and all three boxes in one decoder batch.
    expect(engine.encodeCalls).toBe(1);
    expect(engine.decodeBatches).toEqual([3]);
  });

  it('3D: propagation, fallbacks and painting as the original; each slice encoded once', async () => {
    const stem = '3D_CT_lesion-000015';
    const engine = new StubEngine();
    const r = await runCase(stem, engine);
    const want = trace(stem);
    expect(r.calls.length).toBe(want.length);
    r.calls.forEach((c, i) => {
      const t = want[i];
      expect([c.box, c.z, c.cropBox, c.fgPx]).toEqual([t.box, t.z, t.crop_box, t.fg_px]);
      // The down pass's fallback box is a float (not truncated), as the trace records it.
      c.box256.forEach((v, k) => expect(v).toBeCloseTo(t.box256[k], 10));
    });
    const segs = (await expected(stem)).segs;
    expect(r.segs.shape).toEqual(segs.shape);
    expect(countDiff(r.segs.data as Uint8Array, segs.data as Uint8Array)).toBe(0);
    const slices = new Set(want.map((c) => c.z)).size;
    expect(engine.encodeCalls).toBe(slices);
    expect(r.slices?.encoded).toBe(slices);
    // The original encodes once per call (10 here); boxes on the same slice in the same pass share
    // one decoder batch.
    expect(engine.decodeBatches.reduce((a, b) => a + b, 0)).toBe(want.length);
    expect(engine.decodeBatches.length).toBeLessThan(want.length);
  });

  it('3D: the same result with a one-box decoder batch and no embedding cache', async () => {
    const stem = '3D_CT_lesion-000015';
    const engine = new StubEngine();
    const r = await runCase(stem, engine, { maxBatch: 1, embeddingCacheMB: 0 });
    const segs = (await expected(stem)).segs;
    expect(countDiff(r.segs.data as Uint8Array, segs.data as Uint8Array)).toBe(0);
    expect(engine.decodeBatches.every((n) => n === 1)).toBe(true);
  });

  it('3D --inclusive-z also segments the first and last slice of each box', async () => {
    const stem = '3D_CT_lesion-000015';
    const base = await runCase(stem, new StubEngine());
    const incl = await runCase(stem, new StubEngine(), { inclusiveZ: true });
    const input = await readNpzFile(sharedPath(`fixtures/e2e/input/${stem}.npz`));
    const boxes = Array.from(input.boxes.data as BigInt64Array, Number);
    const extra = incl.calls.filter((c) => !base.calls.some((b) => b.box === c.box && b.z === c.z));
    const ends = [];
    for (let b = 0; b < boxes.length / 6; b++)
      ends.push([b + 1, boxes[6 * b + 2]], [b + 1, boxes[6 * b + 5]]);
    expect(extra.map((c) => [c.box, c.z]).sort()).toEqual(ends.sort());
  });
});
