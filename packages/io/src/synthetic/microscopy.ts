/**
 * Synthetic fluorescence microscopy: dark background with uneven illumination and faint debris,
 * several bright cells (each its own label) with granular texture and a brighter nucleus, then
 * optical blur, shot noise and read noise. Grey or green-tinted.
 */
import type { Rng } from '@mcp-medsam/core/common';
import { addValueNoise, binomialBlur, fractalNoise, smoothstep } from './fields.js';
import { greyImage, rgbImage } from './image.js';
import { LabelCanvas, placeShape } from './labels.js';
import { chance, PixelRandom, uniform, uniformInt } from './random.js';
import { fittedShape, rasterize, randomShape, moveShape, type ShapeRaster } from './shapes.js';
import type { GeneratedImage } from './types.js';

export function generateMicroscopy(rng: Rng, h: number, w: number): GeneratedImage | null {
  const px = new PixelRandom(rng.nextU32());
  const n = h * w;
  const span = Math.min(h, w);
  const canvas = new LabelCanvas(h, w);
  const cells: ShapeRaster[] = [];
  const want = uniformInt(rng, 4, 10);
  const size = span * uniform(rng, 0.06, 0.085);
  for (let k = 0; k < want; k++) {
    const u = rng.random();
    const s = fittedShape(
      rng,
      u < 0.4 ? 'ellipse' : u < 0.8 ? 'blob' : 'lobulated',
      Math.max(10, size * uniform(rng, 0.75, 1.3)),
    );
    const r = placeShape(canvas, s, () => [uniform(rng, 0.08, 0.92) * w, uniform(rng, 0.08, 0.92) * h], {
      guard: 1.4,
      tries: 24,
    });
    if (!r) continue;
    canvas.add(r, 'cell');
    cells.push(r);
  }
  if (cells.length === 0) return null;

  const bg = uniform(rng, 8, 22);
  const v = new Float32Array(n);
  addValueNoise(px, h, w, span * 0.6, bg * 0.4, v);
  for (let i = 0; i < n; i++) v[i] += bg;
  // Debris: small faint spots, not labelled.
  for (let k = uniformInt(rng, 2, 8); k > 0; k--) {
    const spec = moveShape(
      randomShape(rng, 'blob', uniform(rng, 2, 5)),
      uniform(rng, 0, w),
      uniform(rng, 0, h),
    );
    const r = rasterize(spec, h, w);
    const level = uniform(rng, 15, 40);
    for (let y = 0; y < r.win.h; y++)
      for (let x = 0; x < r.win.w; x++) {
        const i = (r.win.y0 + y) * w + r.win.x0 + x;
        if (r.rho[y * r.win.w + x] < 1 && !canvas.gts[i]) v[i] += level;
      }
  }
  // Cells: cytoplasm brightest towards the middle, granular, with a brighter off-centre nucleus.
  const grain = fractalNoise(px, h, w, 5, 1);
  for (const c of cells) {
    const { win, rho } = c;
    const level = uniform(rng, 95, 200);
    const nucleus = chance(rng, 0.7) ? uniform(rng, 1.15, 1.4) : 1;
    const nr = uniform(rng, 0.35, 0.55);
    let best = 0;
    for (let i = 1; i < rho.length; i++) if (rho[i] < rho[best]) best = i;
    const ncx = (best % win.w) + uniform(rng, -2, 2);
    const ncy = Math.floor(best / win.w) + uniform(rng, -2, 2);
    const nscale = Math.sqrt(rasterArea(c) / Math.PI) * nr;
    for (let y = 0; y < win.h; y++)
      for (let x = 0; x < win.w; x++) {
        const q = rho[y * win.w + x];
        if (q >= 1) continue;
        const i = (win.y0 + y) * w + win.x0 + x;
        const dn = Math.sqrt((x - ncx) * (x - ncx) + (y - ncy) * (y - ncy)) / nscale;
        const nuc = 1 + (nucleus - 1) * smoothstep(1.1, 0.8, dn);
        v[i] = level * (0.75 + 0.25 * (1 - q * q)) * nuc * (1 + 0.18 * grain[i]);
      }
  }
  // Optics, then shot noise (variance grows with the signal) and read noise.
  binomialBlur(v, h, w, uniformInt(rng, 2, 3));
  const shot = uniform(rng, 0.5, 1);
  const read = uniform(rng, 1.5, 3.5);
  for (let i = 0; i < n; i++) v[i] += shot * Math.sqrt(Math.max(0, v[i])) * px.normal() + read * px.normal();
  if (chance(rng, 0.5)) return { imgs: greyImage(v, h, w), gts: canvas.gts, structures: canvas.structures };
  const rr = new Float32Array(n);
  const bb = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    rr[i] = 0.25 * v[i];
    bb[i] = 0.35 * v[i];
  }
  return { imgs: rgbImage(rr, v, bb, h, w), gts: canvas.gts, structures: canvas.structures };
}

function rasterArea(r: ShapeRaster): number {
  let c = 0;
  for (let i = 0; i < r.rho.length; i++) if (r.rho[i] < 1) c++;
  return c;
}
