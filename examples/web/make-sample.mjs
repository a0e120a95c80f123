// Writes sample.png, the page's bundled image: a synthetic CT-like abdominal slice (body outline,
// fat, liver, kidneys, spine, aorta, bowel gas and noise), 384 x 320 grey. Deterministic: running
// it again gives the same file. Usage: node examples/web/make-sample.mjs [out.png]
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { ndarray, writePngFile } from '@mcp-medsam/io';

export const SAMPLE_WIDTH = 384;
export const SAMPLE_HEIGHT = 320;

/** A small seeded generator (mulberry32), so the sample does not depend on Math.random. */
function rng(seed) {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Inside an axis-aligned ellipse centred at (cx, cy) with radii (rx, ry), rotated by `rot` rad. */
function inEllipse(x, y, cx, cy, rx, ry, rot = 0) {
  const dx = x - cx;
  const dy = y - cy;
  const c = Math.cos(rot);
  const s = Math.sin(rot);
  const u = (dx * c + dy * s) / rx;
  const v = (-dx * s + dy * c) / ry;
  return u * u + v * v <= 1;
}

/** The sample's grey values, row-major (H, W). */
export function sampleSlice() {
  const w = SAMPLE_WIDTH;
  const h = SAMPLE_HEIGHT;
  const rand = rng(20240512);
  const out = new Uint8Array(w * h);
  const gas = Array.from({ length: 7 }, () => [250 + rand() * 60, 120 + rand() * 60, 5 + rand() * 7]);
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      let v = 0; // air
      if (inEllipse(x, y, 192, 165, 170, 128)) v = 70; // subcutaneous fat
      if (inEllipse(x, y, 192, 167, 158, 116)) v = 118; // muscle and soft tissue
      if (inEllipse(x, y, 128, 140, 72, 62, -0.35)) v = 150; // liver
      if (inEllipse(x, y, 268, 128, 34, 26, 0.3)) v = 138; // spleen
      if (inEllipse(x, y, 132, 200, 22, 32, 0.25) || inEllipse(x, y, 252, 200, 22, 32, -0.25)) v = 165; // kidneys
      if (inEllipse(x, y, 192, 180, 11, 11)) v = 190; // aorta (contrast)
      if (inEllipse(x, y, 192, 228, 24, 22)) v = 225; // vertebral body
      if (inEllipse(x, y, 192, 262, 9, 14)) v = 215; // spinous process
      for (const [gx, gy, r] of gas) if (inEllipse(x, y, gx - 40, gy, r, r * 0.8)) v = 20; // bowel gas
      const noise = v > 0 ? (rand() + rand() + rand() - 1.5) * 14 : rand() * 6;
      out[y * w + x] = Math.max(0, Math.min(255, Math.round(v + noise)));
    }
  }
  return out;
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const file = process.argv[2] ?? fileURLToPath(new URL('./sample.png', import.meta.url));
  await writePngFile(file, ndarray('uint8', [SAMPLE_HEIGHT, SAMPLE_WIDTH], sampleSlice()));
  console.log(`wrote ${file} (${SAMPLE_WIDTH} x ${SAMPLE_HEIGHT})`);
}
