/**
 * Synthetic brain MR volume (FLAIR-like, thick axial slices): scalp, skull, dark CSF rim and
 * ventricles, grey/white matter texture, a smooth multiplicative bias field and Rician noise.
 * Targets are perturbed ellipsoids whose cross-section changes smoothly from slice to slice: a
 * bright tumour, often with oedema around it, and sometimes a dark cyst.
 */
import type { Rng } from '@mcp-medsam/core/common';
import { addValueNoise, binomialBlur, fractalNoise, smoothstep } from './fields.js';
import { volumeImage } from './image.js';
import { chance, PixelRandom, sign, uniform } from './random.js';
import {
  type EllipsoidParams,
  ellipsoidSlice,
  fittedShape,
  shapeField,
  shapeWindow,
  type ShapeRaster,
  type ShapeSpec,
} from './shapes.js';
import { type GeneratedImage, MIN_TARGET_PIXELS } from './types.js';

/**
 * ρ3 of an ellipsoid on each slice out to `reach` (null where the slice is beyond it), or null as
 * soon as its zone ρ3 < `guard` leaves `allowed`, meets a label or touches a slice border.
 */
function placeEllipsoid(
  e: EllipsoidParams,
  reach: number,
  guard: number,
  allowed: Uint8Array,
  gts: Uint8Array,
  d: number,
  h: number,
  w: number,
): (ShapeRaster | null)[] | null {
  const out: (ShapeRaster | null)[] = [];
  for (let z = 0; z < d; z++) {
    const s = ellipsoidSlice(e, z, reach);
    if (!s) {
      out.push(null);
      continue;
    }
    const win = shapeWindow(s.spec, h, w, reach + 0.1);
    const rho = shapeField(s.spec, win);
    const t2 = s.t * s.t;
    for (let y = 0; y < win.h; y++)
      for (let x = 0; x < win.w; x++) {
        const j = y * win.w + x;
        const p = (rho[j] = Math.sqrt(rho[j] * rho[j] + t2));
        if (p >= guard) continue;
        const xx = win.x0 + x;
        const yy = win.y0 + y;
        if (xx === 0 || yy === 0 || xx === w - 1 || yy === h - 1) return null;
        const i = z * h * w + yy * w + xx;
        if (!allowed[i] || gts[i]) return null;
      }
    out.push({ win, rho });
  }
  return out;
}

