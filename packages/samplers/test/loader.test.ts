import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  buildCaseIndex,
  createLoader,
  modalityBalanced,
  type Batch,
  type CaseIndex,
  type Loader,
  type Sampler,
} from '@mcp-medsam/samplers';
import { sharedPath } from '../../../test-utils/shared.js';

let index: CaseIndex;
let tmp: string;
beforeAll(async () => {
  index = await buildCaseIndex(sharedPath('data/npz'));
  tmp = await mkdtemp(path.join(tmpdir(), 'samplers-loader-'));
});
afterAll(async () => {
  await rm(tmp, { recursive: true, force: true });
});

const sig = (b: Batch) =>
  b.samples.map((s) => ({
    draw: s.draw,
    caseIndex: s.caseIndex,
    slice: s.slice,
    label: s.sample.meta.label,
    box: Array.from(s.sample.box),
    sum: s.sample.image.reduce((a, x) => a + x, 0),
  }));

async function collect(l: Loader, n: number): Promise<Batch[]> {
  const out: Batch[] = [];
  for (let i = 0; i < n; i++) {
    const r = await l.next();
    if (r.done) break;
    out.push(r.value);
  }
  return out;
}

function counting(s: Sampler): Sampler & { count: number } {
  const w = {
    kind: s.kind,
    count: 0,
    next() {
      w.count++;
      return s.next();
    },
    state: () => s.state(),
    restore: (x: Parameters<Sampler['restore']>[0]) => s.restore(x),
  };
  return w;
}

