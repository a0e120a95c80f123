import { writeFile } from 'node:fs/promises';
import type { Command } from 'commander';
import { InputError } from '@mcp-medsam/core';
import { casesToCsv, evaluateDirs, formatModalityTable, toJson } from '@mcp-medsam/metrics';

interface EvaluateCliOptions {
  pred: string;
  gt: string;
  out?: string;
  json?: boolean;
  tolerance: string;
  gate: string;
  spacingOrder: 'challenge' | 'xyz';
  surface2d: 'slab' | 'contour';
  hd95: boolean;
}

/** `mcp-medsam evaluate`: the challenge's DSC / NSD (plus IoU, HD95) of a prediction folder. */
export function registerEvaluate(program: Command): void {
  program
    .command('evaluate')
    .description(
      'score predictions (npz with segs) against ground truths (npz with gts, spacing) as the CVPR 2024 MedSAM-on-Laptop challenge does',
    )
    .requiredOption('--pred <dir>', 'folder of prediction npz files (segs)')
    .requiredOption(
      '--gt <dir>',
      'folder of ground-truth npz files (gts, and spacing for 3D), same file names',
    )
    .option('--out <file>', 'write the per-case CSV (full precision) here')
    .option('--json', 'print the whole result as JSON instead of the table')
    .option('--tolerance <mm>', 'NSD tolerance (mm in 3D, pixels in 2D)', '2')
    .option('--gate <dsc>', "case NSD is 0 unless case DSC > this ('none' disables)", '0.2')
    .option(
      '--spacing-order <order>',
      "'challenge' (npz spacing applied to (D,H,W) as stored) or 'xyz' (reversed)",
      'challenge',
    )
    .option('--surface2d <kind>', "'slab' (challenge: 2D mask as an (H,W,1) slab) or 'contour'", 'slab')
    .option('--no-hd95', 'skip the 95th percentile Hausdorff distance (faster NSD)')
    .action(async (opts: EvaluateCliOptions) => {
      const tolerance = Number(opts.tolerance);
      const gate = opts.gate === 'none' ? null : Number(opts.gate);
      if (!(tolerance >= 0)) throw new InputError(`--tolerance must be a number >= 0, got ${opts.tolerance}`);
      if (gate !== null && Number.isNaN(gate))
        throw new InputError(`--gate must be a number or 'none', got ${opts.gate}`);
      if (opts.spacingOrder !== 'challenge' && opts.spacingOrder !== 'xyz') {
        throw new InputError(`--spacing-order must be 'challenge' or 'xyz', got ${opts.spacingOrder}`);
      }
      if (opts.surface2d !== 'slab' && opts.surface2d !== 'contour') {
        throw new InputError(`--surface2d must be 'slab' or 'contour', got ${opts.surface2d}`);
      }
      const result = await evaluateDirs({
        predDir: opts.pred,
        gtDir: opts.gt,
        tolerance,
        nsdDscGate: gate,
        spacingOrder: opts.spacingOrder,
        surface2d: opts.surface2d,
        hausdorffPercent: opts.hd95 ? 95 : false,
      });
      if (opts.out) await writeFile(opts.out, casesToCsv(result.cases));
      if (opts.json) {
        process.stdout.write(toJson(result) + '\n');
      } else {
        process.stdout.write(formatModalityTable(result.byModality, result.overall));
        process.stdout.write(`${result.cases.length} cases scored, ${result.failures.length} failed\n`);
      }
      for (const f of result.failures) process.stderr.write(`FAILED ${f.case}: ${f.code}: ${f.message}\n`);
      if (result.failures.length > 0) process.exitCode = 1;
    });
}
