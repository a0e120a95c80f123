/**
 * Checkpoint → ONNX export directory. Traced on the best tfjs backend available (wasm here): the
 * cpu backend gives the same graph but takes minutes for the full preset.
 */
import { initBackend, type BackendName } from '@mcp-medsam/core';
import { exportOnnx, type ExportOnnxResult } from '@mcp-medsam/exporter';
import type { PromptExtensionSpec } from '@mcp-medsam/model';
import { TfjsEngine } from './tfjs_engine.js';

/** A checkpoint trained with prompt extensions needs them in `promptExtensions` (see TfjsEngine). */
export async function exportCheckpoint(
  checkpoint: string,
  outDir: string,
  options: {
    preset?: string;
    quantize?: 'int8';
    backend?: BackendName;
    promptExtensions?: readonly PromptExtensionSpec[];
  } = {},
): Promise<ExportOnnxResult> {
  await initBackend({ log: null, ...(options.backend ? { backend: options.backend } : {}) });
  const engine = await TfjsEngine.fromCheckpoint(checkpoint, options);
  try {
    return exportOnnx(engine.model, { outDir, ...(options.quantize ? { quantize: options.quantize } : {}) });
  } finally {
    await engine.close();
  }
}
