/**
 * An index of a directory of challenge npz files (spec §10.1): modality, dimensionality, slice
 * count and the label ids present in every slice, so that samplers can draw a (case, slice) pair
 * without opening any file. The index is cached as JSON; a rescan re-reads only the files whose
 * size or mtime changed.
 */
import { mkdir, readdir, readFile, rename, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { InputError, type Modality } from '@mcp-medsam/core/common';
import { modalityFromFileName, openNpzFile, type NdArray } from '@mcp-medsam/io';

/** One case of the index. */
export interface CaseEntry {
  /** Absolute path of the npz file. */
  file: string;
  /** File name without directory and `.npz`. */
  name: string;
  modality: Modality;
  /** Row of the category embedding (spec §3.4). */
  categoryIdx: number;
  /** 2 for (H,W) label maps, 3 for (D,H,W). */
  dims: 2 | 3;
  /** Number of slices (1 for 2D). */
  slices: number;
  /** Foreground label ids (ascending, 0 excluded) present in each slice. */
  labelsPerSlice: number[][];
  /**
   * `MR_totalseg` volumes (spec §10.2 step 3): the axis permutation that sorts the axes by
   * ascending size. Slices (and `labelsPerSlice`) then run along the permuted first axis.
   */
  transpose?: number[];
  /** File size in bytes and modification time, used to refresh the cache. */
  size: number;
  mtimeMs: number;
}

/** A file the scan could not read. */
export interface CaseIndexFailure {
  file: string;
  error: string;
}

export interface CaseIndex {
  /** The scanned directory (absolute). */
  dir: string;
  /** Cases sorted by file name. */
  entries: CaseEntry[];
  failures: CaseIndexFailure[];
  /** How many entries were read from the files and how many came from the cache. */
  stats: { read: number; cached: number };
}

export interface BuildCaseIndexOptions {
  /** JSON cache file; read when present, (re)written after the scan. */
  cachePath?: string;
  /** Also list files of subdirectories (default false). */
  recursive?: boolean;
}

const CACHE_VERSION = 1;

interface CacheFile {
  version: number;
  entries: CaseEntry[];
}

/** Whether a file name is the `MR_totalseg` special case of the original dataset. */
export function isMrTotalseg(fileName: string): boolean {
  return fileName.includes('MR_totalseg');
}

/** Label ids present in each of `n` consecutive planes of `plane` elements of a label map. */
function labelsPerPlane(gts: NdArray, n: number, plane: number): number[][] {
  const data = gts.data as ArrayLike<number | bigint>;
  const out: number[][] = [];
  for (let s = 0; s < n; s++) {
    const seen = new Set<number>();
    const base = s * plane;
    let prev: number | bigint = 0;
    for (let i = 0; i < plane; i++) {
      const v = data[base + i];
      if (v === prev) continue; // long runs of the same label are common
      prev = v;
      if (v !== 0 && v !== 0n) seen.add(Number(v));
    }
    out.push([...seen].sort((a, b) => a - b));
  }
  return out;
}

/** Labels per slice along a permuted first axis (MR_totalseg), without materialising the transpose. */
function labelsPerPermutedSlice(gts: NdArray, perm: number[]): number[][] {
  const shape = gts.shape;
  const strides = [shape[1] * shape[2], shape[2], 1];
  const data = gts.data as ArrayLike<number | bigint>;
  const [a0, a1, a2] = perm;
  const out: number[][] = [];
  for (let i = 0; i < shape[a0]; i++) {
    const seen = new Set<number>();
    for (let j = 0; j < shape[a1]; j++) {
      for (let k = 0; k < shape[a2]; k++) {
        const v = data[i * strides[a0] + j * strides[a1] + k * strides[a2]];
        if (v !== 0 && v !== 0n) seen.add(Number(v));
      }
    }
    out.push([...seen].sort((a, b) => a - b));
  }
  return out;
}

/** Read one case's index entry (the file is read once; only `gts` is decompressed). */
export async function readCaseEntry(file: string): Promise<CaseEntry> {
  const st = await stat(file);
  const name = path.basename(file).replace(/\.npz$/i, '');
  const { modality, categoryIdx } = modalityFromFileName(file);
  const npz = await openNpzFile(file);
  if (!npz.has('imgs')) throw new InputError('no imgs array', { file });
  if (!npz.has('gts')) throw new InputError('no gts array (a training case needs labels)', { file });
  const gts = npz.get('gts');
  let dims: 2 | 3;
  let labels: number[][];
  let transpose: number[] | undefined;
  if (gts.shape.length === 2) {
    dims = 2;
    labels = labelsPerPlane(gts, 1, gts.shape[0] * gts.shape[1]);
  } else if (gts.shape.length === 3) {
    dims = 3;
    if (isMrTotalseg(path.basename(file))) {
      transpose = [0, 1, 2].sort((a, b) => gts.shape[a] - gts.shape[b]);
      labels = labelsPerPermutedSlice(gts, transpose);
    } else {
      labels = labelsPerPlane(gts, gts.shape[0], gts.shape[1] * gts.shape[2]);
    }
  } else {
    throw new InputError(`gts: expected (H,W) or (D,H,W), got [${gts.shape}]`, { file });
  }
  const entry: CaseEntry = {
    file,
    name,
    modality,
    categoryIdx,
    dims,
    slices: labels.length,
    labelsPerSlice: labels,
    size: st.size,
    mtimeMs: st.mtimeMs,
  };
  if (transpose) entry.transpose = transpose;
  return entry;
}

async function listNpz(dir: string, recursive: boolean): Promise<string[]> {
  const names = (await readdir(dir, { recursive })) as string[];
  return names
    .filter((n) => n.toLowerCase().endsWith('.npz'))
    .map((n) => path.join(dir, n))
    .sort();
}

async function loadCache(cachePath: string): Promise<Map<string, CaseEntry>> {
  const map = new Map<string, CaseEntry>();
  let text: string;
  try {
    text = await readFile(cachePath, 'utf8');
  } catch {
    return map; // no cache yet
  }
  try {
    const parsed = JSON.parse(text) as CacheFile;
    if (parsed?.version !== CACHE_VERSION || !Array.isArray(parsed.entries)) return map;
    for (const e of parsed.entries) if (e && typeof e.file === 'string') map.set(e.file, e);
  } catch {
    // A corrupt cache is rebuilt.
  }
  return map;
}

/**
 * Scan `dir` for challenge npz files. Unreadable files (bad zip, unknown modality, no gts...) are
 * listed in `failures` and the scan goes on. With `cachePath`, unchanged files (same size and
 * mtime) are taken from the cache, and the cache is rewritten (atomically) afterwards.
 */
export async function buildCaseIndex(dir: string, options: BuildCaseIndexOptions = {}): Promise<CaseIndex> {
  const root = path.resolve(dir);
  let files: string[];
  try {
    files = await listNpz(root, options.recursive === true);
  } catch (e) {
    throw new InputError(`cannot list ${root}: ${(e as Error).message}`, { file: root, cause: e });
  }
  const cache = options.cachePath ? await loadCache(options.cachePath) : new Map<string, CaseEntry>();
  const entries: CaseEntry[] = [];
  const failures: CaseIndexFailure[] = [];
  let read = 0;
  let cached = 0;
  for (const file of files) {
    try {
      const st = await stat(file);
      const old = cache.get(file);
      if (old && old.size === st.size && old.mtimeMs === st.mtimeMs) {
        entries.push(old);
        cached++;
        continue;
      }
      entries.push(await readCaseEntry(file));
      read++;
    } catch (e) {
      failures.push({ file, error: e instanceof Error ? e.message : String(e) });
    }
  }
  if (options.cachePath) {
    const body: CacheFile = { version: CACHE_VERSION, entries };
    await mkdir(path.dirname(path.resolve(options.cachePath)), { recursive: true });
    const tmp = `${options.cachePath}.${process.pid}.${Date.now()}.tmp`;
    await writeFile(tmp, JSON.stringify(body));
    await rename(tmp, options.cachePath);
  }
  return { dir: root, entries, failures, stats: { read, cached } };
}

/** Slices of a case that contain at least one foreground label. */
export function foregroundSlices(entry: CaseEntry): number[] {
  const out: number[] = [];
  entry.labelsPerSlice.forEach((l, i) => {
    if (l.length > 0) out.push(i);
  });
  return out;
}
