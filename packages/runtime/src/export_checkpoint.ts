/**
 * Checkpoint → ONNX export directory. Traced on the best tfjs backend available (wasm here): the
 * cpu backend gives the same graph but takes minutes for the full preset.
 */
import { initBackend, type BackendName } from '@mcp-medsam/core';
import { exportOnnx, type ExportOnnxResult } from '@mcp-medsam/exporter';
import { TfjsEngine } from './tfjs_engine.js';

export async function exportCheckpoint(
  checkpoint: string,
  outDir: string,
  options: { preset?: string; quantize?: 'int8'; backend?: BackendName } = {},
): Promise<ExportOnnxResult> {
  await initBackend({ log: null, ...(options.backend ? { backend: options.backend } : {}) });
  const engine = await TfjsEngine.fromCheckpoint(checkpoint, options);
  try {
    return exportOnnx(engine.model, { outDir, ...(options.quantize ? { quantize: options.quantize } : {}) });
  } finally {
    await engine.close();
  }
}
