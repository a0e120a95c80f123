/**
 * Deterministic (case, slice) samplers over a case index. Every sampler is driven by one seeded
 * core `Rng`; its state is plain JSON, so a resumed run draws exactly the same sequence.
 *
 * Only slices with at least one foreground label are drawn, and cases without any are left out:
 * the original would resample those draws anyway (spec §10.2 step 6).
 */
import {
  InputError,
  MODALITIES,
  parseModality,
  Rng,
  type Modality,
  type RngState,
} from '@mcp-medsam/core/common';
import { foregroundSlices, type CaseEntry, type CaseIndex } from './case_index.js';

export type SamplerKind = 'modality-balanced' | 'uniform-cases' | 'uniform-slices' | 'weighted';

/** One draw: a case (index into `index.entries`) and a slice (0 for 2D). */
export interface SamplerDraw {
  caseIndex: number;
  slice: number;
}

/** Serialisable sampler state. */
export interface SamplerState {
  kind: SamplerKind;
  rng: RngState;
  /** Draws made so far. */
  draws: number;
  /** Identifies the index the sampler was built on (number of cases and a hash of their names). */
  fingerprint: string;
}

export interface Sampler {
  readonly kind: SamplerKind;
  next(): SamplerDraw;
  state(): SamplerState;
  /** Continue from a saved state. Throws an InputError for another kind or another index. */
  restore(s: SamplerState): void;
}

export interface SamplerOptions {
  /** Seed of the generator (default 0). */
  seed?: number | bigint;
}

type Entries = CaseIndex | readonly CaseEntry[];

function entriesOf(index: Entries): readonly CaseEntry[] {
  return Array.isArray(index) ? (index as readonly CaseEntry[]) : (index as CaseIndex).entries;
}

/** FNV-1a over the case names, with the count. */
export function indexFingerprint(index: Entries): string {
  const entries = entriesOf(index);
  let h = 0x811c9dc5;
  for (const e of entries) {
    const s = `${e.name}:${e.slices};`;
    for (let i = 0; i < s.length; i++) {
      h ^= s.charCodeAt(i);
      h = Math.imul(h, 0x01000193) >>> 0;
    }
  }
  return `${entries.length}:${h.toString(16).padStart(8, '0')}`;
}

interface Prepared {
  /** Foreground slices of each case (empty for cases that are never drawn). */
  fg: number[][];
  /** Drawable case indices per modality, for the modalities that have any, in MODALITIES order. */
  byModality: Map<Modality, number[]>;
  /** All drawable case indices. */
  cases: number[];
}

function prepare(index: Entries): Prepared {
  const entries = entriesOf(index);
  const fg = entries.map(foregroundSlices);
  const byModality = new Map<Modality, number[]>();
  const cases: number[] = [];
  for (const m of MODALITIES) {
    const list: number[] = [];
    entries.forEach((e, i) => {
      if (e.modality === m && fg[i].length > 0) list.push(i);
    });
    if (list.length) byModality.set(m, list);
  }
  entries.forEach((_e, i) => {
    if (fg[i].length > 0) cases.push(i);
  });
  if (cases.length === 0) throw new InputError('no case of the index has a foreground slice to sample');
  return { fg, byModality, cases };
}

abstract class BaseSampler implements Sampler {
  abstract readonly kind: SamplerKind;
  protected readonly rng: Rng;
  protected readonly p: Prepared;
  private draws = 0;
  private readonly fingerprint: string;

  constructor(index: Entries, options: SamplerOptions) {
    this.rng = new Rng(options.seed ?? 0);
    this.p = prepare(index);
    this.fingerprint = indexFingerprint(index);
  }

  protected abstract pickCase(): number;

  /** A uniform foreground slice of a case. */
  protected pickSlice(c: number): number {
    const fg = this.p.fg[c];
    return fg.length === 1 ? fg[0] : fg[this.rng.int(0, fg.length - 1)];
  }

  next(): SamplerDraw {
    const caseIndex = this.pickCase();
    const slice = this.pickSlice(caseIndex);
    this.draws++;
    return { caseIndex, slice };
  }

  state(): SamplerState {
    return { kind: this.kind, rng: this.rng.getState(), draws: this.draws, fingerprint: this.fingerprint };
  }

  restore(s: SamplerState): void {
    if (!s || typeof s !== 'object' || !s.rng) throw new InputError('restore: not a sampler state');
    if (s.kind !== this.kind)
      throw new InputError(`restore: state of a ${s.kind} sampler, this is ${this.kind}`);
    if (s.fingerprint !== this.fingerprint)
      throw new InputError(
        `restore: the state was saved on another case index (${s.fingerprint}, this one is ${this.fingerprint})`,
      );
    this.rng.setState(s.rng);
    this.draws = s.draws;
  }
}

