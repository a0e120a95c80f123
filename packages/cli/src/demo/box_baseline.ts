/**
 * The box baseline: every box prompt filled as its own mask (later boxes over earlier ones, as
 * the pipelines paint). A model that cannot beat it has learned nothing the prompt did not say.
 */
import { mkdir, readdir } from 'node:fs/promises';
import path from 'node:path';
import { ndarray, readChallengeCase, toFloat64, writeSegs, type NdArray } from '@mcp-medsam/io';

/** The label map of a case's boxes, inclusive of both ends on every axis and clipped to the image. */
export function boxBaselineSegs(imgsShape: readonly number[], boxes: NdArray, dims: 2 | 3): Uint16Array {
  const [D, H, W] = dims === 2 ? [1, imgsShape[0], imgsShape[1]] : imgsShape;
  const k = dims === 2 ? 4 : 6;
  const v = toFloat64(boxes);
  const n = v.length / k;
  const segs = new Uint16Array(D * H * W);
  for (let b = 0; b < n; b++) {
    const r = v.subarray(b * k, (b + 1) * k);
    const [x0, y0, x1, y1] = dims === 2 ? [r[0], r[1], r[2], r[3]] : [r[0], r[1], r[3], r[4]];
    const [z0, z1] = dims === 2 ? [0, 0] : [r[2], r[5]];
    for (let z = Math.max(0, z0); z <= Math.min(D - 1, z1); z++)
      for (let y = Math.max(0, y0); y <= Math.min(H - 1, y1); y++) {
        const row = (z * H + y) * W;
        segs.fill(b + 1, row + Math.max(0, x0), row + Math.min(W - 1, x1) + 1);
      }
  }
  return segs;
}

/** Writes the box baseline of every case of `testDir` into `outDir` (same file names). */
export async function writeBoxBaseline(testDir: string, outDir: string): Promise<void> {
  await mkdir(outDir, { recursive: true });
  for (const name of (await readdir(testDir)).filter((f) => f.endsWith('.npz')).sort()) {
    const c = await readChallengeCase(path.join(testDir, name));
    if (!c.boxes) continue;
    const spatial = c.dims === 2 ? c.imgs.shape.slice(0, 2) : c.imgs.shape;
    const segs = ndarray('uint16', spatial, boxBaselineSegs(c.imgs.shape, c.boxes, c.dims));
    await writeSegs(path.join(outDir, name), segs, c.boxes.shape[0]);
  }
}
