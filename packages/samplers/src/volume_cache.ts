/**
 * An uncompressed on-disk cache of npz cases: the first access to a case inflates its npz once
 * and writes `imgs` and `gts` as plain `.npy` files. Every later slice of a 3D volume is one
 * positioned `read` of exactly that slice's bytes; a 2D case is read whole, without the inflate
 * and CRC work of the npz.
 */
import { createHash } from 'node:crypto';
import { mkdir, open, readFile, rename, stat, unlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { FormatError, InputError } from '@mcp-medsam/core/common';
import {
  itemSize,
  openNpzFile,
  readNpyHeader,
  typedArrayConstructor,
  writeNpy,
  type DType,
  type NdArray,
} from '@mcp-medsam/io';

/** Where one cached array lives. */
interface CachedArray {
  path: string;
  dtype: DType;
  shape: number[];
  dataOffset: number;
}

interface CachedVolume {
  imgs: CachedArray;
  gts: CachedArray;
}

export interface VolumeCacheStats {
  /** npz files decompressed (by this process). */
  inflations: number;
  /** Positioned reads of slice data, and their bytes. */
  reads: number;
  bytesRead: number;
}

/** `imgs` and `gts` of one slice (H,W) of a cached volume, or of a whole cached case. */
export interface VolumeSlice {
  imgs: NdArray;
  gts: NdArray;
}

function keyOf(file: string, size: number, mtimeMs: number): string {
  const h = createHash('sha1')
    .update(`${path.resolve(file)}\0${size}\0${mtimeMs}`)
    .digest('hex')
    .slice(0, 16);
  return `${path.basename(file).replace(/\.npz$/i, '')}-${h}`;
}

async function readHeader(p: string): Promise<CachedArray> {
  const fh = await open(p, 'r');
  try {
    const head = new Uint8Array(12);
    await fh.read(head, 0, 12, 0);
    const major = head[6];
    const len =
      major === 1
        ? head[8] | (head[9] << 8)
        : (head[8] | (head[9] << 8) | (head[10] << 16)) + head[11] * 2 ** 24;
    const total = (major === 1 ? 10 : 12) + len;
    const bytes = new Uint8Array(total);
    await fh.read(bytes, 0, total, 0);
    const h = readNpyHeader(bytes, { file: p });
    if (!h.littleEndian || h.fortranOrder)
      throw new FormatError('cached npy must be little-endian C order', { file: p });
    return { path: p, dtype: h.dtype, shape: h.shape, dataOffset: h.dataOffset };
  } finally {
    await fh.close();
  }
}

async function writeAtomic(p: string, bytes: Uint8Array): Promise<void> {
  const tmp = `${p}.${process.pid}.${Math.random().toString(36).slice(2)}.tmp`;
  await writeFile(tmp, bytes);
  try {
    await rename(tmp, p);
  } catch (e) {
    await unlink(tmp).catch(() => undefined);
    throw e;
  }
}

export class VolumeCache {
  readonly dir: string;
  readonly stats: VolumeCacheStats = { inflations: 0, reads: 0, bytesRead: 0 };
  private readonly volumes = new Map<string, Promise<CachedVolume>>();

  constructor(dir: string) {
    this.dir = path.resolve(dir);
  }

  /** Make sure a volume is in the cache (inflating it if needed); returns its shape (D,H,W). */
  async ensure(file: string): Promise<number[]> {
    return (await this.volume(file)).gts.shape;
  }

  private volume(file: string): Promise<CachedVolume> {
    const abs = path.resolve(file);
    let v = this.volumes.get(abs);
    if (!v) {
      v = this.load(abs);
      this.volumes.set(abs, v);
      v.catch(() => this.volumes.delete(abs));
    }
    return v;
  }

  private async load(file: string): Promise<CachedVolume> {
    const st = await stat(file);
    const dir = path.join(this.dir, keyOf(file, st.size, st.mtimeMs));
    const pi = path.join(dir, 'imgs.npy');
    const pg = path.join(dir, 'gts.npy');
    try {
      return { imgs: await readHeader(pi), gts: await readHeader(pg) };
    } catch {
      // Not cached yet (or a partial/corrupt entry): inflate once.
    }
    const npz = await openNpzFile(file);
    const imgs = npz.get('imgs');
    const gts = npz.get('gts');
    this.stats.inflations++;
    await mkdir(dir, { recursive: true });
    await writeAtomic(pi, writeNpy(imgs));
    await writeAtomic(pg, writeNpy(gts));
    return { imgs: await readHeader(pi), gts: await readHeader(pg) };
  }

  private async readPlane(a: CachedArray, slice: number): Promise<NdArray> {
    if (a.shape.length !== 3)
      throw new InputError(`volume cache: expected a (D,H,W) volume, got [${a.shape}]`, { file: a.path });
    const [d, h, w] = a.shape;
    if (!Number.isSafeInteger(slice) || slice < 0 || slice >= d)
      throw new InputError(`slice ${slice} outside [0, ${d})`, { file: a.path });
    const size = itemSize(a.dtype);
    const n = h * w;
    const buf = new ArrayBuffer(n * size);
    const fh = await open(a.path, 'r');
    try {
      const { bytesRead } = await fh.read(new Uint8Array(buf), 0, n * size, a.dataOffset + slice * n * size);
      if (bytesRead !== n * size) throw new FormatError('cached volume truncated', { file: a.path });
    } finally {
      await fh.close();
    }
    this.stats.reads++;
    this.stats.bytesRead += n * size;
    const Ctor = typedArrayConstructor(a.dtype);
    return { dtype: a.dtype, shape: [h, w], data: new Ctor(buf) } as NdArray;
  }

  private async readWhole(a: CachedArray): Promise<NdArray> {
    const bytes = await readFile(a.path);
    const n = a.shape.reduce((x, y) => x * y, 1) * itemSize(a.dtype);
    if (bytes.byteLength < a.dataOffset + n)
      throw new FormatError('cached array truncated', { file: a.path });
    this.stats.reads++;
    this.stats.bytesRead += n;
    // A fresh, aligned buffer: the typed array views it directly.
    const buf = new ArrayBuffer(n);
    new Uint8Array(buf).set(bytes.subarray(a.dataOffset, a.dataOffset + n));
    const Ctor = typedArrayConstructor(a.dtype);
    return { dtype: a.dtype, shape: [...a.shape], data: new Ctor(buf) } as NdArray;
  }

  /** One slice (H,W) of `imgs` and `gts` of a 3D npz case. */
  async slice(file: string, slice: number): Promise<VolumeSlice> {
    const v = await this.volume(file);
    const [imgs, gts] = await Promise.all([this.readPlane(v.imgs, slice), this.readPlane(v.gts, slice)]);
    return { imgs, gts };
  }

  /** The whole `imgs` and `gts` of a case (for 2D cases; any shape). */
  async arrays(file: string): Promise<VolumeSlice> {
    const v = await this.volume(file);
    const [imgs, gts] = await Promise.all([this.readWhole(v.imgs), this.readWhole(v.gts)]);
    return { imgs, gts };
  }
}
