// Training-sample throughput of the loader over /work/shared/data/npz (or MCP_MEDSAM_SHARED).
// Needs the built packages: pnpm --filter @mcp-medsam/core --filter @mcp-medsam/io --filter @mcp-medsam/samplers build
// Prints one JSON line per configuration:
//   {"name":"io.sample","kind":"2d"|"3d","phase":"cold"|"warm","workers":1|2,"samplesPerSecond":...}
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { buildCaseIndex, createLoader, modalityBalanced } from '../dist/index.js';

const shared =
  process.env.MCP_MEDSAM_SHARED ??
  path.resolve(fileURLToPath(new URL('../../../..', import.meta.url)), 'shared');
const dir = path.join(shared, 'data', 'npz');
if (!existsSync(dir)) {
  console.error(`sample.bench: ${dir} not found; skipping (set MCP_MEDSAM_SHARED)`);
  process.exit(0);
}
const samples = Number(process.env.BENCH_SAMPLES ?? 96);
const batchSize = 8;
const index = await buildCaseIndex(dir);
const cacheDir = await mkdtemp(path.join(tmpdir(), 'samplers-bench-'));

/** Samples per second over the next `n` samples of a loader. */
async function rate(loader, n) {
  let k = 0;
  const t0 = performance.now();
  while (k < n) {
    const r = await loader.next();
    if (r.done) break;
    k += r.value.samples.length;
  }
  return Number((k / ((performance.now() - t0) / 1000)).toFixed(2));
}

try {
  for (const kind of ['2d', '3d']) {
    const dims = kind === '2d' ? 2 : 3;
    // MR_totalseg volumes are always resampled by the original rule; leave them out of the 3D bench.
    const sub = { ...index, entries: index.entries.filter((e) => e.dims === dims && !e.transpose) };
    if (sub.entries.length === 0) continue;
    for (const workers of [1, 2]) {
      // A fresh on-disk cache per configuration: "cold" is the first draws of a run (cases read
      // and inflated for the first time); "warm" is after every case has been drawn a few times
      // (disk cache written, prepared slices in the workers' memory), i.e. a training run's
      // steady state.
      const loader = createLoader({
        index: sub,
        sampler: modalityBalanced(sub, { seed: 1 }),
        batchSize,
        workers,
        prefetch: 4,
        seed: 1,
        volumeCacheDir: path.join(cacheDir, `vc-${kind}-${workers}`),
      });
      await loader.next(); // worker start and module load
      const cold = await rate(loader, samples);
      await rate(loader, Number(process.env.BENCH_WARM_DRAWS ?? 4 * sub.entries.length));
      const warm = await rate(loader, Number(process.env.BENCH_WARM_SAMPLES ?? 4 * samples));
      await loader.close();
      for (const [phase, v] of [
        ['cold', cold],
        ['warm', warm],
      ])
        console.log(
          JSON.stringify({
            name: 'io.sample',
            kind,
            phase,
            workers,
            samplesPerSecond: v,
            cases: sub.entries.length,
          }),
        );
    }
  }
} finally {
  await rm(cacheDir, { recursive: true, force: true });
}
