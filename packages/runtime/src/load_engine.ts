/**
 * Opening an engine from what a user has: an export directory (manifest.json and two graphs) or
 * a checkpoint. A checkpoint run with the onnx engine is exported first, once: the export is kept
 * in a cache directory keyed by the checkpoint's bytes.
 */
import { createHash } from 'node:crypto';
import { createReadStream, existsSync } from 'node:fs';
import { mkdir, rename, rm, stat } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { InputError } from '@mcp-medsam/core/common';
import type { BackendName } from '@mcp-medsam/core';
import type { PromptExtensionSpec } from '@mcp-medsam/model';
import type { SegmentationEngine } from './engine.js';
import { exportCheckpoint } from './export_checkpoint.js';
import { MANIFEST_FILE } from './manifest.js';
import { OnnxEngine } from './onnx_engine.js';
import type { OnnxExecutionProvider } from '@mcp-medsam/prompts';
import { TfjsEngine } from './tfjs_engine.js';

export type EngineName = 'onnx' | 'tfjs';

/** Options of {@link loadEngine}. */
export interface LoadEngineOptions {
  /** Export directory or checkpoint file (.pth / .safetensors). */
  model: string;
  /** Default 'onnx'. */
  engine?: EngineName;
  /** onnxruntime intra-op threads (onnx engine). */
  threads?: number;
  executionProviders?: readonly OnnxExecutionProvider[];
  /** Checkpoint preset (default: detected from the weights). */
  preset?: string;
  /** tfjs backend of the tfjs engine and of the export step. */
  backend?: BackendName;
  /** Quantize the weights when exporting a checkpoint for the onnx engine. */
  quantize?: 'int8';
  /** Where exports of checkpoints are kept (default `$XDG_CACHE_HOME/mcp-medsam/exports`). */
  cacheDir?: string;
  /**
   * Prompt extensions of a checkpoint trained with them (tfjs engine, or the export of a
   * checkpoint); an export directory records its own in manifest.json.
   */
  promptExtensions?: readonly PromptExtensionSpec[];
  log?: (line: string) => void;
}

export function defaultExportCacheDir(): string {
  const base = process.env.XDG_CACHE_HOME || path.join(os.homedir(), '.cache');
  return path.join(base, 'mcp-medsam', 'exports');
}

async function sha256File(file: string): Promise<string> {
  const h = createHash('sha256');
  for await (const chunk of createReadStream(file)) h.update(chunk as Buffer);
  return h.digest('hex');
}

/**
 * Bumped when the exporter writes different graphs for the same checkpoint, so that older cached
 * exports are not reused (2: int8 exports calibrate the decoder's convolutions to static int8).
 */
export const EXPORT_CACHE_VERSION = 2;

/**
 * Export a checkpoint to ONNX in `cacheDir` unless an export of the same bytes (and options) is
 * there already; returns the export directory. Written to a temporary directory and renamed, so
 * an interrupted export is never mistaken for a finished one.
 */
export async function exportCheckpointCached(
  checkpoint: string,
  options: Pick<
    LoadEngineOptions,
    'preset' | 'quantize' | 'cacheDir' | 'log' | 'backend' | 'promptExtensions'
  > = {},
): Promise<string> {
  const key =
    (await sha256File(checkpoint)).slice(0, 32) +
    `-v${EXPORT_CACHE_VERSION}` +
    (options.quantize ? `-${options.quantize}` : '');
  const root = options.cacheDir ?? defaultExportCacheDir();
  const dir = path.join(root, key);
  if (existsSync(path.join(dir, MANIFEST_FILE))) return dir;
  options.log?.(`[mcp-medsam] exporting ${checkpoint} to ONNX (once; kept in ${dir})`);
  await mkdir(root, { recursive: true });
  const tmp = `${dir}.tmp-${process.pid}`;
  try {
    await exportCheckpoint(checkpoint, tmp, options);
    await rm(dir, { recursive: true, force: true });
    await rename(tmp, dir);
  } finally {
    await rm(tmp, { recursive: true, force: true });
  }
  return dir;
}

/** Open the engine `options.engine` on `options.model`. */
export async function loadEngine(options: LoadEngineOptions): Promise<SegmentationEngine> {
  const engine = options.engine ?? 'onnx';
  if (engine !== 'onnx' && engine !== 'tfjs')
    throw new InputError(`unknown engine '${engine as string}' (known: onnx, tfjs)`);
  let info;
  try {
    info = await stat(options.model);
  } catch (e) {
    throw new InputError('no such model (an export directory or a checkpoint file)', {
      file: options.model,
      cause: e,
    });
  }
  if (info.isDirectory()) {
    if (engine === 'tfjs')
      throw new InputError('an export directory has no tfjs weights: pass the checkpoint to --engine tfjs', {
        file: options.model,
      });
    return OnnxEngine.load(options.model, options);
  }
  if (engine === 'tfjs') return TfjsEngine.fromCheckpoint(options.model, options);
  return OnnxEngine.load(await exportCheckpointCached(options.model, options), options);
}
