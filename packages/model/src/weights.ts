import { FormatError, type LoadReport, type StateTensor } from '@mcp-medsam/core';
import { toFloat32, writeFileAtomic, type NdArray } from '@mcp-medsam/io';
import { readCheckpoint, readCheckpointFile, writePth, writeSafetensors } from './checkpoint/index.js';
import type { CheckpointFormat } from './checkpoint/index.js';
import type { McpMedsam } from './mcp_medsam.js';

/** What a checkpoint held: the whole network, or a bare TinyViT state dict for the encoder. */
export type WeightsKind = 'full' | 'image_encoder';

export interface LoadWeightsResult extends LoadReport {
  kind: WeightsKind;
  format: CheckpointFormat;
  meta: Record<string, unknown>;
}

/** NdArray entries as the Module loader takes them (half and double floats become float32). */
function toStateTensors(sd: Map<string, NdArray>): Map<string, StateTensor> {
  const out = new Map<string, StateTensor>();
  for (const [k, a] of sd) {
    const isFloat = a.dtype === 'float16' || a.dtype === 'float64' || a.dtype === 'float32';
    const data = isFloat && a.dtype !== 'float32' ? toFloat32(a) : a.data;
    out.set(k, { shape: a.shape, data: data as StateTensor['data'], dtype: isFloat ? 'float32' : a.dtype });
  }
  return out;
}

const TINYVIT_ROOTS = ['patch_embed.', 'layers.', 'neck.'];

/** Whether a state dict is a bare TinyViT one (the original's encoder initialisation). */
export function isBareTinyViT(keys: Iterable<string>): boolean {
  let any = false;
  for (const k of keys) {
    any = true;
    if (!TINYVIT_ROOTS.some((r) => k.startsWith(r))) return false;
  }
  return any;
}

/**
 * Loads a state dict into the model. Full MCP-MedSAM dicts are loaded strictly (missing,
 * unexpected and mismatched keys throw a StateDictError listing them); a bare TinyViT dict goes
 * into `image_encoder`, also strictly.
 */
export function loadStateDict(
  model: McpMedsam,
  stateDict: Map<string, NdArray>,
  options: { strict?: boolean; file?: string } = {},
): LoadReport & { kind: WeightsKind } {
  const entries = toStateTensors(stateDict);
  if (isBareTinyViT(entries.keys())) {
    return { ...model.image_encoder.loadStateDict(entries, options), kind: 'image_encoder' };
  }
  return { ...model.loadStateDict(entries, options), kind: 'full' };
}

/** Reads a `.pth` or `.safetensors` checkpoint and loads it (see `loadStateDict`). */
export async function loadWeights(
  model: McpMedsam,
  source: string | Uint8Array,
  options: { strict?: boolean } = {},
): Promise<LoadWeightsResult> {
  const file = typeof source === 'string' ? source : undefined;
  const ck = typeof source === 'string' ? await readCheckpointFile(source) : readCheckpoint(source);
  if (ck.stateDict.size === 0) throw new FormatError('checkpoint holds no tensors', file ? { file } : {});
  const r = loadStateDict(model, ck.stateDict, { ...options, file });
  return { ...r, format: ck.format, meta: ck.meta };
}

/** The model's state dict as NdArrays in the original's order (int32 counters as int64). */
export function stateDictArrays(model: McpMedsam): Map<string, NdArray> {
  const out = new Map<string, NdArray>();
  for (const [k, t] of model.stateDict()) {
    out.set(k, { dtype: t.dtype === 'int64' ? 'int64' : 'float32', shape: t.shape, data: t.data } as NdArray);
  }
  return out;
}

/**
 * Saves the weights: `.safetensors` by extension or `format`, else a `.pth` that
 * `torch.load(f)["model"]` reads back into the original. Written atomically.
 */
export async function saveWeights(
  model: McpMedsam,
  file: string,
  options: { format?: CheckpointFormat; meta?: Record<string, unknown> } = {},
): Promise<void> {
  const format = options.format ?? (file.endsWith('.safetensors') ? 'safetensors' : 'pth');
  const sd = stateDictArrays(model);
  const bytes =
    format === 'safetensors'
      ? writeSafetensors(sd, { format: 'pt', preset: model.config.name })
      : writePth(sd, { preset: model.config.name, ...(options.meta ?? {}) });
  await writeFileAtomic(file, bytes);
}
