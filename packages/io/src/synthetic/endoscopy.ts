/**
 * Synthetic colonoscopy frame: pink-red mucosa lit from the camera (vignetting, a dark lumen,
 * folds circling it, fine vessel texture), the scope's round field stop, and the targets: raised
 * redder polyps shaded as domes with specular highlights (highlights are part of the polyp label).
 */
import type { Rng } from '@mcp-medsam/core/common';
import { addGaussianNoise, binomialBlur, fractalNoise, smoothstep } from './fields.js';
import { rgbImage } from './image.js';
import { LabelCanvas, placeShape } from './labels.js';
import { chance, PixelRandom, uniform, uniformInt } from './random.js';
import { fittedShape, rasterStats, type ShapeRaster } from './shapes.js';
import type { GeneratedImage } from './types.js';

/** Add soft white spots (specular reflections) of radius ~`r` around (cx, cy) to the planes. */
function specular(
  planes: Float32Array[],
  h: number,
  w: number,
  cx: number,
  cy: number,
  r: number,
  strength: number,
): void {
  const x0 = Math.max(0, Math.floor(cx - 2 * r));
  const x1 = Math.min(w - 1, Math.ceil(cx + 2 * r));
  const y0 = Math.max(0, Math.floor(cy - 2 * r));
  const y1 = Math.min(h - 1, Math.ceil(cy + 2 * r));
  for (let y = y0; y <= y1; y++)
    for (let x = x0; x <= x1; x++) {
      const q = ((x - cx) ** 2 + (y - cy) ** 2) / (r * r);
      const a = strength * Math.exp(-q * q);
      if (a < 0.01) continue;
      const i = y * w + x;
      for (const p of planes) p[i] += (250 - p[i]) * a;
    }
}

