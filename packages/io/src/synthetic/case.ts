/**
 * One synthetic challenge case of a kind, reproducible from a seed: options are checked, the
 * kind's generator runs, and draws whose targets are too small or too box-like are redrawn.
 */
import { InputError, MODALITIES, type Modality, parseModality, Rng } from '@mcp-medsam/core/common';
import { ndarray, type NdArray } from '../dtype.js';
import { generateCt } from './ct.js';
import { generateDermoscopy } from './dermoscopy.js';
import { generateEndoscopy } from './endoscopy.js';
import { targetStats, type TargetStats } from './labels.js';
import { generateMicroscopy } from './microscopy.js';
import { generateMr } from './mr.js';
import { uniformInt } from './random.js';
import {
  type CaseSize,
  type GeneratedImage,
  MIN_TARGET_PIXELS,
  SYNTHETIC_DIMS,
  SYNTHETIC_KINDS,
  type SyntheticKind,
} from './types.js';
import { generateUs } from './us.js';

/** A synthetic case in the challenge layout. */
export interface SyntheticCase {
  /** File name without `.npz`: `2D_<kind>_synthetic-<seed>` or `3D_...`. */
  name: string;
  kind: SyntheticKind;
  modality: Modality;
  /** Row of the category embedding. */
  categoryIdx: number;
  dims: 2 | 3;
  /** 2D: (H,W,3) uint8 (grey kinds repeat the channel); 3D: (D,H,W) uint8. */
  imgs: NdArray<'uint8'>;
  /** Label map of the spatial shape, 0 = background, labels 1..n. */
  gts: NdArray<'uint8'>;
  /** Tight box of each label in label order: (n,4) or (n,6) int64, max inclusive. */
  boxes: NdArray<'int64'>;
  /** 3D only: voxel spacing (x, y, z) as the challenge stores it, float64 (3,). */
  spacing?: NdArray<'float64'>;
  /** Name of each label's structure (index 0 is label 1). */
  structures: string[];
}

/** Sizes of a case; unset sizes are drawn per case from the kind's default range. */
export interface SyntheticCaseOptions {
  /** 2D: 128..1024 (default 200..400); MR: 128..512 (default 160..224). */
  height?: number;
  width?: number;
  /** MR only: 6..64 slices (default 12..20). */
  depth?: number;
}

/** What every accepted case satisfies. */
export const SYNTHETIC_TARGETS = {
  /** Fewest pixels of a target (of each slice it appears in, for volumes). */
  minPixels: MIN_TARGET_PIXELS,
  /** Range of the DSC of a 2D target's tight box filled as its mask. */
  boxFillDice2d: [0.55, 0.8] as readonly [number, number],
  /** The same for volumes, with the 3D box. */
  boxFillDice3d: [0.45, 0.8] as readonly [number, number],
} as const;

const GENERATORS: Record<SyntheticKind, (rng: Rng, size: CaseSize) => GeneratedImage | null> = {
  CT: (rng, s) => generateCt(rng, s.height, s.width),
  MR: (rng, s) => generateMr(rng, s.depth, s.height, s.width),
  US: (rng, s) => generateUs(rng, s.height, s.width),
  Endoscopy: (rng, s) => generateEndoscopy(rng, s.height, s.width),
  Dermoscopy: (rng, s) => generateDermoscopy(rng, s.height, s.width),
  Microscopy: (rng, s) => generateMicroscopy(rng, s.height, s.width),
};

const ATTEMPTS = 16;

/** Check that `kind` is a synthetic kind; InputError otherwise. */
export function checkSyntheticKind(kind: unknown): asserts kind is SyntheticKind {
  if (typeof kind !== 'string' || !(SYNTHETIC_KINDS as readonly string[]).includes(kind))
    throw new InputError(
      `unknown synthetic kind ${JSON.stringify(kind)} (known: ${SYNTHETIC_KINDS.join(', ')})`,
    );
}

/** Check that a seed is a non-negative safe integer (it becomes part of file names). */
export function checkSyntheticSeed(seed: unknown, what = 'seed'): asserts seed is number {
  if (typeof seed !== 'number' || !Number.isSafeInteger(seed) || seed < 0)
    throw new InputError(`${what} must be a non-negative integer, got ${String(seed)}`);
}

function sizeOption(value: number | undefined, name: string, lo: number, hi: number): number | undefined {
  if (value === undefined) return undefined;
  if (!Number.isInteger(value) || value < lo || value > hi)
    throw new InputError(`synthetic case ${name} must be an integer in [${lo}, ${hi}], got ${String(value)}`);
  return value;
}

