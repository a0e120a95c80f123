/**
 * Synthetic dermoscopy image: skin of a random tone with mottling, sometimes the round field of
 * a contact dermatoscope, a brown irregular lesion (darker centre, pigment network) and sometimes
 * a second small naevus, with a few hairs drawn over everything (hairs do not change labels).
 */
import type { Rng } from '@mcp-medsam/core/common';
import { addGaussianNoise, binomialBlur, fractalNoise, smoothstep } from './fields.js';
import { rgbImage } from './image.js';
import { LabelCanvas, placeShape } from './labels.js';
import { chance, PixelRandom, uniform, uniformInt } from './random.js';
import { fittedShape, type ShapeRaster } from './shapes.js';
import type { GeneratedImage } from './types.js';

/** Dark hairs: quadratic Bézier curves stamped as discs into an opacity plane. */
function hairs(rng: Rng, h: number, w: number, count: number): Float32Array {
  const alpha = new Float32Array(h * w);
  for (let k = 0; k < count; k++) {
    const p0 = [uniform(rng, -0.2, 1.2) * w, uniform(rng, -0.2, 1.2) * h];
    const p2 = [uniform(rng, -0.2, 1.2) * w, uniform(rng, -0.2, 1.2) * h];
    const p1 = [uniform(rng, 0, 1) * w, uniform(rng, 0, 1) * h];
    const width = uniform(rng, 0.4, 1.1);
    const len =
      Math.sqrt((p2[0] - p0[0]) ** 2 + (p2[1] - p0[1]) ** 2) +
      Math.sqrt((p1[0] - p0[0]) ** 2 + (p1[1] - p0[1]) ** 2);
    const steps = Math.ceil(len * 2);
    const reach = Math.ceil(width + 1);
    for (let s = 0; s <= steps; s++) {
      const t = s / steps;
      const x = (1 - t) * (1 - t) * p0[0] + 2 * t * (1 - t) * p1[0] + t * t * p2[0];
      const y = (1 - t) * (1 - t) * p0[1] + 2 * t * (1 - t) * p1[1] + t * t * p2[1];
      const xi = Math.round(x);
      const yi = Math.round(y);
      for (let yy = yi - reach; yy <= yi + reach; yy++) {
        if (yy < 0 || yy >= h) continue;
        for (let xx = xi - reach; xx <= xi + reach; xx++) {
          if (xx < 0 || xx >= w) continue;
          const a = smoothstep(
            width + 0.8,
            width - 0.3,
            Math.sqrt((xx - x) * (xx - x) + (yy - y) * (yy - y)),
          );
          const i = yy * w + xx;
          if (a > alpha[i]) alpha[i] = a;
        }
      }
    }
  }
  return alpha;
}

