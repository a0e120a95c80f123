// Training-sample throughput of the loader over /work/shared/data/npz (or MCP_MEDSAM_SHARED).
// Needs the built packages: pnpm --filter @mcp-medsam/core --filter @mcp-medsam/io --filter @mcp-medsam/samplers build
// Prints one JSON line per configuration:
//   {"name":"io.sample","workers":1|2,"samplesPerSecond":...,"kind":"2d"|"3d"}
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
try {
  for (const kind of ['2d', '3d']) {
    const dims = kind === '2d' ? 2 : 3;
    // MR_totalseg volumes are always resampled by the original rule; leave them out of the 3D bench.
    const sub = { ...index, entries: index.entries.filter((e) => e.dims === dims && !e.transpose) };
    if (sub.entries.length === 0) continue;
    for (const workers of [1, 2]) {
      const loader = createLoader({
        index: sub,
        sampler: modalityBalanced(sub, { seed: 1 }),
        batchSize,
        workers,
        prefetch: 4,
        seed: 1,
        volumeCacheDir: path.join(cacheDir, 'vc'),
      });
      await loader.next(); // warm-up: worker start, module load, first inflations
      let n = 0;
      const t0 = performance.now();
      while (n < samples) {
        const r = await loader.next();
        if (r.done) break;
        n += r.value.samples.length;
      }
      const s = (performance.now() - t0) / 1000;
      await loader.close();
      console.log(
        JSON.stringify({ name: 'io.sample', workers, samplesPerSecond: Number((n / s).toFixed(2)), kind }),
      );
    }
  }
} finally {
  await rm(cacheDir, { recursive: true, force: true });
}
