/**
 * Random target shapes. Each shape is rasterised as a "normalised radius" field ρ over a pixel
 * window: ρ < 1 inside, ρ = 1 on the boundary, growing outwards. One field gives the mask, soft
 * shading (domes, cortex/medulla), rims (ρ just above 1) and guard zones for placement (ρ < 1.3).
 *
 * The basic shape is a star-shaped blob r(θ) = r0·(1 + Σ a_k cos(kθ + φ_k)), stretched to an
 * elongation and rotated. Shapes that fill too much of their bounding box are redrawn, so a box
 * prompt filled as the mask is a poor segmentation of them (see `FILL_RANGE`).
 */
import type { UniformSource } from './random.js';
import { uniform, uniformInt } from './random.js';

/** One term a·cos(kθ + φ) of a blob's radius function. */
export interface Harmonic {
  k: number;
  amp: number;
  phase: number;
}

/** A star-shaped blob, stretched by `elongation` along the direction `angle` (radians). */
export interface BlobParams {
  cx: number;
  cy: number;
  /** Mean radius in pixels before stretching (the stretch keeps the area). */
  r0: number;
  /** Ratio of the long to the short axis, at least 1. */
  elongation: number;
  angle: number;
  harmonics: readonly Harmonic[];
}

/** A blob, or a blob with a second shape cut out of it (crescents, kidney beans). */
export type ShapeSpec =
  | { type: 'blob'; blob: BlobParams }
  | { type: 'carve'; outer: ShapeSpec; cut: ShapeSpec };

/** A pixel window: columns x0..x0+w-1, rows y0..y0+h-1 (may extend past the image when measuring). */
export interface PixelWindow {
  x0: number;
  y0: number;
  w: number;
  h: number;
}

/** A shape rasterised on a window. */
export interface ShapeRaster {
  win: PixelWindow;
  rho: Float32Array;
}

/** Range of the fraction of its tight box a target may fill: box-fill DSC = 2f/(1+f) ≈ 0.55–0.75. */
export const FILL_RANGE: readonly [number, number] = [0.38, 0.6];

/** Shape families drawn by `randomShape`. */
export type ShapeFamily = 'blob' | 'ellipse' | 'lobulated' | 'crescent' | 'bean';

const TABLE = 256;

function radiusTable(harmonics: readonly Harmonic[]): Float64Array {
  const t = new Float64Array(TABLE + 1);
  for (let i = 0; i <= TABLE; i++) {
    const th = (2 * Math.PI * i) / TABLE;
    let r = 1;
    for (const h of harmonics) r += h.amp * Math.cos(h.k * th + h.phase);
    t[i] = Math.max(0.05, r);
  }
  return t;
}

/**
 * atan2(y, x) / (2π) in [0, 1), from a minimax polynomial for atan on [0, 1] (error below 2e-6
 * turns): the shapes' radius tables need no more, and Math.atan2 was most of the raster time.
 * (0, 0) gives NaN.
 */
export function turns(y: number, x: number): number {
  const ax = Math.abs(x);
  const ay = Math.abs(y);
  const swap = ay > ax;
  const z = swap ? ax / ay : ay / ax;
  const z2 = z * z;
  let a =
    z *
    (0.159133683 + z2 * (-0.0525698731 + z2 * (0.0286742421 + z2 * (-0.0135545905 + z2 * 0.00331837327))));
  if (swap) a = 0.25 - a;
  if (x < 0) a = 0.5 - a;
  if (y < 0) a = 1 - a;
  return a >= 1 ? 0 : a;
}

function blobField(p: BlobParams, win: PixelWindow, out: Float32Array): void {
  // (u, v): along and across the long axis, scaled so that the stretched blob maps back onto its
  // unstretched star shape.
  const se = Math.sqrt(p.elongation);
  const cu = Math.cos(p.angle) / se;
  const su = Math.sin(p.angle) / se;
  const cv = Math.cos(p.angle) * se;
  const sv = Math.sin(p.angle) * se;
  const inv = 1 / p.r0;
  const plain = p.harmonics.every((h) => h.amp === 0);
  // 1 / (r0·r(θ)) per table step: ρ is then distance times an interpolated table value.
  const tab = radiusTable(p.harmonics);
  for (let i = 0; i < tab.length; i++) tab[i] = inv / tab[i];
  for (let y = 0; y < win.h; y++) {
    const dy = win.y0 + y - p.cy;
    const o = y * win.w;
    const uy = dy * su;
    const vy = dy * cv;
    for (let x = 0; x < win.w; x++) {
      const dx = win.x0 + x - p.cx;
      const u = dx * cu + uy;
      const v = vy - dx * sv;
      const d = Math.sqrt(u * u + v * v);
      // A plain ellipse needs no angle (heads, bones, notches); the centre has none.
      if (plain || d === 0) {
        out[o + x] = d * inv;
        continue;
      }
      const a = turns(v, u) * TABLE;
      const i = a | 0;
      out[o + x] = d * (tab[i] + (tab[i + 1] - tab[i]) * (a - i));
    }
  }
}

