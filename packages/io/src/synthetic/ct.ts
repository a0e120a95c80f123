/**
 * Synthetic abdominal CT slice (soft-tissue window): body outline with subcutaneous fat, mottled
 * soft tissue, a vertebra and the aorta (not labelled), then the targets: a liver-like organ,
 * sometimes a lesion inside it (its own label), kidneys and a crescent spleen.
 */
import type { Rng } from '@mcp-medsam/core/common';
import { addGaussianNoise, binomialBlur, fractalNoise, smoothstep } from './fields.js';
import { greyImage } from './image.js';
import { LabelCanvas, placeShape, pointInside } from './labels.js';
import { chance, PixelRandom, uniform } from './random.js';
import {
  fittedShape,
  rasterize,
  rasterStats,
  shapeField,
  type ShapeRaster,
  type ShapeSpec,
} from './shapes.js';
import type { GeneratedImage } from './types.js';

/** Fill a structure with `level`, shifted by up to `centreDelta` towards its middle, plus texture. */
function paintRaster(
  v: Float32Array,
  w: number,
  r: ShapeRaster,
  level: number,
  centreDelta: number,
  tex: Float32Array,
  texAmp: number,
): void {
  const { win, rho } = r;
  for (let y = 0; y < win.h; y++)
    for (let x = 0; x < win.w; x++) {
      const p = rho[y * win.w + x];
      if (p >= 1) continue;
      const i = (win.y0 + y) * w + win.x0 + x;
      v[i] = level + centreDelta * (1 - p * p) + texAmp * tex[i];
    }
}

