import type { Command } from 'commander';
import { InputError } from '@mcp-medsam/core';
import { exportCheckpoint } from '@mcp-medsam/runtime';

interface ExportCliOptions {
  weights: string;
  out: string;
  quantize?: string;
  preset?: string;
}

/** `mcp-medsam export`: a checkpoint to image_encoder.onnx, prompt_decoder.onnx and manifest.json. */
export function registerExport(program: Command): void {
  program
    .command('export')
    .description('export a checkpoint to ONNX (image encoder + prompt decoder, dynamic batch, opset 17)')
    .requiredOption('--weights <file>', 'MCP-MedSAM checkpoint (.pth or .safetensors)')
    .requiredOption('--out <dir>', 'output directory')
    .option('--quantize <kind>', "weight quantization: 'int8' (dynamic int8 matmuls)")
    .option('--preset <name>', 'model preset (default: detected from the checkpoint)')
    .action(async (opts: ExportCliOptions) => {
      if (opts.quantize !== undefined && opts.quantize !== 'int8')
        throw new InputError(`--quantize must be 'int8', got '${opts.quantize}'`);
      const t0 = performance.now();
      const files = await exportCheckpoint(opts.weights, opts.out, {
        preset: opts.preset,
        quantize: opts.quantize as 'int8' | undefined,
      });
      process.stderr.write(
        `[export] ${files.encoder}, ${files.decoder}, ${files.manifest} (${((performance.now() - t0) / 1000).toFixed(1)} s)\n`,
      );
    });
}