export function generateMr(rng: Rng, d: number, h: number, w: number): GeneratedImage | null {
  const px = new PixelRandom(rng.nextU32());
  const n2 = h * w;
  const n = d * n2;

  // Head: taller than wide, largest somewhat before the middle slice (the volume ends near the vertex).
  const R = Math.min(h, w) * uniform(rng, 0.41, 0.46);
  const hx = w / 2 + uniform(rng, -0.03, 0.03) * w;
  const hy = h / 2 + uniform(rng, -0.03, 0.03) * h;
  const zc = (d - 1) * uniform(rng, 0.3, 0.55);
  const zh = d * uniform(rng, 1.2, 1.6);
  const headElong = uniform(rng, 1.08, 1.25);
  const headAngle = Math.PI / 2 + uniform(rng, -0.06, 0.06);
  const ventricles = chance(rng, 0.85);
  const vr = R * uniform(rng, 0.1, 0.14);
  const vz = d * uniform(rng, 0.25, 0.4);

  const headRho = new Float32Array(n);
  const brain = new Uint8Array(n); // where targets may go
  const ventricle = new Uint8Array(n);
  const full = { x0: 0, y0: 0, w, h };
  for (let z = 0; z < d; z++) {
    const tz = (z - zc) / zh;
    const spec: ShapeSpec = {
      type: 'blob',
      blob: {
        cx: hx,
        cy: hy,
        r0: R * Math.sqrt(1 - tz * tz),
        elongation: headElong,
        angle: headAngle,
        harmonics: [],
      },
    };
    const slice = headRho.subarray(z * n2, (z + 1) * n2);
    shapeField(spec, full, slice);
    for (let i = 0; i < n2; i++) if (slice[i] < 0.8) brain[z * n2 + i] = 1;
    if (ventricles && Math.abs(z - zc) < vz) {
      const f = Math.sqrt(1 - ((z - zc) / vz) ** 2);
      for (const s of [-1, 1]) {
        const vs: ShapeSpec = {
          type: 'blob',
          blob: {
            cx: hx + s * R * 0.13,
            cy: hy - R * 0.08,
            r0: vr * (0.5 + 0.5 * f),
            elongation: 3,
            angle: Math.PI / 2 + s * 0.35,
            harmonics: [],
          },
        };
        const win = shapeWindow(vs, h, w, 1.6);
        const rho = shapeField(vs, win);
        for (let y = 0; y < win.h; y++)
          for (let x = 0; x < win.w; x++) {
            const p = rho[y * win.w + x];
            const i = z * n2 + (win.y0 + y) * w + win.x0 + x;
            if (p < 1) ventricle[i] = 1;
            if (p < 1.6) brain[i] = 0;
          }
      }
    }
  }

  // Targets: a bright tumour (label 1), then maybe a dark cyst.
  const gts = new Uint8Array(n);
  const structures: string[] = [];
  const targets: {
    rs: (ShapeRaster | null)[];
    keep: boolean[];
    level: number;
    oedema: number;
    core: number;
  }[] = [];
  const specs = [{ name: 'tumour', r: [0.15, 0.24] }];
  if (chance(rng, 0.5)) specs.push({ name: 'cyst', r: [0.11, 0.15] });
  for (const t of specs) {
    const r0 = Math.max(10, R * uniform(rng, t.r[0], t.r[1]));
    const base = fittedShape(rng, chance(rng, 0.5) ? 'blob' : 'lobulated', r0);
    if (base.type !== 'blob') continue;
    const rz = Math.max(2.5, d * uniform(rng, 0.2, 0.34));
    const reach = 1.45;
    let placed: (ShapeRaster | null)[] | null = null;
    for (let attempt = 0; attempt < 45 && !placed; attempt++) {
      const shrink = attempt >= 30 ? 0.72 : attempt >= 15 ? 0.85 : 1;
      const params: EllipsoidParams = {
        blob: {
          ...base.blob,
          r0: base.blob.r0 * shrink,
          cx: hx + (R / Math.sqrt(headElong)) * uniform(rng, -0.4, 0.4),
          cy: hy + R * Math.sqrt(headElong) * uniform(rng, -0.4, 0.4),
        },
        cz: uniform(rng, 0.3, 0.7) * (d - 1),
        rz,
        drift: [sign(rng) * uniform(rng, 0, 0.3) * r0, sign(rng) * uniform(rng, 0, 0.3) * r0],
        twist: uniform(rng, -0.4, 0.4),
        phaseDrift: base.blob.harmonics.map(() => uniform(rng, -1, 1)),
      };
      const zc0 = Math.round(params.cz) * n2 + Math.round(params.blob.cy) * w + Math.round(params.blob.cx);
      if (!brain[zc0] || gts[zc0]) continue;
      placed = placeEllipsoid(params, reach, 1.2, brain, gts, d, h, w);
    }
    // Without the tumour the case is drawn again; a cyst that does not fit is left out.
    if (!placed) {
      if (t.name === 'tumour') return null;
      continue;
    }
    // Slices that only graze the ellipsoid would give slivers; those stay unlabelled.
    const keep = placed.map((r) => {
      if (!r) return false;
      let c = 0;
      for (let i = 0; i < r.rho.length; i++) if (r.rho[i] < 1) c++;
      return c >= MIN_TARGET_PIXELS;
    });
    if (!keep.some(Boolean)) {
      if (t.name === 'tumour') return null;
      continue;
    }
    const label = structures.length + 1;
    structures.push(t.name);
    placed.forEach((r, z) => {
      if (!r || !keep[z]) return;
      const { win, rho } = r;
      for (let y = 0; y < win.h; y++)
        for (let x = 0; x < win.w; x++)
          if (rho[y * win.w + x] < 1) gts[z * n2 + (win.y0 + y) * w + win.x0 + x] = label;
    });
    const tumour = t.name === 'tumour';
    targets.push({
      rs: placed,
      keep,
      level: tumour ? uniform(rng, 190, 215) : uniform(rng, 30, 50),
      oedema: tumour && chance(rng, 0.6) ? uniform(rng, 145, 160) : NaN,
      // A necrotic core only in larger tumours, and never darker than the oedema around them.
      core: tumour && r0 > 16 && chance(rng, 0.3) ? uniform(rng, 150, 165) : 0,
    });
  }

  // Tissue texture that varies smoothly through the slices: two fields mixed by slice.
  const texA = fractalNoise(px, h, w, R * 0.35, 3);
  const texB = fractalNoise(px, h, w, R * 0.35, 3);
  const biasA = addValueNoise(px, h, w, Math.min(h, w) * 0.7, 1, new Float32Array(n2));
  const biasB = addValueNoise(px, h, w, Math.min(h, w) * 0.7, 1, new Float32Array(n2));
  const biasAmp = uniform(rng, 0.1, 0.22);
  const gm = uniform(rng, 108, 122);
  const wm = gm - uniform(rng, 12, 22);
  const scalp = uniform(rng, 140, 170);
  const v = new Float32Array(n);
  for (let z = 0; z < d; z++) {
    const a = Math.cos((Math.PI * z) / (2 * d));
    const b = Math.sin((Math.PI * z) / (2 * d));
    const o = z * n2;
    for (let i = 0; i < n2; i++) {
      const p = headRho[o + i];
      let val: number;
      if (p >= 1) val = 0;
      else if (p >= 0.93) val = scalp;
      else if (p >= 0.86) val = 12;
      else if (p >= 0.82) val = 22;
      else {
        const tex = a * texA[i] + b * texB[i];
        // More grey matter towards the cortex.
        const g = smoothstep(-0.15, 0.15, tex + 2.5 * (p - 0.7));
        val = ventricle[o + i] ? 22 : wm + (gm - wm) * g + 6 * tex;
      }
      v[o + i] = val;
    }
  }
  for (const t of targets) {
    t.rs.forEach((r, z) => {
      if (!r) return;
      const { win, rho } = r;
      for (let y = 0; y < win.h; y++)
        for (let x = 0; x < win.w; x++) {
          const p = rho[y * win.w + x];
          if (p >= 1.45) continue;
          const i = z * n2 + (win.y0 + y) * w + win.x0 + x;
          if (p < 1 && t.keep[z]) {
            const core = t.core ? smoothstep(0.45, 0.15, p) * (t.core - t.level) : 0;
            v[i] = t.level + core + 8 * texA[i - z * n2];
          } else if (!Number.isNaN(t.oedema) && headRho[i] < 0.82) {
            v[i] += (t.oedema - v[i]) * smoothstep(1.45, 1.05, p);
          }
        }
    });
  }

  // In-plane partial volume, bias field, Rician noise (magnitude of a complex Gaussian signal).
  const sigma = uniform(rng, 4, 7);
  for (let z = 0; z < d; z++) {
    const o = z * n2;
    const slice = v.subarray(o, o + n2);
    binomialBlur(slice, h, w);
    const tz = z / Math.max(1, d - 1);
    for (let i = 0; i < n2; i++) {
      const bias = 1 + biasAmp * ((1 - tz) * biasA[i] + tz * biasB[i]);
      const sig = slice[i] * bias;
      const re = sig + sigma * px.normal();
      // Well above the noise the magnitude is the real part to within σ²/2s; skip the second draw.
      if (sig > 8 * sigma) slice[i] = re;
      else {
        const im = sigma * px.normal();
        slice[i] = Math.sqrt(re * re + im * im);
      }
    }
  }
  const sx = Math.round(uniform(rng, 0.85, 1.1) * 1000) / 1000;
  const sz = Math.round(uniform(rng, 4, 6) * 10) / 10;
  return { imgs: volumeImage(v, d, h, w), gts, structures, spacing: [sx, sx, sz] };
}