export function generateEndoscopy(rng: Rng, h: number, w: number): GeneratedImage | null {
  const px = new PixelRandom(rng.nextU32());
  const n = h * w;
  const span = Math.min(h, w);

  // The visible disc (corners cut off by the field stop), and the lumen.
  const cx = w / 2;
  const cy = h / 2;
  const stop = uniform(rng, 1.05, 1.25);
  const lx = cx + uniform(rng, -0.3, 0.3) * w;
  const ly = cy + uniform(rng, -0.3, 0.3) * h;
  const lumenR = span * uniform(rng, 0.12, 0.2);
  const visible = new Uint8Array(n);
  const allowed = new Uint8Array(n);
  const ell = new Float32Array(n); // elliptical radius, 1 at the image's edge midpoints
  const lum = new Float32Array(n); // distance from the lumen's centre
  for (let y = 0; y < h; y++)
    for (let x = 0; x < w; x++) {
      const ex = (x - cx) / (w / 2);
      const ey = (y - cy) / (h / 2);
      const i = y * w + x;
      const e = (ell[i] = Math.sqrt(ex * ex + ey * ey));
      const dl = (lum[i] = Math.sqrt((x - lx) * (x - lx) + (y - ly) * (y - ly)));
      if (e < stop) visible[i] = 1;
      // Polyps stay out of the dark lumen and the darkest vignetting, where they would fade.
      if (e < Math.min(stop - 0.12, 0.95) && dl > 1.6 * lumenR) allowed[i] = 1;
    }

  const canvas = new LabelCanvas(h, w);
  const polyps: ShapeRaster[] = [];
  const count = chance(rng, 0.3) ? 2 : 1;
  for (let k = 0; k < count; k++) {
    const s = fittedShape(rng, chance(rng, 0.5) ? 'blob' : 'lobulated', span * uniform(rng, 0.1, 0.17));
    const r = placeShape(canvas, s, () => [uniform(rng, 0.15, 0.85) * w, uniform(rng, 0.15, 0.85) * h], {
      allowed,
      guard: 1.35,
    });
    if (!r) {
      if (k === 0) return null;
      continue;
    }
    canvas.add(r, 'polyp');
    polyps.push(r);
  }

  // Mucosa: base colour, lit from the camera (vignetting), darker towards the lumen, with folds
  // circling the lumen, closer together towards it as in perspective, fading in and out.
  const base = [uniform(rng, 195, 225), uniform(rng, 105, 135), uniform(rng, 85, 110)];
  const tex = fractalNoise(px, h, w, span * 0.3, 3);
  const foldMask = fractalNoise(px, h, w, span * 0.35, 1);
  const vessels = fractalNoise(px, h, w, span * 0.12, 2);
  const folds = uniform(rng, 2.5, 4);
  const foldPhase = uniform(rng, 0, 2 * Math.PI);
  const shade = new Float32Array(n);
  const r = new Float32Array(n);
  const g = new Float32Array(n);
  const b = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    if (!visible[i]) continue;
    const e = ell[i];
    const dl = lum[i];
    const fold = Math.cos(2 * Math.PI * folds * Math.log1p(dl / lumenR) + foldPhase + 3 * tex[i]);
    const show = smoothstep(-0.25, 0.2, foldMask[i]);
    let s = 1 - 0.4 * e * e;
    s *= 1 - 0.85 * Math.exp(-(dl * dl) / (2 * lumenR * lumenR));
    s *= 1 - show * (0.35 * smoothstep(0.6, 0.95, fold) - 0.1 * smoothstep(0.1, -0.5, fold));
    s *= 1 + 0.12 * tex[i];
    shade[i] = s;
    // Vessels: darker red lines where a mid-scale noise crosses zero.
    const vein = 0.35 * smoothstep(0.035, 0, Math.abs(vessels[i]));
    r[i] = base[0] * s * (1 - 0.35 * vein);
    g[i] = base[1] * s * (1 - vein);
    b[i] = base[2] * s * (1 - 0.8 * vein);
  }

  // Polyps: redder, raised as paraboloid domes and lit by the scope's light near the camera:
  // Lambert shading from the surface normal plus a Phong highlight where the normal faces the
  // light, and a darker rim where the dome meets the wall.
  const tint = [uniform(rng, 1, 1.1), uniform(rng, 0.35, 0.5), uniform(rng, 0.35, 0.5)];
  const light = [uniform(rng, -0.5, 0.5), uniform(rng, -0.5, 0.5), 1];
  const ln = Math.sqrt(light[0] ** 2 + light[1] ** 2 + 1);
  const [Lx, Ly, Lz] = [light[0] / ln, light[1] / ln, 1 / ln];
  const hn = Math.sqrt(Lx * Lx + Ly * Ly + (Lz + 1) ** 2);
  const [Hx, Hy, Hz] = [Lx / hn, Ly / hn, (Lz + 1) / hn];
  const shine = uniform(rng, 30, 80);
  for (const p of polyps) {
    const { win, rho } = p;
    const radius = Math.sqrt(rasterStats(p).count / Math.PI);
    const height = new Float32Array(rho.length);
    for (let j = 0; j < rho.length; j++) height[j] = rho[j] < 1 ? 0.6 * radius * (1 - rho[j] * rho[j]) : 0;
    for (let y = 0; y < win.h; y++)
      for (let x = 0; x < win.w; x++) {
        const j = y * win.w + x;
        const q = rho[j];
        if (q >= 1.15) continue;
        const i = (win.y0 + y) * w + win.x0 + x;
        if (q >= 1) {
          const dark = 1 - 0.15 * smoothstep(1.15, 1, q);
          r[i] *= dark;
          g[i] *= dark;
          b[i] *= dark;
          continue;
        }
        const gx = 0.5 * (height[x + 1 < win.w ? j + 1 : j] - height[x > 0 ? j - 1 : j]);
        const gy = 0.5 * (height[y + 1 < win.h ? j + win.w : j] - height[y > 0 ? j - win.w : j]);
        const nn = Math.sqrt(gx * gx + gy * gy + 1);
        const lambert = Math.max(0, (-gx * Lx - gy * Ly + Lz) / nn);
        const spec = Math.pow(Math.max(0, (-gx * Hx - gy * Hy + Hz) / nn), shine);
        const s = shade[i] * (0.35 + 0.75 * lambert) * (1 + 0.08 * tex[i]);
        r[i] = base[0] * tint[0] * s + 240 * spec;
        g[i] = base[1] * tint[1] * s + 240 * spec;
        b[i] = base[2] * tint[2] * s + 230 * spec;
      }
  }
  // A few reflections on the mucosa.
  const planes = [r, g, b];
  for (let k = uniformInt(rng, 0, 4); k > 0; k--) {
    const sx = uniform(rng, 0.1, 0.9) * w;
    const sy = uniform(rng, 0.1, 0.9) * h;
    const i = Math.floor(sy) * w + Math.floor(sx);
    if (visible[i] && !canvas.gts[i]) specular(planes, h, w, sx, sy, uniform(rng, 1.5, 3.5), 0.9);
  }

  // Optics blur, sensor noise; the field stop stays black.
  for (const p of planes) {
    binomialBlur(p, h, w, 2);
    addGaussianNoise(p, px, 2.5);
    for (let i = 0; i < n; i++) if (!visible[i]) p[i] = 2;
  }
  return { imgs: rgbImage(r, g, b, h, w), gts: canvas.gts, structures: canvas.structures };
}
