/**
 * Checkpoint → ONNX export directory. Traced on the best tfjs backend available (wasm here): the
 * cpu backend gives the same graph but takes minutes for the full preset.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { initBackend, type BackendName } from '@mcp-medsam/core';
import { exportOnnx, type ExportOnnxResult } from '@mcp-medsam/exporter';
import type { McpMedsam, PromptExtensionSpec } from '@mcp-medsam/model';
import { calibrateDecoderConvs, type CalibrationOptions } from './calibrate.js';
import { TfjsEngine } from './tfjs_engine.js';

export interface ExportCheckpointOptions {
  preset?: string;
  /**
   * int8 weights: dynamic int8 MatMuls in both graphs and, unless `calibration` is false, the
   * decoder's convolutions as static int8 QLinearConv with ranges measured on calibration cases.
   */
  quantize?: 'int8';
  /** Where int8 calibration prompts come from (default: synthetic cases, CLIP stand-in); false: none. */
  calibration?: CalibrationOptions | false;
  backend?: BackendName;
  /** A checkpoint trained with prompt extensions needs them here (see TfjsEngine). */
  promptExtensions?: readonly PromptExtensionSpec[];
}

/** Export a checkpoint file (see {@link exportModel}). */
export async function exportCheckpoint(
  checkpoint: string,
  outDir: string,
  options: ExportCheckpointOptions = {},
): Promise<ExportOnnxResult> {
  await initBackend({ log: null, ...(options.backend ? { backend: options.backend } : {}) });
  const engine = await TfjsEngine.fromCheckpoint(checkpoint, options);
  try {
    return await exportModel(engine.model, outDir, options);
  } finally {
    await engine.close();
  }
}

/**
 * Export a model to `outDir`; with int8 and calibration, the decoder's convolutions are first
 * calibrated on a float export with probes (in a temporary directory), so nothing is written to
 * `outDir` when calibration fails.
 */
export async function exportModel(
  model: McpMedsam,
  outDir: string,
  options: Pick<ExportCheckpointOptions, 'quantize' | 'calibration'> = {},
): Promise<ExportOnnxResult> {
  if (options.quantize !== 'int8' || options.calibration === false)
    return exportOnnx(model, { outDir, ...(options.quantize ? { quantize: options.quantize } : {}) });
  const probeDir = await mkdtemp(path.join(tmpdir(), 'mcp-medsam-probe-'));
  try {
    exportOnnx(model, { outDir: probeDir, probeDecoderConvs: true });
    const { ranges, summary } = await calibrateDecoderConvs(probeDir, options.calibration ?? {});
    return exportOnnx(model, {
      outDir,
      quantize: 'int8',
      decoderConvRanges: ranges,
      calibration: { ...summary },
    });
  } finally {
    await rm(probeDir, { recursive: true, force: true });
  }
}
