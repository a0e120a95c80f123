import { InputError } from '@mcp-medsam/core';
import type { NdArray } from '@mcp-medsam/io';

/** Fetches a required array from an npz, naming the file and the missing key in the error. */
export function requireArray(arrays: Record<string, NdArray>, name: string, file: string): NdArray {
  const a = arrays[name];
  if (!a) {
    throw new InputError(`missing array '${name}' (has: ${Object.keys(arrays).join(', ') || 'none'})`, {
      file,
    });
  }
  return a;
}
