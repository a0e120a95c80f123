import type { Command } from 'commander';
import { InputError } from '@mcp-medsam/core';
import {
  CT_WINDOW_PRESETS,
  type ConvertOptions,
  type ConvertResult,
  type MaskInput,
  convertCase,
} from '@mcp-medsam/io';

export interface ConvertCliOptions {
  image: string;
  mask?: string[];
  labelMap?: string;
  labelValues?: string;
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
  if (!o.mask?.length && !o.labelMap) throw new InputError('give --mask (one per object) or --label-map');
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

export async function runConvert(o: ConvertCliOptions): Promise<ConvertResult> {
  return convertCase(convertOptionsFromCli(o));
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
    .option('--threshold <t>', 'binary masks: foreground above this value (default 0; 127 for JPEG masks)')
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
        process.stdout.write(
          `wrote ${r.path}: ${r.dims}D ${r.modality}, imgs [${summary.shape.join(', ')}], ${r.labels.length} labels\n`,
        );
        if (r.removed.length) process.stdout.write(`removed: ${r.removed.join('; ')}\n`);
        if (r.scaled) process.stdout.write(`${r.scaled}\n`);
      }
    });
}
