// `mcp-medsam convert --box`: an image with box prompts and no masks becomes a case `infer` takes.
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { InputError } from '@mcp-medsam/core';
import {
  ndarray,
  readChallengeCase,
  readNpzFile,
  windowToUint8,
  writeNiftiFile,
  writePngFile,
} from '@mcp-medsam/io';
import { buildProgram } from '../src/main.js';

const dir = mkdtempSync(path.join(tmpdir(), 'mcp-medsam-cli-convert-box-'));
const volume = path.join(dir, 'vol.nii.gz');
const image = path.join(dir, 'img.png');
const [D, H, W] = [6, 20, 24];
const hu = ndarray('int16', [D, H, W]);

async function cli(...args: string[]): Promise<void> {
  await buildProgram()
    .exitOverride()
    .configureOutput({ writeErr: () => undefined, writeOut: () => undefined })
    .parseAsync(['node', 'mcp-medsam', ...args]);
}

function convert(out: string, ...args: string[]): Promise<void> {
  return cli('convert', '--modality', 'CT', '--name', 'box case', '--out-dir', out, ...args);
}

afterAll(() => rmSync(dir, { recursive: true, force: true }));

beforeAll(async () => {
  for (let i = 0; i < hu.data.length; i++) hu.data[i] = ((i * 37) % 600) - 300;
  await writeNiftiFile(volume, hu, { spacing: [0.8, 0.8, 2.5] });
  const rgb = ndarray('uint8', [H, W, 3]);
  for (let i = 0; i < rgb.data.length; i++) rgb.data[i] = (i * 11) % 256;
  await writePngFile(image, rgb);
});

describe('convert --box', () => {
  test('a volume keeps every slice; the npz holds imgs, boxes and spacing, no gts', async () => {
    const out = path.join(dir, 'out3d');
    await convert(out, '--image', volume, '--box', '3,4,1,15,12,4', '--box', '0,0,0,24,20,5');
    const file = path.join(out, '3D_CT_box-case.npz');
    const arrays = await readNpzFile(file);
    expect(Object.keys(arrays).sort()).toEqual(['boxes', 'imgs', 'spacing']);
    expect(arrays.imgs.shape).toEqual([D, H, W]);
    expect(Array.from(arrays.imgs.data as Uint8Array)).toEqual(
      Array.from(windowToUint8(hu, 'ct-abdomen').data),
    );
    expect(arrays.boxes.dtype).toBe('int64');
    expect(arrays.boxes.shape).toEqual([2, 6]);
    expect(Array.from(arrays.boxes.data, Number)).toEqual([3, 4, 1, 15, 12, 4, 0, 0, 0, 24, 20, 5]);
    expect(Array.from(arrays.spacing.data as Float64Array)).toEqual([
      Math.fround(0.8),
      Math.fround(0.8),
      2.5,
    ]);
    const c = await readChallengeCase(file);
    expect(c.dims).toBe(3);
    expect(c.gts).toBeUndefined();
  });

  test('a 2D image takes x0,y0,x1,y1 (one --box with several values works too)', async () => {
    const out = path.join(dir, 'out2d');
    await convert(out, '--image', image, '--box', '1,2,10,12', '5,5,20,18');
    const arrays = await readNpzFile(path.join(out, '2D_CT_box-case.npz'));
    expect(Object.keys(arrays).sort()).toEqual(['boxes', 'imgs']);
    expect(arrays.imgs.shape).toEqual([H, W, 3]);
    expect(Array.from(arrays.boxes.data, Number)).toEqual([1, 2, 10, 12, 5, 5, 20, 18]);
  });

  test('bad boxes are InputErrors naming the problem, and leave no npz behind', async () => {
    const out = path.join(dir, 'bad');
    const file = path.join(out, '3D_CT_box-case.npz');
    const cases: [string[], RegExp][] = [
      [['--box', '3,4,15,12'], /a 3D case takes 6 values \(x0,y0,z0,x1,y1,z1\), got 4/],
      [['--box', '15,4,1,3,12,4'], /box 0 \[15, 4, 1, 3, 12, 4\] is inverted \(x_max < x_min\)/],
      [['--box', '3,4,1,15,21,4'], /out of bounds \(y must lie in \[0, 20\]\)/],
      [['--box', '3,4,1,15,12,6'], /z must lie in \[0, 5\]: the volume has 6 slices/],
      [['--box', '3,4,1.5,15,12,4'], /--box '3,4,1.5,15,12,4' must be 4 integers/],
      [['--box', '3,4,1,15,12,4', '3,4,15,12'], /same number of values/],
    ];
    for (const [args, message] of cases) {
      const err = await convert(out, '--image', volume, ...args).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(InputError);
      expect((err as Error).message).toMatch(message);
      expect(existsSync(file)).toBe(false);
    }
  });

  test('--box replaces masks: giving both, or a size cap, is an error', async () => {
    const out = path.join(dir, 'both');
    await expect(convert(out, '--image', image, '--box', '1,2,10,12', '--mask', image)).rejects.toThrow(
      /either --box or --mask \/ --label-map/,
    );
    await expect(
      convert(out, '--image', image, '--box', '1,2,10,12', '--max-file-bytes', '1000'),
    ).rejects.toThrow(/--box cannot be combined with --max-file-bytes/);
    await expect(convert(out, '--image', image)).rejects.toThrow(/give --mask .*--label-map, or --box/);
  });
});