class ModalityBalanced extends BaseSampler {
  readonly kind = 'modality-balanced' as const;
  private readonly mods: number[][];
  constructor(index: Entries, options: SamplerOptions) {
    super(index, options);
    this.mods = [...this.p.byModality.values()];
  }
  protected pickCase(): number {
    const list = this.mods[this.rng.int(0, this.mods.length - 1)];
    return list[this.rng.int(0, list.length - 1)];
  }
}

class UniformCases extends BaseSampler {
  readonly kind = 'uniform-cases' as const;
  protected pickCase(): number {
    return this.p.cases[this.rng.int(0, this.p.cases.length - 1)];
  }
}

class UniformSlices extends BaseSampler {
  readonly kind = 'uniform-slices' as const;
  /** Cumulative foreground-slice counts over `p.cases`. */
  private readonly cum: number[];
  private pendingSlice = -1;
  constructor(index: Entries, options: SamplerOptions) {
    super(index, options);
    let t = 0;
    this.cum = this.p.cases.map((c) => (t += this.p.fg[c].length));
  }
  protected pickCase(): number {
    const total = this.cum[this.cum.length - 1];
    const k = this.rng.int(0, total - 1);
    let lo = 0;
    let hi = this.cum.length - 1;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (this.cum[mid] > k) hi = mid;
      else lo = mid + 1;
    }
    const c = this.p.cases[lo];
    this.pendingSlice = this.p.fg[c][k - (lo > 0 ? this.cum[lo - 1] : 0)];
    return c;
  }
  protected override pickSlice(): number {
    return this.pendingSlice;
  }
}

class Weighted extends BaseSampler {
  readonly kind = 'weighted' as const;
  private readonly lists: number[][] = [];
  private readonly cum: number[] = [];
  constructor(index: Entries, weights: Partial<Record<string, number>>, options: SamplerOptions) {
    super(index, options);
    const w = new Map<Modality, number>();
    for (const [k, v] of Object.entries(weights)) {
      if (v === undefined) continue;
      if (!(typeof v === 'number' && Number.isFinite(v) && v >= 0))
        throw new InputError(`weighted: weight of ${k} must be a finite number >= 0, got ${v}`);
      w.set(parseModality(k), v);
    }
    let t = 0;
    for (const [m, list] of this.p.byModality) {
      const v = w.get(m) ?? 0;
      if (v <= 0) continue;
      this.lists.push(list);
      this.cum.push((t += v));
    }
    if (t <= 0)
      throw new InputError(
        `weighted: no positive weight for a modality present in the index (${[...this.p.byModality.keys()].join(', ')})`,
      );
  }
  protected pickCase(): number {
    const u = this.rng.random() * this.cum[this.cum.length - 1];
    let i = 0;
    while (i < this.cum.length - 1 && this.cum[i] <= u) i++;
    const list = this.lists[i];
    return list[this.rng.int(0, list.length - 1)];
  }
}

/**
 * The paper's sampler (spec §10.2 step 1): a modality uniformly among those present, a case
 * uniformly among that modality's cases, then a uniform slice among the slices with foreground.
 */
export function modalityBalanced(index: Entries, options: SamplerOptions = {}): Sampler {
  return new ModalityBalanced(index, options);
}

/** A case uniformly among all cases, then a uniform foreground slice. */
export function uniformCases(index: Entries, options: SamplerOptions = {}): Sampler {
  return new UniformCases(index, options);
}

/** A foreground slice uniformly among all foreground slices of all cases (a 2D case counts once). */
export function uniformSlices(index: Entries, options: SamplerOptions = {}): Sampler {
  return new UniformSlices(index, options);
}

/**
 * A modality with probability proportional to its weight (names or aliases as keys; modalities
 * absent from `weightsByModality` get weight 0), then a uniform case and foreground slice.
 */
export function weighted(
  index: Entries,
  weightsByModality: Partial<Record<string, number>>,
  options: SamplerOptions = {},
): Sampler {
  return new Weighted(index, weightsByModality, options);
}

/** Build a sampler by kind (for CLIs and configs). */
export function createSampler(
  kind: SamplerKind,
  index: Entries,
  options: SamplerOptions & { weights?: Partial<Record<string, number>> } = {},
): Sampler {
  switch (kind) {
    case 'modality-balanced':
      return modalityBalanced(index, options);
    case 'uniform-cases':
      return uniformCases(index, options);
    case 'uniform-slices':
      return uniformSlices(index, options);
    case 'weighted':
      if (!options.weights) throw new InputError('weighted sampler: weights are required');
      return weighted(index, options.weights, options);
    default:
      throw new InputError(`unknown sampler kind ${JSON.stringify(kind)}`);
  }
}