/** Fill `out` (win.w·win.h) with the shape's ρ field over `win`. */
export function shapeField(
  spec: ShapeSpec,
  win: PixelWindow,
  out = new Float32Array(win.w * win.h),
): Float32Array {
  if (spec.type === 'blob') {
    blobField(spec.blob, win, out);
    return out;
  }
  shapeField(spec.outer, win, out);
  const cut = shapeField(spec.cut, win);
  // Outside the cut, 2 − ρ_cut < 1 and the outer field decides; inside it, 2 − ρ_cut > 1 excludes.
  for (let i = 0; i < out.length; i++) out[i] = Math.max(out[i], 2 - cut[i]);
  return out;
}

/** Centre of a shape (of its outer blob). */
export function shapeCentre(spec: ShapeSpec): [number, number] {
  return spec.type === 'blob' ? [spec.blob.cx, spec.blob.cy] : shapeCentre(spec.outer);
}

/** A distance from the centre beyond which the shape has no pixel. */
export function shapeBound(spec: ShapeSpec): number {
  if (spec.type === 'carve') return shapeBound(spec.outer);
  const b = spec.blob;
  let a = 1;
  for (const h of b.harmonics) a += Math.abs(h.amp);
  return b.r0 * a * Math.sqrt(b.elongation);
}

/** The shape moved so that its centre is at (cx, cy). */
export function moveShape(spec: ShapeSpec, cx: number, cy: number): ShapeSpec {
  const [x, y] = shapeCentre(spec);
  return shiftShape(spec, cx - x, cy - y);
}

function shiftShape(spec: ShapeSpec, dx: number, dy: number): ShapeSpec {
  if (spec.type === 'blob')
    return { type: 'blob', blob: { ...spec.blob, cx: spec.blob.cx + dx, cy: spec.blob.cy + dy } };
  return { type: 'carve', outer: shiftShape(spec.outer, dx, dy), cut: shiftShape(spec.cut, dx, dy) };
}

/** The window around the shape out to `pad` times its bound, clipped to an h × w image. */
export function shapeWindow(spec: ShapeSpec, h: number, w: number, pad = 1.4): PixelWindow {
  const [cx, cy] = shapeCentre(spec);
  const r = shapeBound(spec) * pad + 2;
  const x0 = Math.max(0, Math.floor(cx - r));
  const y0 = Math.max(0, Math.floor(cy - r));
  const x1 = Math.min(w, Math.ceil(cx + r) + 1);
  const y1 = Math.min(h, Math.ceil(cy + r) + 1);
  return { x0, y0, w: Math.max(0, x1 - x0), h: Math.max(0, y1 - y0) };
}

/** Rasterise a shape on an h × w image (only the window around it). */
export function rasterize(spec: ShapeSpec, h: number, w: number, pad = 1.4): ShapeRaster {
  const win = shapeWindow(spec, h, w, pad);
  return { win, rho: shapeField(spec, win) };
}

/** Pixel count, tight box (inclusive, image coordinates) and box fill of ρ < `level`. */
export function rasterStats(
  r: ShapeRaster,
  level = 1,
): { count: number; x0: number; y0: number; x1: number; y1: number; fill: number } {
  const { win, rho } = r;
  let count = 0;
  let x0 = Infinity;
  let y0 = Infinity;
  let x1 = -Infinity;
  let y1 = -Infinity;
  for (let y = 0; y < win.h; y++)
    for (let x = 0; x < win.w; x++) {
      if (rho[y * win.w + x] >= level) continue;
      count++;
      if (x < x0) x0 = x;
      if (x > x1) x1 = x;
      if (y < y0) y0 = y;
      if (y > y1) y1 = y;
    }
  if (count === 0) return { count, x0: 0, y0: 0, x1: -1, y1: -1, fill: 0 };
  const fill = count / ((x1 - x0 + 1) * (y1 - y0 + 1));
  return { count, x0: x0 + win.x0, y0: y0 + win.y0, x1: x1 + win.x0, y1: y1 + win.y0, fill };
}

