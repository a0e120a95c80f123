/**
 * A batch loader: sampler draws are turned into training samples in `node:worker_threads`
 * workers (or in-process with `workers: 0`), with a bounded prefetch window and output in draw
 * order. Draw k is built with its own generator seeded from (run seed, k), so the output does
 * not depend on the worker count or on timing. A draw whose build throws a `ResampleError` is
 * skipped and later draws fill the batch, as the original resamples.
 */
import { existsSync } from 'node:fs';
import { Worker } from 'node:worker_threads';
import { fileURLToPath } from 'node:url';
import { InputError, MedsamError } from '@mcp-medsam/core/common';
import type { TrainingSample, TrainingSampleOptions } from '@mcp-medsam/io';
import type { CaseIndex } from './case_index.js';
import type { Sampler, SamplerState } from './samplers.js';
import { runBuildJob, sampleSeed, type BuildJob, type BuildResult } from './build_job.js';

export interface LoaderOptions {
  index: CaseIndex;
  sampler: Sampler;
  batchSize: number;
  /** Worker threads (default 0: build in this thread). */
  workers?: number;
  /** Batches built ahead of the consumer (default 2); bounds memory and the work in flight. */
  prefetch?: number;
  /** Options of `buildTrainingSample`. */
  build?: TrainingSampleOptions;
  /** Run seed for the per-sample generators (default 0). */
  seed?: number | bigint;
  /**
   * Directory of the uncompressed case cache (default: none, every sample inflates its npz).
   * 3D slices are read from it with one positioned read; 2D cases are read whole.
   */
  volumeCacheDir?: string;
  /**
   * In-memory cache of prepared slices (resized image and label masks) per thread, in MB
   * (default 256; 0 turns it off). Repeated draws of a slice then skip the resize entirely.
   */
  memoryCacheMB?: number;
  /** Stop after this many batches (default: endless). */
  batches?: number;
  /** Give up after this many resamples in a row (default 1000). */
  maxConsecutiveResamples?: number;
  /** The worker script (default: `worker.js` beside this module, or the package's `dist/worker.js`). */
  workerUrl?: URL | string;
  /** Continue from `loader.state()` of an earlier run. */
  resume?: LoaderState;
}

/** One sample of a batch with where it came from. */
export interface LoadedSample {
  sample: TrainingSample;
  /** Position of the sampler draw in the run. */
  draw: number;
  caseIndex: number;
  slice: number;
}

export interface Batch {
  /** 0-based batch number. */
  index: number;
  samples: LoadedSample[];
  /** Draws skipped because the build asked for a resample. */
  resampled: number;
}

/** Where a run stands, for checkpoints: the next draw not yet handed to the consumer. */
export interface LoaderState {
  sampler: SamplerState;
  nextDraw: number;
  batches: number;
}

export interface Loader extends AsyncIterable<Batch> {
  next(): Promise<IteratorResult<Batch>>;
  state(): LoaderState;
  close(): Promise<void>;
}

/** The worker script: `worker.js` beside this module when built, else the package's `dist/`. */
export function defaultWorkerUrl(): URL {
  const here = new URL('./worker.js', import.meta.url);
  if (existsSync(fileURLToPath(here))) return here;
  const dist = new URL('../dist/worker.js', import.meta.url);
  if (existsSync(fileURLToPath(dist))) return dist;
  throw new InputError(
    'the loader workers need the built package: run `pnpm --filter @mcp-medsam/core --filter @mcp-medsam/io --filter @mcp-medsam/samplers build` (or use workers: 0)',
  );
}

interface Pending {
  job: BuildJob;
  samplerState: SamplerState;
  result: Promise<BuildResult>;
}

class WorkerPool {
  private readonly workers: Worker[] = [];
  private readonly load: number[] = [];
  private readonly waiting: Map<
    number,
    { resolve: (r: BuildResult) => void; reject: (e: unknown) => void; w: number }
  > = new Map();
  private failure: unknown = null;
  // Jobs posted and not answered yet, as promises that never reject.
  private readonly inflight = new Set<Promise<void>>();

  constructor(n: number, url: URL | string) {
    for (let i = 0; i < n; i++) {
      const w = new Worker(url);
      w.on('message', (res: BuildResult) => {
        const p = this.waiting.get(res.draw);
        if (!p) return;
        this.waiting.delete(res.draw);
        this.load[i]--;
        p.resolve(res);
      });
      const fail = (e: unknown) => {
        this.failure ??= e;
        for (const [k, p] of this.waiting) {
          if (p.w !== i) continue;
          this.waiting.delete(k);
          p.reject(e);
        }
      };
      w.on('error', fail);
      w.on('exit', (code) => {
        if (code !== 0) fail(new MedsamError('E_WORKER', `loader worker ${i} exited with code ${code}`));
      });
      this.workers.push(w);
      this.load.push(0);
    }
  }

  run(job: BuildJob): Promise<BuildResult> {
    if (this.failure) return Promise.reject(this.failure);
    let best = 0;
    for (let i = 1; i < this.load.length; i++) if (this.load[i] < this.load[best]) best = i;
    this.load[best]++;
    const result = new Promise<BuildResult>((resolve, reject) => {
      this.waiting.set(job.draw, { resolve, reject, w: best });
      this.workers[best].postMessage(job);
    });
    const settled = result.then(
      () => undefined,
      () => undefined,
    );
    this.inflight.add(settled);
    void settled.then(() => this.inflight.delete(settled));
    return result;
  }

