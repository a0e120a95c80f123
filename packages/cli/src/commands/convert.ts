import { rm } from 'node:fs/promises';
import type { Command } from 'commander';
import { InputError } from '@mcp-medsam/core';
import {
  CT_WINDOW_PRESETS,
  type ConvertOptions,
  type ConvertResult,
  type MaskInput,
  type NdArray,
  convertCase,
  ndarray,
  validateChallengeCase,
  writeNpzFile,
} from '@mcp-medsam/io';

export interface ConvertCliOptions {
  image: string;
  mask?: string[];
  labelMap?: string;
  labelValues?: string;
  box?: string[];
  modality: string;
  name: string;
  outDir: string;
  dims?: string;
  window?: string;
  percentiles?: string;
  foreground?: string;
  threshold?: string;
  fillHoles?: boolean;
  minSize2d?: string;
  minSize3d?: string;
  cropZ?: boolean;
  zMargin?: string;
  maxFileBytes?: string;
  json?: boolean;
}

function num(v: string | undefined, what: string): number | undefined {
  if (v === undefined) return undefined;
  const x = Number(v);
  if (v.trim() === '' || !Number.isFinite(x)) throw new InputError(`${what} must be a number, got '${v}'`);
  return x;
}

function list(v: string | undefined, what: string): number[] | undefined {
  return v === undefined ? undefined : v.split(',').map((s) => num(s, what)!);
}

/** `--mask file` or `--mask file@top,left` (a mask cropped to its box, pasted at that position). */
export function parseMaskArg(arg: string): MaskInput {
  const m = /^(.*)@(\d+),(\d+)$/.exec(arg);
  return m ? { path: m[1], offset: [Number(m[2]), Number(m[3])] } : { path: arg };
}

/** The convertCase options of the command line. */
export function convertOptionsFromCli(o: ConvertCliOptions): ConvertOptions {
  const dims = num(o.dims, '--dims');
  if (dims !== undefined && dims !== 2 && dims !== 3)
    throw new InputError(`--dims must be 2 or 3, got ${dims}`);
  const pct = list(o.percentiles, '--percentiles');
  if (pct && pct.length !== 2) throw new InputError('--percentiles takes two numbers, e.g. 0.5,99.5');
  if (o.foreground && o.foreground !== 'nonzero' && o.foreground !== 'positive')
    throw new InputError(`--foreground must be nonzero or positive, got '${o.foreground}'`);
  if (!o.mask?.length && !o.labelMap && !o.box?.length)
    throw new InputError('give --mask (one per object), --label-map, or --box (prompts without masks)');
  if (o.box?.length && (o.mask?.length || o.labelMap))
    throw new InputError('--box takes the place of masks: give either --box or --mask / --label-map');
  return {
    image: o.image,
    masks: o.mask?.map(parseMaskArg),
    labelMap: o.labelMap,
    labelValues: list(o.labelValues, '--label-values'),
    modality: o.modality,
    name: o.name,
    outDir: o.outDir,
    dims: dims as 2 | 3 | undefined,
    window: o.window,
    percentiles: pct as [number, number] | undefined,
    foreground: o.foreground as 'nonzero' | 'positive' | undefined,
    threshold: num(o.threshold, '--threshold'),
    fillHoles: o.fillHoles,
    minSize2d: num(o.minSize2d, '--min-size-2d'),
    minSize3d: num(o.minSize3d, '--min-size-3d'),
    cropZ: o.cropZ,
    zMargin: num(o.zMargin, '--z-margin'),
    maxFileBytes: num(o.maxFileBytes, '--max-file-bytes'),
  };
}

/** The integers of each `--box` value (4 for 2D, 6 for 3D, all boxes alike). */
export function parseBoxArgs(boxes: string[]): number[][] {
  const rows = boxes.map((b) => {
    const v = b.split(',').map((s) => (s.trim() === '' ? NaN : Number(s)));
    if ((v.length !== 4 && v.length !== 6) || !v.every(Number.isSafeInteger))
      throw new InputError(`--box '${b}' must be 4 integers x0,y0,x1,y1 (2D) or 6 x0,y0,z0,x1,y1,z1 (3D)`);
    return v;
  });
  if (rows.some((r) => r.length !== rows[0].length))
    throw new InputError('--box: give every box with the same number of values');
  return rows;
}

/**
 * Box rows as the (N,4|6) int64 `boxes` of a case, checked against its image as inference checks
 * them: x and y half-open pixel ranges within the image, z slice indices within the volume.
 */
export function boxesForCase(rows: number[][], imgs: NdArray, dims: 2 | 3): NdArray<'int64'> {
  const k = dims === 2 ? 4 : 6;
  if (rows[0].length !== k)
    throw new InputError(
      `--box: a ${dims}D case takes ${k} values (${dims === 2 ? 'x0,y0,x1,y1' : 'x0,y0,z0,x1,y1,z1'}), got ${rows[0].length}`,
    );
  const out = ndarray('int64', [rows.length, k]);
  rows.forEach((r, i) => {
    const depth = imgs.shape[0];
    if (dims === 3 && (r[2] >= depth || r[5] >= depth))
      throw new InputError(
        `--box [${r.join(', ')}] is out of bounds (z must lie in [0, ${depth - 1}]: the volume has ${depth} slices)`,
      );
    r.forEach((x, j) => (out.data[i * k + j] = BigInt(x)));
  });
  validateChallengeCase({ imgs, boxes: out }, dims, '--box');
  return out;
}