/** Mean radius (r0) of the shape's outer blob. */
export function shapeRadius(spec: ShapeSpec): number {
  return spec.type === 'blob' ? spec.blob.r0 : shapeRadius(spec.outer);
}

/**
 * Fraction of its (continuous) bounding box a blob fills, from 256 points of its outline: the
 * area ½∫r(θ)²dθ (stretching keeps areas) over the extent of the rotated, stretched outline.
 */
function blobFill(b: BlobParams): number {
  const n = 256;
  const se = Math.sqrt(b.elongation);
  const c = Math.cos(b.angle);
  const s = Math.sin(b.angle);
  let area = 0;
  let x0 = Infinity;
  let x1 = -Infinity;
  let y0 = Infinity;
  let y1 = -Infinity;
  for (let i = 0; i < n; i++) {
    const th = (2 * Math.PI * i) / n;
    let r = 1;
    for (const h of b.harmonics) r += h.amp * Math.cos(h.k * th + h.phase);
    r = Math.max(0.05, r);
    area += (r * r * Math.PI) / n;
    const u = r * Math.cos(th) * se;
    const v = (r * Math.sin(th)) / se;
    const x = u * c - v * s;
    const y = u * s + v * c;
    if (x < x0) x0 = x;
    if (x > x1) x1 = x;
    if (y < y0) y0 = y;
    if (y > y1) y1 = y;
  }
  return area / ((x1 - x0) * (y1 - y0));
}

/**
 * Fraction of its tight box the shape fills: from the outline for a blob, from a raster (without
 * any image border, at the shape's size up to a mean radius of 24 pixels) for carved shapes.
 */
export function shapeFill(spec0: ShapeSpec): number {
  if (spec0.type === 'blob') return blobFill(spec0.blob);
  const r0 = shapeRadius(spec0);
  const spec = r0 > 24 ? scaleShape(spec0, 24 / r0) : spec0;
  const [cx, cy] = shapeCentre(spec);
  const r = Math.ceil(shapeBound(spec)) + 2;
  const win = { x0: Math.floor(cx) - r, y0: Math.floor(cy) - r, w: 2 * r + 1, h: 2 * r + 1 };
  return rasterStats({ win, rho: shapeField(spec, win) }).fill;
}

function harmonics(rng: UniformSource, ks: readonly number[], lo: number, hi: number): Harmonic[] {
  return ks.map((k) => ({ k, amp: uniform(rng, lo, hi), phase: uniform(rng, 0, 2 * Math.PI) }));
}

function blob(
  rng: UniformSource,
  r0: number,
  elongation: number,
  hs: Harmonic[],
  angle = uniform(rng, 0, Math.PI),
): ShapeSpec {
  return { type: 'blob', blob: { cx: 0, cy: 0, r0, elongation, angle, harmonics: hs } };
}

/**
 * A random shape of mean radius about `r0`, centred at the origin (place it with `moveShape`):
 * - `blob`: gently irregular, somewhat elongated;
 * - `ellipse`: a clearly elongated, slightly wobbly ellipse;
 * - `lobulated`: two or three broad lobes with finer bumps;
 * - `crescent`: a disc with an off-centre disc cut out;
 * - `bean`: an elongated blob with a notch in one long side (kidney-like).
 */
export function randomShape(rng: UniformSource, family: ShapeFamily, r0: number): ShapeSpec {
  switch (family) {
    case 'blob':
      // Wobble that fades with frequency, as in smooth natural outlines.
      return blob(
        rng,
        r0,
        uniform(rng, 1.2, 2.4),
        [2, 3, 4, 5].flatMap((k) => harmonics(rng, [k], 0, 0.32 / k)),
      );
    case 'ellipse':
      return blob(rng, r0, uniform(rng, 1.7, 2.8), harmonics(rng, [3, 5], 0, 0.04));
    case 'lobulated': {
      // Two or three broad lobes, with finer bumps on them.
      const k = uniformInt(rng, 2, 3);
      const hs = harmonics(rng, [k], 0.14, 0.24).concat(harmonics(rng, [k + 1, k + 2, k + 3], 0, 0.07));
      return blob(rng, r0, uniform(rng, 1, 1.6), hs);
    }
    case 'crescent': {
      const outer = blob(rng, r0, uniform(rng, 1, 1.35), harmonics(rng, [2, 3], 0, 0.06));
      const dir = uniform(rng, 0, 2 * Math.PI);
      const off = r0 * uniform(rng, 0.45, 0.65);
      const cut = blob(rng, r0 * uniform(rng, 0.7, 0.85), 1, harmonics(rng, [2], 0, 0.05));
      return { type: 'carve', outer, cut: moveShape(cut, off * Math.cos(dir), off * Math.sin(dir)) };
    }
    case 'bean': {
      const e = uniform(rng, 1.7, 2.3);
      const angle = uniform(rng, 0, Math.PI);
      const outer = blob(rng, r0, e, harmonics(rng, [2, 3], 0, 0.05), angle);
      // The notch sits on a long side: perpendicular to the long axis, at about the short radius.
      const side = angle + Math.PI / 2 + (rng.random() < 0.5 ? 0 : Math.PI);
      const off = (r0 / Math.sqrt(e)) * uniform(rng, 1.05, 1.3);
      const cut = blob(rng, r0 * uniform(rng, 0.4, 0.55), 1, [], 0);
      return { type: 'carve', outer, cut: moveShape(cut, off * Math.cos(side), off * Math.sin(side)) };
    }
  }
}

