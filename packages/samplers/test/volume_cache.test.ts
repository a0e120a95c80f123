import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readNpzFile } from '@mcp-medsam/io';
import { buildCaseIndex, VolumeCache, type CaseEntry } from '@mcp-medsam/samplers';
import { sharedPath } from '../../../test-utils/shared.js';

let tmp: string;
let vol: CaseEntry;
let flat: CaseEntry;
beforeAll(async () => {
  tmp = await mkdtemp(path.join(tmpdir(), 'samplers-vc-'));
  const idx = await buildCaseIndex(sharedPath('data/npz'));
  vol = idx.entries.find((e) => e.dims === 3 && !e.transpose && e.slices > 4)!;
  flat = idx.entries.find((e) => e.dims === 2)!;
});
afterAll(async () => {
  await rm(tmp, { recursive: true, force: true });
});

describe('VolumeCache', () => {
  it('inflates once, then reads O(slice) bytes per slice, with the npz data', async () => {
    const npz = await readNpzFile(vol.file);
    const [, h, w] = npz.gts.shape;
    const plane = h * w;
    const c = new VolumeCache(tmp);
    const s1 = await c.slice(vol.file, 2);
    expect(c.stats.inflations).toBe(1);
    const after1 = { ...c.stats };
    const s2 = await c.slice(vol.file, 3);
    expect(c.stats.inflations).toBe(1);
    expect(c.stats.reads - after1.reads).toBe(2);
    const bytes = plane * (npz.imgs.data.BYTES_PER_ELEMENT + npz.gts.data.BYTES_PER_ELEMENT);
    expect(c.stats.bytesRead - after1.bytesRead).toBe(bytes);
    for (const [s, sl] of [
      [s1, 2],
      [s2, 3],
    ] as const) {
      expect(s.imgs.shape).toEqual([h, w]);
      expect(s.imgs.dtype).toBe(npz.imgs.dtype);
      expect(s.gts.dtype).toBe(npz.gts.dtype);
      expect(Array.from(s.imgs.data as Uint8Array)).toEqual(
        Array.from(npz.imgs.data.subarray(sl * plane, (sl + 1) * plane) as Uint8Array),
      );
      expect(Array.from(s.gts.data as ArrayLike<number>)).toEqual(
        Array.from(npz.gts.data.subarray(sl * plane, (sl + 1) * plane) as ArrayLike<number>),
      );
    }
    // another process (a fresh cache object) finds the files on disk: no inflation at all
    const c2 = new VolumeCache(tmp);
    await c2.slice(vol.file, vol.slices - 1);
    expect(c2.stats.inflations).toBe(0);
    await expect(c2.slice(vol.file, vol.slices)).rejects.toThrow(/outside/);
  });

  it('2D cases: inflated once, then read whole with the npz data; slices of them are refused', async () => {
    const npz = await readNpzFile(flat.file);
    const c = new VolumeCache(tmp);
    const a = await c.arrays(flat.file);
    const b = await c.arrays(flat.file);
    expect(c.stats.inflations).toBe(1);
    for (const x of [a, b]) {
      expect(x.imgs.shape).toEqual(npz.imgs.shape);
      expect(x.gts.shape).toEqual(npz.gts.shape);
      expect(x.gts.dtype).toBe(npz.gts.dtype);
      expect(Buffer.from(x.imgs.data.buffer)).toEqual(Buffer.from(npz.imgs.data.slice().buffer));
      expect(Buffer.from(x.gts.data.buffer)).toEqual(Buffer.from(npz.gts.data.slice().buffer));
    }
    expect(a.imgs.data).not.toBe(b.imgs.data); // callers own their arrays
    await expect(c.slice(flat.file, 0)).rejects.toThrow(/expected a \(D,H,W\) volume/);
  });
});
