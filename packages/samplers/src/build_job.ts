/**
 * Building one training sample from a sampler draw; shared by the worker threads and the
 * in-process (`workers: 0`) loader.
 */
import path from 'node:path';
import { parseModality, Rng } from '@mcp-medsam/core/common';
import {
  openNpzFile,
  modalityToken,
  prepareTrainingSlice,
  ResampleError,
  rngChoices,
  sampleFromPreparedSlice,
  type NdArray,
  type PreparedSlice,
  type TrainingSample,
  type TrainingSampleOptions,
} from '@mcp-medsam/io';
import { PreparedSliceCache } from './prepared_cache.js';
import { VolumeCache } from './volume_cache.js';

/** What a worker is asked to build. */
export interface BuildJob {
  /** Position of the draw in the run (0-based). */
  draw: number;
  caseIndex: number;
  slice: number;
  file: string;
  dims: 2 | 3;
  /** Set for MR_totalseg volumes: the whole volume is read (the transpose needs it). */
  transpose?: number[];
  /** Seed of this sample's generator (a decimal bigint). */
  seed: string;
  options: TrainingSampleOptions;
  volumeCacheDir?: string;
  /** Budget of this thread's in-memory cache of prepared slices, in bytes (0: none). */
  memoryCacheBytes?: number;
}

/** What comes back. */
export type BuildResult =
  | { ok: true; draw: number; sample: TrainingSample }
  | {
      ok: false;
      draw: number;
      resample: boolean;
      error: { name: string; message: string; code?: string; reason?: string };
    };

const MASK64 = (1n << 64n) - 1n;

/** splitmix64 finaliser. */
function mix64(x: bigint): bigint {
  x = (x + 0x9e3779b97f4a7c15n) & MASK64;
  x = ((x ^ (x >> 30n)) * 0xbf58476d1ce4e5b9n) & MASK64;
  x = ((x ^ (x >> 27n)) * 0x94d049bb133111ebn) & MASK64;
  return x ^ (x >> 31n);
}

/** The seed of draw `k` of a run: independent of worker count and timing. */
export function sampleSeed(runSeed: number | bigint, k: number): bigint {
  return mix64(mix64(BigInt.asUintN(64, BigInt(runSeed))) ^ BigInt(k));
}

const caches = new Map<string, VolumeCache>();
function volumeCache(dir: string): VolumeCache {
  let c = caches.get(dir);
  if (!c) caches.set(dir, (c = new VolumeCache(dir)));
  return c;
}

let prepared: PreparedSliceCache | undefined;
function preparedCache(bytes: number): PreparedSliceCache {
  if (!prepared || prepared.maxBytes !== bytes) prepared = new PreparedSliceCache(bytes);
  return prepared;
}

/** The case's arrays (or the job's one slice of them, as a one-slice volume) and the slice index in them. */
async function readArrays(
  job: BuildJob,
): Promise<{ arrays: { imgs: NdArray; gts: NdArray }; slice: number }> {
  if (job.volumeCacheDir && !job.transpose) {
    const cache = volumeCache(job.volumeCacheDir);
    if (job.dims === 2) return { arrays: await cache.arrays(job.file), slice: 0 };
    const s = await cache.slice(job.file, job.slice);
    // A one-slice volume keeps the 3D code path of the sample builder.
    const arrays = {
      imgs: { ...s.imgs, shape: [1, ...s.imgs.shape] } as NdArray,
      gts: { ...s.gts, shape: [1, ...s.gts.shape] } as NdArray,
    };
    return { arrays, slice: 0 };
  }
  const npz = await openNpzFile(job.file);
  return { arrays: { imgs: npz.get('imgs'), gts: npz.get('gts') }, slice: job.slice };
}

/** Build the sample of a job; errors become a `BuildResult` with `ok: false`. */
export async function runBuildJob(job: BuildJob): Promise<BuildResult> {
  try {
    const rng = new Rng(BigInt(job.seed));
    const name = path.basename(job.file);
    // An unknown modality fails before any file is read.
    parseModality(modalityToken(name), name);
    const cache = job.memoryCacheBytes ? preparedCache(job.memoryCacheBytes) : undefined;
    const key = PreparedSliceCache.key(job.file, job.slice);
    let slice: PreparedSlice | undefined = cache?.get(key);
    if (!slice) {
      const { arrays, slice: z } = await readArrays(job);
      slice = prepareTrainingSlice(arrays, name, z);
      cache?.set(key, slice);
    }
    const sample = sampleFromPreparedSlice(slice, rngChoices(rng), job.options);
    if (job.dims === 3) sample.meta.slice = job.slice;
    return { ok: true, draw: job.draw, sample };
  } catch (e) {
    const err = e as Error & { code?: string; reason?: string };
    return {
      ok: false,
      draw: job.draw,
      resample: e instanceof ResampleError || err?.code === 'E_RESAMPLE',
      error: {
        name: err?.name ?? 'Error',
        message: err?.message ?? String(e),
        code: err?.code,
        reason: err?.reason,
      },
    };
  }
}

/** The buffers of a sample, once each, for a transfer list. */
export function sampleTransferList(sample: TrainingSample): ArrayBuffer[] {
  const set = new Set<ArrayBuffer>();
  for (const a of [sample.image, sample.gt2D, sample.box, sample.crop64, sample.crop224]) {
    if (a && a.buffer instanceof ArrayBuffer) set.add(a.buffer);
  }
  return [...set];
}
