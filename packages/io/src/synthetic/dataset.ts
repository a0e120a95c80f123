/**
 * A synthetic dataset on disk in the layout the trainer and the runtime read: `train/` holds
 * `imgs` and `gts` (as the challenge's training files), `test/` holds `imgs`, `gts` and `boxes`
 * (as its test cases, with the labels kept so `mcp-medsam evaluate` can score predictions).
 * Volumes also carry `spacing`, which the challenge metrics need.
 */
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { InputError } from '@mcp-medsam/core/common';
import type { NdArray } from '../dtype.js';
import { writeNpzFile } from '../npz.js';
import { checkSyntheticKind, checkSyntheticSeed, syntheticCase, type SyntheticCase } from './case.js';
import { SYNTHETIC_KINDS, type SyntheticKind } from './types.js';

export interface SyntheticDatasetOptions {
  /** First case seed (default 0). Case i of each kind uses seed + i; test cases follow the training ones. */
  seed?: number;
  /** Training cases per kind (default 10). */
  trainPerKind?: number;
  /** Test cases per kind (default 2). */
  testPerKind?: number;
  /** Kinds to make (default all of `SYNTHETIC_KINDS`). */
  kinds?: readonly SyntheticKind[];
  /** Deflate the npz members like `np.savez_compressed` (default true). */
  compress?: boolean;
}

export interface SyntheticDataset {
  trainDir: string;
  testDir: string;
  /** Paths of the files written, in kind then seed order. */
  train: string[];
  test: string[];
}

function count(value: number | undefined, name: string, dflt: number): number {
  if (value === undefined) return dflt;
  if (!Number.isSafeInteger(value) || value < 0)
    throw new InputError(`${name} must be a non-negative integer, got ${String(value)}`);
  return value;
}

function arraysOf(c: SyntheticCase, withBoxes: boolean): Record<string, NdArray> {
  const out: Record<string, NdArray> = { imgs: c.imgs, gts: c.gts };
  if (withBoxes) out.boxes = c.boxes;
  if (c.spacing) out.spacing = c.spacing;
  return out;
}

/**
 * Write a synthetic dataset under `outDir` (`train/` and `test/`, created when missing; files of
 * the same names are replaced atomically, other files are left alone). Options are checked before
 * anything is written; bad ones throw an InputError.
 */
export async function writeSyntheticDataset(
  outDir: string,
  options: SyntheticDatasetOptions = {},
): Promise<SyntheticDataset> {
  if (typeof outDir !== 'string' || outDir === '')
    throw new InputError('writeSyntheticDataset: outDir must be a path');
  const seed = options.seed ?? 0;
  checkSyntheticSeed(seed);
  const nTrain = count(options.trainPerKind, 'trainPerKind', 10);
  const nTest = count(options.testPerKind, 'testPerKind', 2);
  const kinds = options.kinds ?? SYNTHETIC_KINDS;
  if (!Array.isArray(kinds)) throw new InputError('kinds must be an array of synthetic kinds');
  kinds.forEach((k) => checkSyntheticKind(k));
  if (new Set(kinds).size !== kinds.length) throw new InputError(`kinds has duplicates: ${kinds.join(', ')}`);
  checkSyntheticSeed(seed + nTrain + nTest, 'seed + trainPerKind + testPerKind');

  const trainDir = path.join(outDir, 'train');
  const testDir = path.join(outDir, 'test');
  await mkdir(trainDir, { recursive: true });
  await mkdir(testDir, { recursive: true });
  const compress = options.compress ?? true;
  const train: string[] = [];
  const test: string[] = [];
  for (const kind of kinds) {
    for (let i = 0; i < nTrain + nTest; i++) {
      const c = syntheticCase(kind, seed + i);
      const isTest = i >= nTrain;
      const file = path.join(isTest ? testDir : trainDir, `${c.name}.npz`);
      await writeNpzFile(file, arraysOf(c, isTest), { compress });
      (isTest ? test : train).push(file);
    }
  }
  return { trainDir, testDir, train, test };
}