/**
 * A random shape of the family whose box fill lies in `range`. Most random shapes fill their box
 * well, so plain rejection would pile the fills up at the top of the range; instead a target fill
 * is drawn uniformly from the range and shapes are redrawn until one comes within 0.04 of it
 * (after 40 draws the one nearest the target is kept).
 */
export function fittedShape(
  rng: UniformSource,
  family: ShapeFamily,
  r0: number,
  range: readonly [number, number] = FILL_RANGE,
): ShapeSpec {
  const target = uniform(rng, range[0], range[1]);
  const lo = Math.max(range[0], target - 0.04);
  const hi = Math.min(range[1], target + 0.04);
  let best: ShapeSpec | undefined;
  let bestMiss = Infinity;
  for (let i = 0; i < 40; i++) {
    const s = randomShape(rng, family, r0);
    const f = shapeFill(s);
    if (f >= lo && f <= hi) return s;
    const miss = Math.abs(f - target);
    if (miss < bestMiss) [best, bestMiss] = [s, miss];
  }
  return best!;
}

/** The shape scaled by `f` about its centre (fill and proportions unchanged). */
export function scaleShape(spec: ShapeSpec, f: number): ShapeSpec {
  const [cx, cy] = shapeCentre(spec);
  const go = (s: ShapeSpec): ShapeSpec =>
    s.type === 'blob'
      ? {
          type: 'blob',
          blob: {
            ...s.blob,
            r0: s.blob.r0 * f,
            cx: cx + (s.blob.cx - cx) * f,
            cy: cy + (s.blob.cy - cy) * f,
          },
        }
      : { type: 'carve', outer: go(s.outer), cut: go(s.cut) };
  return go(spec);
}

/**
 * A perturbed ellipsoid for volumes: `blob` is its cross-section through the centre slice `cz`;
 * `rz` is the half-height in slices. Away from the centre the cross-section shrinks as an
 * ellipsoid's does, drifts sideways, turns and changes its wobble, all linearly in t = (z − cz)/rz.
 */
export interface EllipsoidParams {
  blob: BlobParams;
  cz: number;
  rz: number;
  /** Centre drift in pixels from t = 0 to t = 1. */
  drift: [number, number];
  /** Rotation in radians from t = 0 to t = 1. */
  twist: number;
  /** Phase change of each harmonic from t = 0 to t = 1. */
  phaseDrift: readonly number[];
}

/**
 * The in-plane shape of an ellipsoid at slice `z` and its t, or null when |t| ≥ `reach` (1: the
 * slice misses the ellipsoid; more to reach the zone around it). Its 3D field is
 * ρ3 = sqrt(ρ2² + t²), with ρ2 the in-plane field of `spec`.
 */
export function ellipsoidSlice(
  e: EllipsoidParams,
  z: number,
  reach = 1,
): { spec: ShapeSpec; t: number } | null {
  const t = (z - e.cz) / e.rz;
  if (Math.abs(t) >= reach) return null;
  const b = e.blob;
  const blob: BlobParams = {
    cx: b.cx + e.drift[0] * t,
    cy: b.cy + e.drift[1] * t,
    r0: b.r0,
    elongation: b.elongation,
    angle: b.angle + e.twist * t,
    harmonics: b.harmonics.map((h, i) => ({ ...h, phase: h.phase + (e.phaseDrift[i] ?? 0) * t })),
  };
  return { spec: { type: 'blob', blob }, t };
}
