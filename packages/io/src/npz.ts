/**
 * NumPy `.npz` archives: a zip of `.npy` members, one per array (`np.savez`, stored, or
 * `np.savez_compressed`, deflate). Array names are the member names without `.npy`.
 */
import { FormatError, InputError } from '@mcp-medsam/core/common';
import type { NdArray } from './dtype.js';
import { readNpy, writeNpy } from './npy.js';
import { readZip, writeZip, type ZipEntry, type ZipLimits } from './zip.js';
import { readFileBytes, writeFileAtomic } from './fs.js';

export interface ReadNpzOptions {
  /** Name used in error messages. */
  file?: string;
  /** Size limits on the zip members (defaults: 4 GiB per member, 16 GiB in all). */
  limits?: ZipLimits;
}

export interface WriteNpzOptions {
  /** Deflate the members like `np.savez_compressed` (default: stored like `np.savez`, 64-byte aligned). */
  compress?: boolean;
}

/** An npz archive opened lazily: members are inflated and parsed only when asked for. */
export interface NpzFile {
  /** Array names in archive order. */
  readonly names: string[];
  has(name: string): boolean;
  /** Read one array (parsed anew on each call). Unknown names give an InputError. */
  get(name: string): NdArray;
}

/** Index an npz archive without decompressing anything yet. */
export function openNpz(bytes: Uint8Array, options: ReadNpzOptions = {}): NpzFile {
  const file = options.file;
  const zip = readZip(bytes, { ...options.limits, file });
  const members = new Map<string, ZipEntry>();
  for (const [entryName, entry] of zip) {
    if (!entryName.endsWith('.npy')) continue; // np.load would hand these out as raw bytes; we skip them
    members.set(entryName.slice(0, -4), entry);
  }
  const names = [...members.keys()];
  return {
    names,
    has: (name) => members.has(name),
    get(name: string): NdArray {
      const entry = members.get(name);
      if (!entry) {
        throw new InputError(`no array ${JSON.stringify(name)} in npz (has ${names.join(', ') || 'none'})`, {
          file,
        });
      }
      const data = entry.read();
      try {
        // Always a copy, even of freshly inflated bytes: every array then owns exactly its
        // buffer (`arr.data.buffer` holds nothing else), at the cost of a transient second copy.
        return readNpy(data);
      } catch (e) {
        const msg = e instanceof Error ? e.message : String(e);
        throw new FormatError(`member ${JSON.stringify(entry.name)}: ${msg}`, { file, cause: e });
      }
    },
  };
}

/** Read every array of an npz archive. */
export function readNpz(bytes: Uint8Array, options: ReadNpzOptions = {}): Record<string, NdArray> {
  const npz = openNpz(bytes, options);
  const out: Record<string, NdArray> = {};
  // defineProperty so that a member called "__proto__" is an ordinary key.
  for (const name of npz.names) {
    Object.defineProperty(out, name, {
      value: npz.get(name),
      enumerable: true,
      writable: true,
      configurable: true,
    });
  }
  return out;
}

/** Build an npz archive from named arrays (in the object's key order). */
export function writeNpz(arrays: Record<string, NdArray>, options: WriteNpzOptions = {}): Uint8Array {
  if (arrays === null || typeof arrays !== 'object')
    throw new InputError('writeNpz: arrays must be an object');
  const compress = options.compress === true;
  return writeZip(
    Object.entries(arrays).map(([name, arr]) => ({
      name: `${name}.npy`,
      data: writeNpy(arr),
      compress,
      align: compress ? undefined : 64,
    })),
  );
}

/** Read every array of an npz file. Errors name the path. */
export async function readNpzFile(
  file: string,
  options: Omit<ReadNpzOptions, 'file'> = {},
): Promise<Record<string, NdArray>> {
  return readNpz(await readFileBytes(file), { ...options, file });
}

/** Open an npz file lazily (the whole file is read into memory; members are parsed on demand). */
export async function openNpzFile(
  file: string,
  options: Omit<ReadNpzOptions, 'file'> = {},
): Promise<NpzFile> {
  return openNpz(await readFileBytes(file), { ...options, file });
}

/** Write arrays to an npz file atomically (temporary file in the same directory, then rename). */
export async function writeNpzFile(
  file: string,
  arrays: Record<string, NdArray>,
  options: WriteNpzOptions = {},
): Promise<void> {
  await writeFileAtomic(file, writeNpz(arrays, options));
}
