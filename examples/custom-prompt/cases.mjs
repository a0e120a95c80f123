// A few small challenge-format 2D cases (`2D_CT_*.npz`: `imgs` (H,W,3) uint8, `gts` (H,W)
// uint8) with two labelled ellipses each, so the example needs no downloaded data.
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { Rng } from '@mcp-medsam/core';
import { writeNpzFile } from '@mcp-medsam/io';

/**
 * One case: label 1 a bright ellipse and label 2 a dimmer one (drawn second, so it may cover part
 * of label 1) on a dark background, with Gaussian noise everywhere.
 */
export function syntheticCase(rng, h = 160, w = 192) {
  const img = new Uint8Array(h * w * 3);
  const gt = new Uint8Array(h * w);
  const ellipse = (label, level) => {
    const cy = rng.int(Math.round(0.25 * h), Math.round(0.75 * h));
    const cx = rng.int(Math.round(0.25 * w), Math.round(0.75 * w));
    const ry = rng.int(Math.round(0.08 * h), Math.round(0.2 * h));
    const rx = rng.int(Math.round(0.08 * w), Math.round(0.2 * w));
    for (let y = 0; y < h; y++)
      for (let x = 0; x < w; x++)
        if (((y - cy) / ry) ** 2 + ((x - cx) / rx) ** 2 <= 1) {
          gt[y * w + x] = label;
          img[3 * (y * w + x)] = level;
        }
  };
  ellipse(1, 200);
  ellipse(2, 130);
  for (let i = 0; i < h * w; i++) {
    const v = (gt[i] ? img[3 * i] : 50) + Math.round(12 * rng.normal());
    const c = Math.max(0, Math.min(255, v));
    img[3 * i] = img[3 * i + 1] = img[3 * i + 2] = c;
  }
  return {
    imgs: { dtype: 'uint8', shape: [h, w, 3], data: img },
    gts: { dtype: 'uint8', shape: [h, w], data: gt },
  };
}

/** Writes `count` cases to `dir` (deterministic for a seed); resolves to their paths. */
export async function writeSyntheticCases(dir, { count = 6, seed = 1 } = {}) {
  await mkdir(dir, { recursive: true });
  const rng = new Rng(seed);
  const files = [];
  for (let i = 0; i < count; i++) {
    const file = path.join(dir, `2D_CT_synthetic-${String(i).padStart(3, '0')}.npz`);
    await writeNpzFile(file, syntheticCase(rng));
    files.push(file);
  }
  return files;
}
