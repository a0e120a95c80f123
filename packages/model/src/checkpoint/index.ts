/**
 * Checkpoint import and export: PyTorch `.pth` (zip format, weights only) and safetensors.
 */
import { readFile } from 'node:fs/promises';
import type { NdArray } from '@mcp-medsam/io';
import { readPth, looksLikePth } from './pth.js';
import { readSafetensors } from './safetensors.js';

export {
  readPth,
  readPthFile,
  writePth,
  writePthFile,
  looksLikePth,
  STATE_DICT_KEYS,
  type PthContents,
  type ReadPthOptions,
  type WritePthOptions,
} from './pth.js';
export {
  readSafetensors,
  readSafetensorsFile,
  writeSafetensors,
  writeSafetensorsFile,
  safetensorsDTypeSize,
  SAFETENSORS_MAX_HEADER_BYTES,
  type SafetensorsContents,
  type ReadSafetensorsOptions,
} from './safetensors.js';
export {
  unpickle,
  PickleWriter,
  PyDict,
  PyTuple,
  PyFloat,
  ALLOWED_GLOBALS,
  STORAGE_TYPES,
  isTensorRef,
  isStorageType,
  type UnpickleOptions,
  type TensorRef,
  type StorageType,
  type StorageDType,
  type DeviceRef,
  type TorchDTypeRef,
} from './pickle.js';

export type CheckpointFormat = 'pth' | 'safetensors';

export interface CheckpointContents {
  stateDict: Map<string, NdArray>;
  /** pth: the checkpoint's other plain entries (epoch, loss...); safetensors: `__metadata__`. */
  meta: Record<string, unknown>;
  format: CheckpointFormat;
}

/**
 * Read a checkpoint in either format, chosen from the content: a zip (or a legacy pickle, which
 * gives a FormatError explaining how to convert it) is a `.pth`, anything else is parsed as
 * safetensors.
 */
export function readCheckpoint(bytes: Uint8Array, options: { file?: string } = {}): CheckpointContents {
  if (looksLikePth(bytes)) {
    const { stateDict, meta } = readPth(bytes, options);
    return { stateDict, meta, format: 'pth' };
  }
  const { tensors, metadata } = readSafetensors(bytes, options);
  return { stateDict: tensors, meta: { ...metadata }, format: 'safetensors' };
}

/** `readCheckpoint` on a file. */
export async function readCheckpointFile(path: string): Promise<CheckpointContents> {
  const b = await readFile(path);
  return readCheckpoint(new Uint8Array(b.buffer, b.byteOffset, b.byteLength), { file: path });
}