/**
 * Convert a case. With `--box` the image is converted without labels (so a volume keeps every
 * slice) and the npz holds `imgs`, the given `boxes` and, in 3D, `spacing`: ready for `infer`.
 */
export async function runConvert(o: ConvertCliOptions): Promise<ConvertResult> {
  const opts = convertOptionsFromCli(o);
  if (!o.box?.length) return convertCase(opts);
  if (opts.maxFileBytes !== undefined)
    throw new InputError(
      '--box cannot be combined with --max-file-bytes (the boxes would not fit a downscaled image)',
    );
  const rows = parseBoxArgs(o.box);
  const r = await convertCase(opts);
  let boxes: NdArray<'int64'>;
  try {
    boxes = boxesForCase(rows, r.arrays.imgs, r.dims);
  } catch (e) {
    await rm(r.path, { force: true });
    throw e;
  }
  const arrays: Record<string, NdArray> = { ...r.arrays, boxes };
  delete arrays.gts;
  await writeNpzFile(r.path, arrays, { compress: true });
  return { ...r, labels: [], boxes, arrays };
}

export function registerConvert(program: Command): void {
  program
    .command('convert')
    .description(
      'convert an image and its masks into a challenge npz (2D_<Modality>_<name>.npz / 3D_<Modality>_<name>.npz)',
    )
    .requiredOption(
      '--image <file>',
      'image: NIfTI, DICOM file or series folder, PNG, JPEG, BMP, TIFF, GIF, or a challenge npz',
    )
    .option('--mask <files...>', 'one binary mask per object (file, or file@top,left for a box-cropped mask)')
    .option('--label-map <file>', 'one label map (0 = background)')
    .option('--label-values <list>', 'label-map values to keep, in label order (e.g. 128,192,255)')
    .option(
      '--box <boxes...>',
      'box prompts instead of masks, in pixels/voxels of the image: x0,y0,x1,y1 (2D) or x0,y0,z0,x1,y1,z1 (3D); the npz then has no gts',
    )
    .requiredOption(
      '--modality <name>',
      'CT, MR, Endoscopy, XRay, PET, Dermoscopy, Mammography, US, OCT, Fundus, Microscopy (or an alias)',
    )
    .requiredOption('--name <name>', 'case name (/ and spaces become -)')
    .requiredOption('--out-dir <dir>', 'output folder')
    .option('--dims <n>', '2 or 3 (default: 3 for multi-slice NIfTI/DICOM volumes)')
    .option(
      '--window <w>',
      `CT window: ${Object.keys(CT_WINDOW_PRESETS).join(', ')}, or W/L such as 400/40 (default for 3D CT: ct-abdomen)`,
    )
    .option('--percentiles <lo,hi>', 'percentiles for MR and other volumes (default 0.5,99.5)')
    .option('--foreground <kind>', 'voxels for the percentiles: nonzero (default) or positive')
    .option(
      '--threshold <t>',
      'binary masks: foreground above this value (default 0; use 127 for JPEG masks, whose edges are not 0 or 255)',
    )
    .option('--fill-holes', 'fill the holes of binary masks (outline annotations)')
    .option('--min-size-2d <n>', 'smallest 2D component kept, pixels (default 10)')
    .option('--min-size-3d <n>', 'smallest 3D component kept, voxels (default 100)')
    .option('--no-crop-z', 'keep every slice of a volume (default: only the slices with labels)')
    .option('--z-margin <n>', 'extra slices kept on each side of the crop (default 0)')
    .option('--max-file-bytes <n>', '2D: downscale by 0.75 until the npz fits (e.g. 4000000)')
    .option('--json', 'print the result as JSON')
    .action(async (o: ConvertCliOptions) => {
      const r = await runConvert(o);
      const summary = {
        path: r.path,
        dims: r.dims,
        modality: r.modality,
        shape: r.arrays.imgs.shape,
        labels: r.labels,
        boxes: Array.from({ length: r.boxes.shape[0] }, (_, i) =>
          Array.from(r.boxes.data.subarray(i * r.boxes.shape[1], (i + 1) * r.boxes.shape[1]), Number),
        ),
        removed: r.removed,
        zRange: r.zRange,
        scaled: r.scaled,
      };
      if (o.json) process.stdout.write(`${JSON.stringify(summary, null, 2)}\n`);
      else {
        const n = r.boxes.shape[0];
        const what = o.box?.length ? `${n} box${n === 1 ? '' : 'es'}` : `${r.labels.length} labels`;
        process.stdout.write(
          `wrote ${r.path}: ${r.dims}D ${r.modality}, imgs [${summary.shape.join(', ')}], ${what}\n`,
        );
        if (r.removed.length) process.stdout.write(`removed: ${r.removed.join('; ')}\n`);
        if (r.scaled) process.stdout.write(`${r.scaled}\n`);
      }
    });
}
