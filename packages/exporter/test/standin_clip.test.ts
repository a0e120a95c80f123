import { mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { Rng } from '@mcp-medsam/core';
import {
  CLIP_TEXT_STRINGS,
  OnnxClipVision,
  StandinClipVision,
  TextFeatureTable,
  standinClipWeights,
  standinTextTable,
} from '@mcp-medsam/prompts';
import { writeStandinClip } from '@mcp-medsam/exporter';

const dirs: string[] = [];
afterAll(async () => {
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});

function randomCrops(n: number, seed: number): Float32Array {
  const rng = new Rng(seed);
  return Float32Array.from({ length: n * 3 * 224 * 224 }, () => rng.random());
}

describe('CLIP stand-in', () => {
  it('the ONNX graph and the TypeScript tower give the same features', async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'standin-'));
    dirs.push(dir);
    const files = await writeStandinClip(dir, 7);
    const onnx = await OnnxClipVision.create(files.vision, { threads: 1 });
    const js = new StandinClipVision(7);
    const pixels = randomCrops(3, 1);
    const [a, b] = [await onnx.embed(pixels, 3), await js.embed(pixels, 3)];
    await onnx.close();
    expect(a.length).toBe(3 * 512);
    let worst = 0;
    for (let i = 0; i < a.length; i++) worst = Math.max(worst, Math.abs(a[i] - b[i]));
    expect(worst).toBeLessThan(1e-5);
    // Features of [0,1) crops are O(1), as the real CLIP's are after its projection.
    const rms = Math.sqrt(b.reduce((s, v) => s + v * v, 0) / b.length);
    expect(rms).toBeGreaterThan(0.2);
    expect(rms).toBeLessThan(5);
  });

  it('pools 28 x 28 cells: a crop that differs in one cell changes the features', async () => {
    const js = new StandinClipVision();
    const pixels = randomCrops(1, 2);
    const moved = pixels.slice();
    moved[(1 * 224 + 100) * 224 + 5] += 1; // channel 1, row 100, column 5 → cell (1, 3, 0)
    const [a, b] = [await js.embed(pixels, 1), await js.embed(moved, 1)];
    const { projWeight } = js.weights;
    const cell = 1 * 64 + 3 * 8 + 0;
    for (const k of [0, 100, 511]) expect(b[k] - a[k]).toBeCloseTo(projWeight[cell * 512 + k] / 784, 6);
  });

  it('writes a text table the runtime reads, with every modality string', async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'standin-'));
    dirs.push(dir);
    const files = await writeStandinClip(dir);
    const table = await TextFeatureTable.fromFile(files.text);
    expect(table.model).toBe('standin');
    const inMemory = standinTextTable();
    for (const s of CLIP_TEXT_STRINGS) expect(Array.from(table.get(s))).toEqual(Array.from(inMemory.get(s)));
    expect(JSON.parse(await readFile(files.text, 'utf8')).seed).toBe(20240512);
  });

  it('is deterministic per seed and differs between seeds', () => {
    const [a, b, c] = [standinClipWeights(3), standinClipWeights(3), standinClipWeights(4)];
    expect(a.projWeight).toEqual(b.projWeight);
    expect(a.projWeight[0]).not.toBe(c.projWeight[0]);
    expect(a.text.get('CT Image')).not.toEqual(a.text.get('MR Image'));
  });

  it('rejects a crop batch of the wrong size', async () => {
    await expect(new StandinClipVision().embed(new Float32Array(10), 1)).rejects.toThrow(
      /expected 1 x 3 x 224 x 224 = 150528 values, got 10/,
    );
  });
});
