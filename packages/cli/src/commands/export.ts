import type { Command } from 'commander';
import { InputError } from '@mcp-medsam/core';
import { exportCheckpoint, type CalibrationOptions } from '@mcp-medsam/runtime';

interface ExportCliOptions {
  weights: string;
  out: string;
  quantize?: string;
  preset?: string;
  calibrationData?: string;
  calibration: boolean;
  clipVision?: string;
  clipText?: string;
}

/** The int8 calibration the flags ask for (false: none, dynamic int8 MatMuls only). */
function calibrationOf(opts: ExportCliOptions): CalibrationOptions | false | undefined {
  const given = opts.calibrationData ?? opts.clipVision ?? opts.clipText;
  if (opts.quantize !== 'int8') {
    if (given !== undefined || !opts.calibration)
      throw new InputError(
        '--calibration-data, --clip-vision, --clip-text and --no-calibration need --quantize int8',
      );
    return undefined;
  }
  if (!opts.calibration) {
    if (given !== undefined)
      throw new InputError('--no-calibration cannot be combined with --calibration-data or the CLIP files');
    return false;
  }
  if ((opts.clipVision === undefined) !== (opts.clipText === undefined))
    throw new InputError('give both --clip-vision and --clip-text, or neither (the stand-in is used)');
  return {
    ...(opts.calibrationData ? { data: opts.calibrationData } : {}),
    ...(opts.clipVision ? { clipVision: opts.clipVision, clipText: opts.clipText } : {}),
    log: (line) => process.stderr.write(line + '\n'),
  };
}

/** `mcp-medsam export`: a checkpoint to image_encoder.onnx, prompt_decoder.onnx and manifest.json. */
export function registerExport(program: Command): void {
  program
    .command('export')
    .description('export a checkpoint to ONNX (image encoder + prompt decoder, dynamic batch, opset 17)')
    .requiredOption('--weights <file>', 'MCP-MedSAM checkpoint (.pth or .safetensors)')
    .requiredOption('--out <dir>', 'output directory')
    .option(
      '--quantize <kind>',
      "weight quantization: 'int8' (int8 matmuls; the decoder's convolutions static int8, calibrated)",
    )
    .option(
      '--calibration-data <dir>',
      'with int8: npz cases with boxes to calibrate the decoder convolutions on (default: synthetic cases)',
    )
    .option(
      '--clip-vision <onnx>',
      'with int8: the CLIP image tower to calibrate with (default: the stand-in)',
    )
    .option('--clip-text <json>', 'with int8: the CLIP text table to calibrate with (default: the stand-in)')
    .option('--no-calibration', 'with int8: keep the convolutions float (no calibration pass)')
    .option('--preset <name>', 'model preset (default: detected from the checkpoint)')
    .action(async (opts: ExportCliOptions) => {
      if (opts.quantize !== undefined && opts.quantize !== 'int8')
        throw new InputError(`--quantize must be 'int8', got '${opts.quantize}'`);
      const calibration = calibrationOf(opts);
      const t0 = performance.now();
      const files = await exportCheckpoint(opts.weights, opts.out, {
        preset: opts.preset,
        quantize: opts.quantize as 'int8' | undefined,
        ...(calibration !== undefined ? { calibration } : {}),
      });
      process.stderr.write(
        `[export] ${files.encoder}, ${files.decoder}, ${files.manifest} (${((performance.now() - t0) / 1000).toFixed(1)} s)\n`,
      );
    });
}
