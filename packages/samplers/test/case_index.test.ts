import { copyFile, mkdtemp, rm, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { labelIds, readNpzFile } from '@mcp-medsam/io';
import { buildCaseIndex, foregroundSlices, type CaseIndex } from '@mcp-medsam/samplers';
import { sharedPath } from '../../../test-utils/shared.js';

const NPZ = sharedPath('data/npz');
let tmp: string;
let full: CaseIndex;

beforeAll(async () => {
  tmp = await mkdtemp(path.join(tmpdir(), 'samplers-index-'));
  full = await buildCaseIndex(NPZ);
});
afterAll(async () => {
  await rm(tmp, { recursive: true, force: true });
});

describe('buildCaseIndex', () => {
  it('indexes every challenge file with modality, dims and labels per slice', async () => {
    expect(full.failures).toEqual([]);
    expect(full.entries.length).toBe(128);
    const names = full.entries.map((e) => e.name);
    expect([...names].sort()).toEqual(names);
    const e2 = full.entries.find((e) => e.name === '2D_CT_sam-med2d_data-demo_amos_0004_75')!;
    expect(e2).toMatchObject({ modality: 'CT', dims: 2, slices: 1, labelsPerSlice: [[1, 2, 3]] });
    const threeD = full.entries.filter((e) => e.dims === 3);
    expect(threeD.length).toBe(5);
    for (const e of full.entries) expect(e.labelsPerSlice.length).toBe(e.slices);
  });

  it('matches the labels of each slice of a 3D volume', async () => {
    const e = full.entries.find((x) => x.dims === 3 && !x.transpose)!;
    const { gts } = await readNpzFile(e.file);
    const [d, h, w] = gts.shape;
    expect(e.slices).toBe(d);
    for (let s = 0; s < d; s++) {
      const plane = { dtype: gts.dtype, shape: [h, w], data: gts.data.subarray(s * h * w, (s + 1) * h * w) };
      expect(e.labelsPerSlice[s]).toEqual(labelIds(plane as typeof gts));
    }
    expect(foregroundSlices(e).length).toBeGreaterThan(0);
  });

  it('slices MR_totalseg volumes along the smallest axis, as training transposes them', () => {
    const e = full.entries.find((x) => x.name.includes('MR_totalseg'))!;
    expect(e.transpose).toBeDefined();
    expect(e.transpose!.length).toBe(3);
  });

  it('caches on disk and refreshes only changed, added and removed files; lists failures', async () => {
    const dir = path.join(tmp, 'data');
    await import('node:fs/promises').then((fs) => fs.mkdir(dir));
    const pick = full.entries.slice(0, 3).concat(full.entries.filter((e) => e.dims === 3).slice(0, 1));
    for (const e of pick) await copyFile(e.file, path.join(dir, path.basename(e.file)));
    const cachePath = path.join(tmp, 'cache', 'index.json');
    const a = await buildCaseIndex(dir, { cachePath });
    expect(a.stats).toEqual({ read: 4, cached: 0 });
    const b = await buildCaseIndex(dir, { cachePath });
    expect(b.stats).toEqual({ read: 0, cached: 4 });
    expect(b.entries).toEqual(a.entries);

    // touch one, remove one, add one, add a broken file
    const touched = path.join(dir, path.basename(pick[0].file));
    await utimes(touched, new Date(), new Date(Date.now() + 5000));
    await rm(path.join(dir, path.basename(pick[1].file)));
    const added = full.entries[10];
    await copyFile(added.file, path.join(dir, path.basename(added.file)));
    await writeFile(path.join(dir, '2D_CT_broken.npz'), 'not a zip');
    await writeFile(path.join(dir, 'Unknownmodality_x.npz'), 'x');
    const c = await buildCaseIndex(dir, { cachePath });
    expect(c.entries.map((e) => e.name).sort()).toEqual(
      [pick[0], pick[2], pick[3], added].map((e) => e.name).sort(),
    );
    expect(c.stats).toEqual({ read: 2, cached: 2 });
    expect(c.failures.map((f) => path.basename(f.file)).sort()).toEqual([
      '2D_CT_broken.npz',
      'Unknownmodality_x.npz',
    ]);
    for (const f of c.failures) expect(f.error.length).toBeGreaterThan(0);
  });
});