describe('createLoader (in-process)', () => {
  it('gives full batches in draw order, deterministically, skipping resampled draws', async () => {
    const mk = () =>
      createLoader({
        index,
        sampler: modalityBalanced(index, { seed: 1 }),
        batchSize: 4,
        seed: 9,
        batches: 4,
      });
    const a: Batch[] = [];
    for await (const b of mk()) a.push(b);
    expect(a.length).toBe(4);
    const b = await collect(mk(), 4);
    expect(a.map(sig)).toEqual(b.map(sig));
    const draws = a.flatMap((x) => x.samples.map((s) => s.draw));
    expect([...draws].sort((x, y) => x - y)).toEqual(draws);
    expect(new Set(draws).size).toBe(draws.length);
    expect(draws[draws.length - 1] + 1 - draws.length).toBe(a.reduce((t, x) => t + x.resampled, 0));
    const s = a[0].samples[0].sample;
    expect(s.image).toBeInstanceOf(Float32Array);
    expect(s.image.length).toBe(3 * 256 * 256);
    expect(s.gt2D.length).toBe(256 * 256);
  });

  it('bounds the work ahead of the consumer (backpressure)', async () => {
    const sampler = counting(modalityBalanced(index, { seed: 2 }));
    const l = createLoader({ index, sampler, batchSize: 3, prefetch: 2, seed: 1 });
    await collect(l, 2);
    // never more than prefetch*batchSize draws beyond what was handed out
    const handedOut = l.state().nextDraw;
    expect(sampler.count - handedOut).toBeLessThanOrEqual(6);
    await l.close();
    expect((await l.next()).done).toBe(true);
  });

  it('resumes from state(): the next batches are the same', async () => {
    const l1 = createLoader({ index, sampler: modalityBalanced(index, { seed: 3 }), batchSize: 2, seed: 5 });
    await collect(l1, 2);
    const st = JSON.parse(JSON.stringify(l1.state()));
    const rest = await collect(l1, 2);
    await l1.close();
    const l2 = createLoader({
      index,
      sampler: modalityBalanced(index, { seed: 0 }),
      batchSize: 2,
      seed: 5,
      resume: st,
    });
    const again = await collect(l2, 2);
    await l2.close();
    expect(again.map(sig)).toEqual(rest.map(sig));
    expect(again[0].index).toBe(2);
  });

  it('draws again on ResampleError and gives up after too many in a row', async () => {
    // The MR_totalseg test volume is always thrown away (middle dimension <= 100).
    const only = { ...index, entries: index.entries.filter((e) => e.name.includes('MR_totalseg')) };
    expect(only.entries.length).toBe(1);
    const l = createLoader({
      index: only,
      sampler: modalityBalanced(only),
      batchSize: 1,
      maxConsecutiveResamples: 5,
    });
    await expect(l.next()).rejects.toThrow(/resamples in a row/);
  });

  it('3D slices through the volume cache equal slices from the npz', async () => {
    const vols = { ...index, entries: index.entries.filter((e) => e.dims === 3 && !e.transpose) };
    const mk = (volumeCacheDir?: string) =>
      createLoader({
        index: vols,
        sampler: modalityBalanced(vols, { seed: 4 }),
        batchSize: 3,
        seed: 2,
        batches: 2,
        volumeCacheDir,
      });
    const a = await collect(mk(), 2);
    const b = await collect(mk(path.join(tmp, 'vc')), 2);
    expect(b.map(sig)).toEqual(a.map(sig));
    for (const x of b.flatMap((y) => y.samples)) expect(x.sample.meta.slice).toBe(x.slice);
  });

  it('2D cases through the disk and memory caches give the same samples, bit for bit', async () => {
    const flat = { ...index, entries: index.entries.filter((e) => e.dims === 2).slice(0, 6) };
    const mk = (volumeCacheDir?: string, memoryCacheMB?: number) =>
      createLoader({
        index: flat,
        sampler: modalityBalanced(flat, { seed: 3 }),
        batchSize: 4,
        seed: 5,
        batches: 6,
        volumeCacheDir,
        memoryCacheMB,
      });
    const full = (b: Batch) =>
      b.samples.map((s) =>
        [s.sample.image, s.sample.gt2D, s.sample.box, s.sample.crop64, s.sample.crop224!]
          .map((a) => Buffer.from(a.buffer, a.byteOffset, a.byteLength).toString('base64'))
          .join('|'),
      );
    const plain = await collect(mk(undefined, 0), 6);
    const cached = await collect(mk(path.join(tmp, 'vc2d'), 64), 6);
    // 24 draws of 6 cases: the memory cache is hit, and the samples do not change
    expect(cached.map(full)).toEqual(plain.map(full));
    expect(cached.map(sig)).toEqual(plain.map(sig));
  });

  it('refuses a negative memory cache size', () => {
    expect(() =>
      createLoader({ index, sampler: modalityBalanced(index, { seed: 1 }), batchSize: 1, memoryCacheMB: -1 }),
    ).toThrow(/memoryCacheMB must be >= 0/);
  });
});

const workerJs = fileURLToPath(new URL('../dist/worker.js', import.meta.url));
const haveDist = existsSync(workerJs);
if (!haveDist)
  console.warn(
    `skipping the worker-thread loader test: ${workerJs} is missing (run \`pnpm --filter @mcp-medsam/core --filter @mcp-medsam/io --filter @mcp-medsam/samplers build\`)`,
  );

describe.skipIf(!haveDist)('createLoader (worker threads, built dist/)', () => {
  it('gives the same batches as in-process, with transferred typed arrays', async () => {
    const mk = (workers: number) =>
      createLoader({
        index,
        sampler: modalityBalanced(index, { seed: 8 }),
        batchSize: 4,
        seed: 3,
        batches: 3,
        workers,
        volumeCacheDir: path.join(tmp, 'vc-w'),
      });
    const inProc = await collect(mk(0), 3);
    const l = mk(2);
    const threaded: Batch[] = [];
    for await (const b of l) threaded.push(b);
    expect(threaded.map(sig)).toEqual(inProc.map(sig));
    const s = threaded[0].samples[0].sample;
    expect(s.image).toBeInstanceOf(Float32Array);
    expect(s.gt2D).toBeInstanceOf(Uint8Array);
    await l.close();
  });
});
