/**
 * Synthetic B-mode ultrasound: a sector field of view from an apex above the image, layered
 * tissue echogenicity with depth attenuation, fully developed speckle (Rayleigh amplitude of a
 * correlated complex Gaussian field) and log compression. Targets: an anechoic cyst with a bright
 * wall and posterior acoustic enhancement, and sometimes a hypoechoic solid nodule.
 */
import type { Rng } from '@mcp-medsam/core/common';
import { addGaussianNoise, fractalNoise, gaussianBlur, smoothstep } from './fields.js';
import { greyImage } from './image.js';
import { LabelCanvas, placeShape } from './labels.js';
import { chance, PixelRandom, uniform } from './random.js';
import { fittedShape, type ShapeRaster, turns } from './shapes.js';
import type { GeneratedImage } from './types.js';

export function generateUs(rng: Rng, h: number, w: number): GeneratedImage | null {
  const px = new PixelRandom(rng.nextU32());
  const n = h * w;

  // Sector geometry: polar coordinates of every pixel about the apex.
  const ax = w / 2 + uniform(rng, -0.03, 0.03) * w;
  const ay = -h * uniform(rng, 0.05, 0.2);
  const half = uniform(rng, 0.5, 0.7); // half opening angle, radians
  const rMin = -ay + h * uniform(rng, 0.02, 0.06);
  const rMax = -ay + h * uniform(rng, 0.92, 1.1);
  const rad = new Float32Array(n);
  const ang = new Float32Array(n);
  const fov = new Uint8Array(n);
  for (let y = 0; y < h; y++)
    for (let x = 0; x < w; x++) {
      const i = y * w + x;
      const dx = x - ax;
      const dy = y - ay;
      rad[i] = Math.sqrt(dx * dx + dy * dy);
      // Angle from the vertical, in (−π, π].
      const a = turns(dx, dy);
      ang[i] = 2 * Math.PI * (a > 0.5 ? a - 1 : a);
      if (rad[i] > rMin && rad[i] < rMax && Math.abs(ang[i]) < half) fov[i] = 1;
    }
  // Targets must sit well inside the sector, with room around them.
  const inner = new Uint8Array(n);
  for (let i = 0; i < n; i++)
    if (fov[i] && Math.abs(ang[i]) < half - 0.06 && rad[i] > rMin + 0.08 * h && rad[i] < rMax - 0.04 * h)
      inner[i] = 1;

  const canvas = new LabelCanvas(h, w);
  const span = Math.min(h, w);
  const centre = (): [number, number] => {
    const a = uniform(rng, -0.6, 0.6) * half;
    const r = rMin + (Math.min(rMax, h - ay) - rMin) * uniform(rng, 0.25, 0.65);
    return [ax + r * Math.sin(a), ay + r * Math.cos(a)];
  };
  const cystShape = fittedShape(rng, chance(rng, 0.6) ? 'blob' : 'ellipse', span * uniform(rng, 0.09, 0.15));
  const cyst = placeShape(canvas, cystShape, centre, { allowed: inner, guard: 1.3 });
  if (!cyst) return null;
  canvas.add(cyst, 'cyst');
  let nodule: ShapeRaster | null = null;
  if (chance(rng, 0.5)) {
    const s = fittedShape(rng, chance(rng, 0.5) ? 'lobulated' : 'blob', span * uniform(rng, 0.07, 0.11));
    nodule = placeShape(canvas, s, centre, { allowed: inner, guard: 1.5 });
    if (nodule) canvas.add(nodule, 'solid nodule');
  }

  // Echogenicity: depth layers (skin, fat, a fascia line, parenchyma) with coarse texture.
  const tex = fractalNoise(px, h, w, span * 0.2, 3);
  const fasciaDepth = rMin + h * uniform(rng, 0.12, 0.22);
  const fatDepth = rMin + h * uniform(rng, 0.04, 0.08);
  const level = uniform(rng, 0.45, 0.6);
  const atten = uniform(rng, 0.3, 0.7) / h;
  const echo = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    if (!fov[i]) continue;
    const r = rad[i];
    let e = r < fatDepth ? 0.75 : r < fasciaDepth ? 0.35 : level;
    const f = (r - fasciaDepth) / 3;
    e += 0.6 * Math.exp(-f * f);
    e *= 1 + 0.35 * tex[i];
    echo[i] = e * Math.exp(-atten * (r - rMin));
  }

  // Posterior enhancement: behind the cyst along each beam, in proportion to the length of fluid
  // the beam crossed (so beams that graze the cyst's sides get little), fading with depth.
  const bins = 720;
  const far = new Float32Array(bins).fill(-1);
  const near = new Float32Array(bins).fill(Infinity);
  const binOf = new Int32Array(n);
  for (let i = 0; i < n; i++)
    binOf[i] = Math.max(0, Math.min(bins - 1, Math.floor(((ang[i] + half) / (2 * half)) * bins)));
  {
    const { win, rho } = cyst;
    for (let y = 0; y < win.h; y++)
      for (let x = 0; x < win.w; x++) {
        if (rho[y * win.w + x] >= 1) continue;
        const i = (win.y0 + y) * w + win.x0 + x;
        const b = binOf[i];
        if (rad[i] > far[b]) far[b] = rad[i];
        if (rad[i] < near[b]) near[b] = rad[i];
      }
  }
  let longest = 1;
  for (let b = 0; b < bins; b++) if (far[b] > 0) longest = Math.max(longest, far[b] - near[b]);
  const gainOf = new Float32Array(bins);
  for (let b = 0; b < bins; b++)
    if (far[b] > 0) gainOf[b] = Math.min(1, (far[b] - near[b]) / (0.6 * longest));
  const boost = uniform(rng, 0.8, 1.3);
  const reach = Math.max(20, 0.25 * h);
  for (let i = 0; i < n; i++) {
    if (!fov[i]) continue;
    const b = binOf[i];
    if (far[b] > 0 && rad[i] > far[b])
      echo[i] *= 1 + boost * gainOf[b] * Math.exp(-(rad[i] - far[b]) / reach);
  }
  // The cyst: nearly anechoic inside, a bright wall just outside the label.
  const cystLevel = uniform(rng, 0.02, 0.07);
  {
    const { win, rho } = cyst;
    for (let y = 0; y < win.h; y++)
      for (let x = 0; x < win.w; x++) {
        const p = rho[y * win.w + x];
        const i = (win.y0 + y) * w + win.x0 + x;
        if (p < 1) echo[i] = cystLevel;
        else if (p < 1.14) echo[i] *= 1 + 1.2 * smoothstep(1.14, 1.03, p);
      }
  }
  if (nodule) {
    const { win, rho } = nodule;
    const nl = uniform(rng, 0.12, 0.2);
    for (let y = 0; y < win.h; y++)
      for (let x = 0; x < win.w; x++) {
        const p = rho[y * win.w + x];
        const i = (win.y0 + y) * w + win.x0 + x;
        if (p < 1) echo[i] = nl * (1 + 0.4 * tex[i]) + 0.05 * smoothstep(0.9, 1, p);
      }
  }

  // Speckle: a complex Gaussian field, correlated more across than along the beam, as amplitude.
  const re = new Float32Array(n);
  const im = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    re[i] = px.normal();
    im[i] = px.normal();
  }
  const sLat = uniform(rng, 1.8, 2.6);
  const sAx = uniform(rng, 0.9, 1.3);
  gaussianBlur(re, h, w, sLat, sAx);
  gaussianBlur(im, h, w, sLat, sAx);
  // Blurring shrinks the variance; rescale so that the mean amplitude is about 1.
  let m2 = 0;
  for (let i = 0; i < n; i++) m2 += re[i] * re[i] + im[i] * im[i];
  const norm = 1 / Math.sqrt(m2 / n);
  const gain = uniform(rng, 5, 9);
  const top = Math.log1p(gain * 2.2);
  const v = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    if (!fov[i]) continue;
    const amp = Math.sqrt(re[i] * re[i] + im[i] * im[i]) * norm;
    const edge = smoothstep(0, 0.02, half - Math.abs(ang[i])); // soft sector edge
    v[i] = (255 * edge * Math.log1p(gain * echo[i] * amp)) / top;
  }
  addGaussianNoise(v, px, 2);
  return { imgs: greyImage(v, h, w), gts: canvas.gts, structures: canvas.structures };
}