  async close(): Promise<void> {
    const closed = new MedsamError('E_CLOSED', 'loader closed');
    this.failure ??= closed;
    // Let the jobs in flight finish before terminating: Node 20 aborts the whole process
    // (a native assertion in fs open) when a worker is terminated inside a pending file open.
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      Promise.all([...this.inflight]),
      new Promise<void>((r) => {
        timer = setTimeout(r, 30_000);
        timer.unref();
      }),
    ]);
    clearTimeout(timer);
    for (const [, p] of this.waiting) p.reject(closed);
    this.waiting.clear();
    await Promise.all(this.workers.map((w) => w.terminate()));
  }
}

/** Create a loader; iterate it with `for await` or call `next()`, and `close()` when done. */
export function createLoader(options: LoaderOptions): Loader {
  const { index, sampler } = options;
  const batchSize = options.batchSize;
  if (!Number.isInteger(batchSize) || batchSize < 1)
    throw new InputError(`batchSize must be >= 1, got ${batchSize}`);
  const nWorkers = options.workers ?? 0;
  if (!Number.isInteger(nWorkers) || nWorkers < 0)
    throw new InputError(`workers must be >= 0, got ${nWorkers}`);
  const prefetch = options.prefetch ?? 2;
  if (!Number.isInteger(prefetch) || prefetch < 1)
    throw new InputError(`prefetch must be >= 1, got ${prefetch}`);
  const maxResamples = options.maxConsecutiveResamples ?? 1000;
  const memoryCacheMB = options.memoryCacheMB ?? 256;
  if (!(memoryCacheMB >= 0)) throw new InputError(`memoryCacheMB must be >= 0, got ${memoryCacheMB}`);
  const memoryCacheBytes = Math.floor(memoryCacheMB * 2 ** 20);
  const runSeed = options.seed ?? 0;
  const buildOptions = options.build ?? {};
  const window = Math.max(prefetch * batchSize, nWorkers * 2);

  let nextDraw = 0;
  let batchNo = 0;
  if (options.resume) {
    sampler.restore(options.resume.sampler);
    nextDraw = options.resume.nextDraw;
    batchNo = options.resume.batches;
  }
  const pool = nWorkers > 0 ? new WorkerPool(nWorkers, options.workerUrl ?? defaultWorkerUrl()) : null;
  const pending: Pending[] = [];
  let closed = false;
  let consecutive = 0;

  const issue = () => {
    while (!closed && pending.length < window) {
      const samplerState = sampler.state();
      const d = sampler.next();
      const e = index.entries[d.caseIndex];
      const job: BuildJob = {
        draw: nextDraw++,
        caseIndex: d.caseIndex,
        slice: d.slice,
        file: e.file,
        dims: e.dims,
        seed: sampleSeed(runSeed, nextDraw - 1).toString(),
        options: buildOptions,
      };
      if (e.transpose) job.transpose = e.transpose;
      if (options.volumeCacheDir) job.volumeCacheDir = options.volumeCacheDir;
      if (memoryCacheBytes > 0) job.memoryCacheBytes = memoryCacheBytes;
      // In-process jobs run one after another in draw order, when awaited.
      const result = pool ? pool.run(job) : null;
      result?.catch(() => undefined); // handled when consumed
      pending.push({ job, samplerState, result: result ?? (undefined as unknown as Promise<BuildResult>) });
    }
  };

  const take = async (): Promise<LoadedSample | null> => {
    for (;;) {
      issue();
      const p = pending.shift();
      if (!p) return null;
      const res = pool ? await p.result : await runBuildJob(p.job);
      if (closed) return null;
      issue();
      if (res.ok) {
        consecutive = 0;
        return { sample: res.sample, draw: p.job.draw, caseIndex: p.job.caseIndex, slice: p.job.slice };
      }
      if (!res.resample) {
        throw new MedsamError(res.error.code ?? 'E_BUILD', `${p.job.file}: ${res.error.message}`, {
          file: p.job.file,
        });
      }
      lastResampled++;
      if (++consecutive > maxResamples)
        throw new MedsamError('E_RESAMPLE', `${consecutive} resamples in a row; last: ${res.error.message}`);
    }
  };

  let lastResampled = 0;
  const close = async () => {
    if (closed) return;
    closed = true;
    pending.length = 0;
    await pool?.close();
  };

  const next = async (): Promise<IteratorResult<Batch>> => {
    if (closed || (options.batches !== undefined && batchNo >= options.batches)) {
      await close();
      return { done: true, value: undefined };
    }
    lastResampled = 0;
    const samples: LoadedSample[] = [];
    try {
      while (samples.length < batchSize) {
        const s = await take();
        if (!s) return { done: true, value: undefined };
        samples.push(s);
      }
    } catch (e) {
      await close();
      throw e;
    }
    return { done: false, value: { index: batchNo++, samples, resampled: lastResampled } };
  };

  const loader: Loader = {
    next,
    state(): LoaderState {
      const head = pending[0];
      return head
        ? { sampler: head.samplerState, nextDraw: head.job.draw, batches: batchNo }
        : { sampler: sampler.state(), nextDraw, batches: batchNo };
    },
    close,
    [Symbol.asyncIterator]() {
      return {
        next,
        return: async () => {
          await close();
          return { done: true, value: undefined };
        },
      };
    },
  };
  return loader;
}
