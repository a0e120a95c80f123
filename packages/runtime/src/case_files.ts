/**
 * Challenge test cases on disk: the sorted `*.npz` names of a folder and one case read as the
 * predictor's input. Shared by directory inference and int8 calibration, so both read folders
 * and cases the same way.
 */
import { readdir } from 'node:fs/promises';
import { InputError } from '@mcp-medsam/core/common';
import { readChallengeCase } from '@mcp-medsam/io';
import { modalityToken, type CaseInput } from './predictor.js';

/** The `*.npz` names of `dir`, sorted as the original sorts them; `what` names the folder in errors. */
export async function listNpzCases(dir: string, what: string): Promise<string[]> {
  let names: string[];
  try {
    names = (await readdir(dir)).filter((f) => f.toLowerCase().endsWith('.npz')).sort();
  } catch (e) {
    throw new InputError(`cannot list the ${what}`, { file: dir, cause: e });
  }
  if (!names.length) throw new InputError(`no .npz cases in the ${what}`, { file: dir });
  return names;
}

/** A challenge test case (with `boxes`) as the predictor's input; the modality from its file name. */
export async function readCaseInput(file: string, name: string): Promise<CaseInput> {
  const c = await readChallengeCase(file);
  if (!c.boxes) throw new InputError("the case has no 'boxes' array", { file });
  return { imgs: c.imgs, boxes: c.boxes, modality: modalityToken(name), dims: c.dims, file };
}
