#!/usr/bin/env node
// A CT or MR NIfTI volume and a 3D box in, a NIfTI mask out, through the `mcp-medsam` command:
//
//   node run.mjs --image ct.nii.gz --box x0,y0,z0,x1,y1,z1 [--out ct-mask.nii.gz] [--modality CT|MR]
//                [--model demo-output/onnx] [--clip demo-output/clip] [--engine onnx|tfjs]
//                [--threads n] [--inclusive-z] [--work mcp-medsam-work]
//
// Steps 1 and 2 are the commands of the README, run in this process; step 3 has no command yet.
import { existsSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { buildProgram } from '@mcp-medsam/cli';
import { InputError } from '@mcp-medsam/core';
import { challengeFileName, readNiftiFile, readNpzFile, writeNiftiFile } from '@mcp-medsam/io';

/** `mcp-medsam <command> --flag value...` in this process: `true` is a bare flag, `undefined` none. */
async function mcpMedsam(command, flags) {
  const args = [command];
  for (const [flag, value] of Object.entries(flags)) {
    if (value === true) args.push(`--${flag}`);
    else if (value !== undefined && value !== false) args.push(`--${flag}`, String(value));
  }
  console.log(`$ mcp-medsam ${args.join(' ')}`);
  await buildProgram().exitOverride().parseAsync(args, { from: 'user' });
}

/**
 * Segment the volume `image` inside `box` (`x0,y0,z0,x1,y1,z1`, 0-based voxel indices of the file)
 * and write the label mask to `out` with the image's geometry. Returns the paths written.
 */
export async function segmentNifti({
  image,
  box,
  out,
  modality = 'CT',
  model = existsSync('demo-output/onnx') ? 'demo-output/onnx' : 'demo-output/model.safetensors',
  clip = 'demo-output/clip',
  engine = 'onnx',
  threads,
  inclusiveZ = false,
  work = 'mcp-medsam-work',
}) {
  const name = path.basename(image).replace(/\.nii(\.gz)?$/i, '');
  out ??= `${name}-mask.nii.gz`;
  const cases = path.join(work, name, 'cases');
  const segsDir = path.join(work, name, 'segs');
  const segsFile = path.join(segsDir, challengeFileName(3, modality, name));
  await rm(segsFile, { force: true });

  // 1. The volume as a challenge case: imgs (D,H,W) uint8 (CT window or MR percentiles), the box.
  await mcpMedsam('convert', { image, box, modality, name, dims: 3, 'out-dir': cases });

  // 2. Segment it: the box's middle slice first, then slice by slice up and down.
  await mcpMedsam('infer', {
    model,
    engine,
    'clip-vision': path.join(clip, 'vision.onnx'),
    'clip-text': path.join(clip, 'text-features.json'),
    threads,
    'inclusive-z': inclusiveZ,
    input: cases,
    output: segsDir,
  });
  if (!existsSync(segsFile)) throw new InputError(`infer wrote no ${segsFile}: see its FAILED line above`);

  // 3. The segs back as NIfTI, on the input's voxel grid and affine (no CLI command does this yet).
  const { segs } = await readNpzFile(segsFile);
  const { affine } = await readNiftiFile(image);
  await writeNiftiFile(out, segs, { affine, description: 'mcp-medsam labels' });
  console.log(`wrote ${out}: labels [${segs.shape.join(', ')}] ${segs.dtype}`);
  return { out, case: path.join(cases, path.basename(segsFile)), segs: segsFile };
}

/** The command line: `--image`, `--box` and the options of {@link segmentNifti}. */
export async function main(argv = process.argv.slice(2)) {
  const names = ['image', 'box', 'out', 'modality', 'model', 'clip', 'engine', 'threads', 'work'];
  const options = Object.fromEntries(names.map((n) => [n, { type: 'string' }]));
  const { values } = parseArgs({ args: argv, options: { ...options, 'inclusive-z': { type: 'boolean' } } });
  if (!values.image || !values.box)
    throw new InputError(
      'usage: node run.mjs --image <volume.nii.gz> --box x0,y0,z0,x1,y1,z1 [--out mask.nii.gz]',
    );
  const { 'inclusive-z': inclusiveZ, ...rest } = values;
  return segmentNifti({ ...rest, inclusiveZ });
}

if (process.argv[1] && import.meta.url === pathToFileURL(path.resolve(process.argv[1])).href) {
  main().catch((e) => {
    console.error(`error: ${e.message}`);
    process.exitCode = 1;
  });
}