/** The file name (without `.npz`) of a synthetic case. */
export function syntheticCaseName(kind: SyntheticKind, seed: number): string {
  return `${SYNTHETIC_DIMS[kind]}D_${kind}_synthetic-${seed}`;
}

function problemOf(stats: TargetStats[], gen: GeneratedImage, dims: 2 | 3): string | null {
  if (stats.length === 0) return 'no target';
  if (stats.length !== gen.structures.length) return 'labels and structures differ';
  const [lo, hi] = dims === 2 ? SYNTHETIC_TARGETS.boxFillDice2d : SYNTHETIC_TARGETS.boxFillDice3d;
  for (const s of stats) {
    if (s.minSliceCount < SYNTHETIC_TARGETS.minPixels) return `label ${s.label} too small`;
    if (s.boxFillDice < lo || s.boxFillDice > hi)
      return `label ${s.label} box fill ${s.boxFillDice.toFixed(3)}`;
  }
  return null;
}

/** The challenge's box rows (max inclusive) from the label statistics, in label order. */
function tightBoxes(stats: readonly TargetStats[], dims: 2 | 3): NdArray<'int64'> {
  const k = dims === 2 ? 4 : 6;
  const out = ndarray('int64', [stats.length, k]);
  stats.forEach((s, r) => {
    const [x0, y0, z0, x1, y1, z1] = s.box;
    const row = dims === 2 ? [x0, y0, x1, y1] : [x0, y0, z0, x1, y1, z1];
    row.forEach((v, j) => (out.data[r * k + j] = BigInt(v)));
  });
  return out;
}

/**
 * A synthetic case of `kind`, the same for the same seed and options. Throws an InputError for
 * an unknown kind, a bad seed or bad sizes.
 */
export function syntheticCase(
  kind: SyntheticKind,
  seed: number,
  options: SyntheticCaseOptions = {},
): SyntheticCase {
  checkSyntheticKind(kind);
  checkSyntheticSeed(seed);
  if (options === null || typeof options !== 'object')
    throw new InputError('synthetic case options must be an object');
  const dims = SYNTHETIC_DIMS[kind];
  const maxSide = dims === 2 ? 1024 : 512;
  const height = sizeOption(options.height, 'height', 128, maxSide);
  const width = sizeOption(options.width, 'width', 128, maxSide);
  const depth = sizeOption(options.depth, 'depth', 6, 64);
  if (dims === 2 && depth !== undefined)
    throw new InputError(`synthetic ${kind} cases are 2D: depth does not apply`);

  // The kind is mixed into the seed so that seed s of two kinds are unrelated draws.
  const rng = new Rng(BigInt(seed) * 8n + BigInt(SYNTHETIC_KINDS.indexOf(kind)));
  const [lo, hi] = dims === 2 ? [200, 400] : [160, 224];
  const size: CaseSize = {
    depth: dims === 2 ? 1 : (depth ?? uniformInt(rng, 12, 20)),
    height: height ?? uniformInt(rng, lo, hi),
    width: width ?? uniformInt(rng, lo, hi),
  };
  const shape = dims === 2 ? [size.height, size.width] : [size.depth, size.height, size.width];
  let why = '';
  for (let attempt = 0; attempt < ATTEMPTS; attempt++) {
    const gen = GENERATORS[kind](rng, size);
    if (!gen) {
      why = 'targets could not be placed';
      continue;
    }
    const stats = targetStats(gen.gts, shape);
    const problem = problemOf(stats, gen, dims);
    if (problem) {
      why = problem;
      continue;
    }
    const gts = ndarray('uint8', shape, gen.gts);
    const modality = parseModality(kind);
    const out: SyntheticCase = {
      name: syntheticCaseName(kind, seed),
      kind,
      modality,
      categoryIdx: MODALITIES.indexOf(modality),
      dims,
      imgs: gen.imgs,
      gts,
      boxes: tightBoxes(stats, dims),
      structures: gen.structures,
    };
    if (gen.spacing) out.spacing = ndarray('float64', [3], gen.spacing);
    return out;
  }
  // Not reachable with the default sizes (the tests draw many seeds); tiny images may get here.
  throw new InputError(
    `synthetic ${kind} case ${seed} (${shape.join('x')}): no acceptable draw in ${ATTEMPTS} attempts (last: ${why})`,
  );
}