export function generateCt(rng: Rng, h: number, w: number): GeneratedImage | null {
  const px = new PixelRandom(rng.nextU32());
  const n = h * w;
  const canvas = new LabelCanvas(h, w);

  // Body: a wide ellipse following the image's aspect, barely irregular.
  const rx = w * uniform(rng, 0.4, 0.46);
  const ry = h * uniform(rng, 0.34, 0.41);
  const bx = w / 2 + uniform(rng, -0.02, 0.02) * w;
  const by = h / 2 + uniform(rng, -0.02, 0.02) * h;
  const body: ShapeSpec = {
    type: 'blob',
    blob: {
      cx: bx,
      cy: by,
      r0: Math.sqrt(rx * ry),
      elongation: Math.max(rx, ry) / Math.min(rx, ry),
      angle: (rx >= ry ? 0 : Math.PI / 2) + uniform(rng, -0.05, 0.05),
      harmonics: [2, 3, 4].map((k) => ({
        k,
        amp: uniform(rng, 0, 0.025),
        phase: uniform(rng, 0, 2 * Math.PI),
      })),
    },
  };
  const bodyRho = shapeField(body, { x0: 0, y0: 0, w, h });
  const rm = Math.min(rx, ry);

  // Subcutaneous fat of uneven thickness, soft tissue with fat mottling inside it.
  const fatVar = fractalNoise(px, h, w, rm * 0.6, 1);
  const tex = fractalNoise(px, h, w, rm * 0.25, 3);
  const fine = fractalNoise(px, h, w, 6, 1);
  const fatDepth = uniform(rng, 0.08, 0.14);
  const tissue = uniform(rng, 100, 115);
  const fat = uniform(rng, 38, 52);
  const v = new Float32Array(n);
  const interior = new Uint8Array(n);
  for (let i = 0; i < n; i++) {
    const p = bodyRho[i];
    if (p >= 1) {
      v[i] = 6;
      continue;
    }
    const inner = 1 - fatDepth * (1 + 0.8 * fatVar[i]);
    const skin = p > 0.985 ? 1 : 0;
    const mottle = smoothstep(0.25, 0.45, tex[i]);
    const soft = tissue + 8 * fine[i];
    v[i] = p < inner ? soft + (fat - soft) * mottle : skin ? tissue : fat + 6 * fine[i];
    if (p < inner - 0.05) interior[i] = 1;
  }

  // Vertebra (cancellous bone with a cortical rim), spinous process and aorta: bright, not labelled.
  const rv = rm * uniform(rng, 0.11, 0.14);
  const vx = bx + uniform(rng, -0.03, 0.03) * rx;
  const vy = by + ry * uniform(rng, 0.5, 0.6);
  const bones: [ShapeSpec, number, number][] = [
    [{ type: 'blob', blob: { cx: vx, cy: vy, r0: rv, elongation: 1.2, angle: 0, harmonics: [] } }, 195, 245],
    [
      {
        type: 'blob',
        blob: {
          cx: vx,
          cy: vy + 1.7 * rv,
          r0: 0.45 * rv,
          elongation: 2.6,
          angle: Math.PI / 2,
          harmonics: [],
        },
      },
      215,
      240,
    ],
    [
      {
        type: 'blob',
        blob: {
          cx: vx + 0.5 * rv,
          cy: vy - 1.75 * rv,
          r0: 0.55 * rv,
          elongation: 1,
          angle: 0,
          harmonics: [],
        },
      },
      175,
      175,
    ],
  ];
  for (const [spec, core, rim] of bones) {
    const r = rasterize(spec, h, w, 1.6);
    for (let y = 0; y < r.win.h; y++)
      for (let x = 0; x < r.win.w; x++) {
        const p = r.rho[y * r.win.w + x];
        const i = (r.win.y0 + y) * w + r.win.x0 + x;
        if (p < 1) v[i] = (p > 0.78 ? rim : core) + 6 * fine[i];
        if (p < 1.5) interior[i] = 0;
      }
  }

  // Liver: large, on the image's left (the patient's right), front half.
  const liverShape = fittedShape(rng, chance(rng, 0.3) ? 'lobulated' : 'blob', rm * uniform(rng, 0.3, 0.4));
  const liver = placeShape(
    canvas,
    liverShape,
    () => [bx - rx * uniform(rng, 0.25, 0.45), by - ry * uniform(rng, -0.05, 0.25)],
    { allowed: interior, guard: 1.05 },
  );
  if (!liver) return null;
  canvas.add(liver, 'liver');
  const liverLevel = uniform(rng, 158, 172);
  paintRaster(v, w, liver, liverLevel, 0, fine, 5);

  // A lesion inside the liver, usually darker (hypodense), sometimes brighter (enhancing).
  if (chance(rng, 0.75)) {
    const liverR = Math.sqrt(rasterStats(liver).count / Math.PI);
    const lr = Math.max(9, liverR * uniform(rng, 0.22, 0.34));
    const lesionShape = fittedShape(rng, chance(rng, 0.5) ? 'blob' : 'ellipse', lr);
    const liverMask = new Uint8Array(n);
    for (let i = 0; i < n; i++) liverMask[i] = canvas.gts[i] === 1 ? 1 : 0;
    const lesion = placeShape(canvas, lesionShape, () => pointInside(rng, liver, 0.6), {
      allowed: liverMask,
      within: 1,
      guard: 1.3,
    });
    if (lesion) {
      canvas.add(lesion, 'liver lesion');
      const hyper = chance(rng, 0.25);
      const delta = uniform(rng, 42, 60);
      paintRaster(v, w, lesion, hyper ? liverLevel + delta : liverLevel - delta, hyper ? 10 : -10, fine, 4);
    }
  }

  // Kidneys: beans low on either side of the spine, each its own label when present.
  const sides = [-1, 1].filter(() => chance(rng, 0.6));
  for (const s of sides) {
    const kShape = fittedShape(rng, 'bean', rm * uniform(rng, 0.14, 0.19));
    const kidney = placeShape(
      canvas,
      kShape,
      () => [bx + s * rx * uniform(rng, 0.28, 0.45), by + ry * uniform(rng, 0.15, 0.4)],
      {
        allowed: interior,
        guard: 1.25,
      },
    );
    if (!kidney) continue;
    canvas.add(kidney, s < 0 ? 'right kidney' : 'left kidney');
    const cortex = uniform(rng, 195, 215);
    const medulla = cortex - uniform(rng, 30, 45);
    const { win, rho } = kidney;
    for (let y = 0; y < win.h; y++)
      for (let x = 0; x < win.w; x++) {
        const p = rho[y * win.w + x];
        if (p >= 1) continue;
        const i = (win.y0 + y) * w + win.x0 + x;
        v[i] = (p < 0.6 ? medulla : cortex) + 5 * fine[i];
      }
  }

  // Spleen, sometimes: a crescent high on the image's right, a little darker than the liver.
  if (chance(rng, 0.4)) {
    const sShape = fittedShape(rng, 'crescent', rm * uniform(rng, 0.16, 0.22));
    const spleen = placeShape(
      canvas,
      sShape,
      () => [bx + rx * uniform(rng, 0.35, 0.55), by - ry * uniform(rng, -0.1, 0.25)],
      { allowed: interior, guard: 1.25 },
    );
    if (spleen) {
      canvas.add(spleen, 'spleen');
      paintRaster(v, w, spleen, liverLevel - uniform(rng, 0, 8), 0, fine, 5);
    }
  }

  // Partial volume at edges, then quantum noise.
  binomialBlur(v, h, w);
  addGaussianNoise(v, px, uniform(rng, 5, 9));
  return { imgs: greyImage(v, h, w), gts: canvas.gts, structures: canvas.structures };
}
