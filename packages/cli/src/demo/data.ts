/**
 * The demo's data: the synthetic multi-modality set `@mcp-medsam/io` generates, or a user's
 * folder of challenge npz files (`--data`). Either way the result is a training folder and a test
 * folder whose cases carry `boxes` (derived from `gts` when a user's file has none), so the rest
 * of the demo runs the same.
 */
import { mkdir, readdir, stat, symlink, copyFile } from 'node:fs/promises';
import path from 'node:path';
import { InputError } from '@mcp-medsam/core';
import {
  SYNTHETIC_KINDS,
  boxesFromLabels,
  ndarray,
  readChallengeCase,
  type NdArray,
  writeNpzFile,
  writeSyntheticDataset,
} from '@mcp-medsam/io';

export interface DemoData {
  source: 'synthetic' | 'user';
  trainDir: string;
  testDir: string;
  trainCases: number;
  testCases: number;
}

export interface DemoDataOptions {
  /** Where the demo writes (data goes to `<out>/data`). */
  out: string;
  /** A user's folder of npz cases; omitted: the synthetic set. */
  data?: string;
  seed: number;
  /** Synthetic cases per modality kind. */
  trainPerKind: number;
  testPerKind: number;
}

const isNpz = (f: string) => f.toLowerCase().endsWith('.npz');

async function npzFiles(dir: string): Promise<string[]> {
  let names: string[];
  try {
    names = await readdir(dir);
  } catch (e) {
    throw new InputError('cannot list the data directory', { file: dir, cause: e });
  }
  return names.filter(isNpz).sort();
}

async function isDir(p: string): Promise<boolean> {
  return (await stat(p).catch(() => null))?.isDirectory() ?? false;
}

/** Links (or, where links are not allowed, copies) a file into a folder of the demo. */
async function place(src: string, dir: string): Promise<void> {
  const dst = path.join(dir, path.basename(src));
  await symlink(path.resolve(src), dst).catch(async (e: NodeJS.ErrnoException) => {
    if (e.code === 'EEXIST') return;
    await copyFile(src, dst);
  });
}

/**
 * A user's test case as inference needs it: with `boxes`. Cases that have them are linked as
 * they are; the others get one tight box per label (the challenge's own rule) and, in 3D, a unit
 * `spacing` when none is stored, so that the metrics can score them.
 */
async function placeTestCase(src: string, dir: string): Promise<void> {
  const c = await readChallengeCase(src);
  if (!c.gts) throw new InputError("a test case needs 'gts' to be scored", { file: src });
  if (c.boxes && (c.dims === 2 || c.spacing)) return place(src, dir);
  const out: Record<string, NdArray> = {
    imgs: c.imgs,
    gts: c.gts,
    boxes: c.boxes ?? boxesFromLabels(c.gts).boxes,
  };
  if (c.dims === 3) out.spacing = ndarray('float64', [3], c.spacing ?? [1, 1, 1]);
  await writeNpzFile(path.join(dir, path.basename(src)), out);
}

export async function prepareDemoData(opts: DemoDataOptions): Promise<DemoData> {
  const root = path.join(opts.out, 'data');
  if (!opts.data) {
    const r = await writeSyntheticDataset(root, {
      seed: opts.seed,
      trainPerKind: opts.trainPerKind,
      testPerKind: opts.testPerKind,
      kinds: SYNTHETIC_KINDS,
    });
    return {
      source: 'synthetic',
      trainDir: r.trainDir,
      testDir: r.testDir,
      trainCases: r.train.length,
      testCases: r.test.length,
    };
  }
  // A folder with train/ and test/ is used as split; a flat folder is split here: every fifth
  // file (by name) is held out for testing, so the split does not depend on the seed.
  let train: string[];
  let test: string[];
  if ((await isDir(path.join(opts.data, 'train'))) && (await isDir(path.join(opts.data, 'test')))) {
    train = (await npzFiles(path.join(opts.data, 'train'))).map((f) => path.join(opts.data!, 'train', f));
    test = (await npzFiles(path.join(opts.data, 'test'))).map((f) => path.join(opts.data!, 'test', f));
  } else {
    const all = (await npzFiles(opts.data)).map((f) => path.join(opts.data!, f));
    if (all.length < 2)
      throw new InputError(
        `the demo needs at least 2 npz cases (one to train on, one to test), found ${all.length}`,
        {
          file: opts.data,
        },
      );
    test = all.filter((_, i) => i % 5 === 4 || (all.length < 5 && i === all.length - 1));
    train = all.filter((f) => !test.includes(f));
  }
  if (!train.length) throw new InputError('no training cases (npz)', { file: opts.data });
  if (!test.length) throw new InputError('no test cases (npz)', { file: opts.data });
  const trainDir = path.join(root, 'train');
  const testDir = path.join(root, 'test');
  await mkdir(trainDir, { recursive: true });
  await mkdir(testDir, { recursive: true });
  for (const f of train) await place(f, trainDir);
  for (const f of test) await placeTestCase(f, testDir);
  return { source: 'user', trainDir, testDir, trainCases: train.length, testCases: test.length };
}