export function generateDermoscopy(rng: Rng, h: number, w: number): GeneratedImage | null {
  const px = new PixelRandom(rng.nextU32());
  const n = h * w;
  const span = Math.min(h, w);
  const cx = w / 2;
  const cy = h / 2;
  const scope = chance(rng, 0.5);
  const scopeR = Math.sqrt(w * w + h * h) * uniform(rng, 0.42, 0.48);

  const allowed = new Uint8Array(n);
  const rad = new Float32Array(n); // distance from the image centre
  for (let y = 0; y < h; y++)
    for (let x = 0; x < w; x++) {
      const i = y * w + x;
      const d = (rad[i] = Math.sqrt((x - cx) * (x - cx) + (y - cy) * (y - cy)));
      if (!scope || d < scopeR - 0.06 * span) allowed[i] = 1;
    }
  const canvas = new LabelCanvas(h, w);
  const lesions: ShapeRaster[] = [];
  const main = fittedShape(rng, chance(rng, 0.3) ? 'lobulated' : 'blob', span * uniform(rng, 0.2, 0.28));
  const lesion = placeShape(
    canvas,
    main,
    () => [cx + uniform(rng, -0.12, 0.12) * w, cy + uniform(rng, -0.12, 0.12) * h],
    { allowed, guard: 1.15 },
  );
  if (!lesion) return null;
  canvas.add(lesion, 'lesion');
  lesions.push(lesion);
  if (chance(rng, 0.25)) {
    const s = fittedShape(rng, 'blob', span * uniform(rng, 0.06, 0.09));
    const r = placeShape(canvas, s, () => [uniform(rng, 0.1, 0.9) * w, uniform(rng, 0.1, 0.9) * h], {
      allowed,
      guard: 1.6,
    });
    if (r) {
      canvas.add(r, 'naevus');
      lesions.push(r);
    }
  }

  // Skin: tone, mottling, fine texture; vignetting or the scope's dark surround.
  const skin = [uniform(rng, 205, 240), uniform(rng, 150, 190), uniform(rng, 125, 165)];
  const mottle = fractalNoise(px, h, w, span * 0.25, 3);
  const fine = fractalNoise(px, h, w, 4, 1);
  const r = new Float32Array(n);
  const g = new Float32Array(n);
  const b = new Float32Array(n);
  const halfDiag = Math.sqrt(w * w + h * h) / 2;
  for (let i = 0; i < n; i++) {
    const d = rad[i] / halfDiag;
    const s = (1 - 0.25 * d * d) * (1 + 0.05 * mottle[i] + 0.03 * fine[i]);
    r[i] = skin[0] * s;
    g[i] = skin[1] * s * (1 - 0.03 * mottle[i]);
    b[i] = skin[2] * s;
  }

  // Lesions: light to dark brown, darker towards the centre, with a pigment network.
  const light = [uniform(rng, 150, 180), uniform(rng, 95, 120), uniform(rng, 70, 95)];
  const dark = [uniform(rng, 70, 100), uniform(rng, 40, 60), uniform(rng, 30, 45)];
  const cell = span * uniform(rng, 0.025, 0.04);
  const theta = uniform(rng, 0, Math.PI);
  const [ct, st] = [Math.cos(theta), Math.sin(theta)];
  const warp = fractalNoise(px, h, w, span * 0.08, 2);
  lesions.forEach((les, k) => {
    const { win, rho } = les;
    const depth = k === 0 ? uniform(rng, 0.25, 0.6) : uniform(rng, 0.4, 0.7);
    const net = k === 0 ? uniform(rng, 0.25, 0.45) : 0;
    for (let y = 0; y < win.h; y++)
      for (let x = 0; x < win.w; x++) {
        const q = rho[y * win.w + x];
        if (q >= 1.08) continue;
        const xx = win.x0 + x;
        const yy = win.y0 + y;
        const i = yy * w + xx;
        // A thin blurred margin outside the label, as pigment fades into skin.
        const a = q < 1 ? 1 : 0.5 * smoothstep(1.08, 1, q);
        const m = Math.min(1, depth + 0.45 * (1 - q) + 0.25 * mottle[i]);
        const u = (xx * ct + yy * st) / cell + 2 * warp[i];
        const v = (yy * ct - xx * st) / cell + 2 * warp[i];
        const line = smoothstep(
          0.3,
          0,
          Math.min(Math.abs(Math.sin(Math.PI * u)), Math.abs(Math.sin(Math.PI * v))),
        );
        const darken = 1 - net * line * smoothstep(1, 0.7, q);
        for (let c = 0; c < 3; c++) {
          const col = (light[c] + (dark[c] - light[c]) * m) * darken;
          const plane = c === 0 ? r : c === 1 ? g : b;
          plane[i] += (col - plane[i]) * a;
        }
      }
  });

  // Hairs over everything.
  const hair = hairs(rng, h, w, uniformInt(rng, 0, 5));
  const hairCol = [uniform(rng, 25, 60), uniform(rng, 20, 45), uniform(rng, 15, 35)];
  for (let i = 0; i < n; i++) {
    const a = hair[i];
    if (a === 0) continue;
    r[i] += (hairCol[0] - r[i]) * a;
    g[i] += (hairCol[1] - g[i]) * a;
    b[i] += (hairCol[2] - b[i]) * a;
  }
  for (const p of [r, g, b]) {
    binomialBlur(p, h, w);
    addGaussianNoise(p, px, 2.5);
    if (scope) for (let i = 0; i < n; i++) p[i] *= smoothstep(scopeR + 3, scopeR - 3, rad[i]);
  }
  return { imgs: rgbImage(r, g, b, h, w), gts: canvas.gts, structures: canvas.structures };
}
