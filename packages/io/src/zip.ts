/**
 * A small zip reader and writer (stored and deflate entries, ZIP64) on top of fflate.
 *
 * The reader parses the central directory itself so that nothing is decompressed until an entry's
 * `read()` is called, and every size is checked before any allocation: an entry's declared size
 * must fit the limits, deflate output goes into a buffer of exactly the declared size (plus one
 * byte to detect overruns), and the CRC is verified on every read. Stored entries come back as
 * zero-copy views of the input.
 */
import { inflateSync, deflateSync } from 'fflate';
import { FormatError, InputError, MedsamError } from '@mcp-medsam/core/common';
import { crc32 } from './crc32.js';

export interface ZipEntry {
  /** Entry name as stored in the archive (UTF-8 when flagged, else Latin-1 unless valid UTF-8). */
  name: string;
  method: 'stored' | 'deflate';
  /** Bytes of (possibly compressed) data in the archive. */
  compressedSize: number;
  /** Declared uncompressed size. */
  size: number;
  /** Declared CRC-32 of the uncompressed data. */
  crc32: number;
  /** Offset of the entry's data (after its local header) in the archive. */
  dataOffset: number;
  /**
   * The uncompressed bytes, checked against the declared size and CRC (FormatError otherwise).
   * Stored entries are views of the archive's bytes (no copy); deflate entries are inflated anew
   * on each call.
   */
  read(): Uint8Array;
}

/** Bounds on what `readZip` accepts, in uncompressed bytes. */
export interface ZipLimits {
  /** Largest declared size of one entry (default 4 GiB). */
  maxEntryBytes?: number;
  /** Largest sum of the declared sizes of all entries (default 16 GiB). */
  maxTotalBytes?: number;
}

export const DEFAULT_ZIP_LIMITS: Readonly<Required<ZipLimits>> = Object.freeze({
  maxEntryBytes: 4 * 2 ** 30,
  maxTotalBytes: 16 * 2 ** 30,
});

const SIG_LOCAL = 0x04034b50;
const SIG_CENTRAL = 0x02014b50;
const SIG_EOCD = 0x06054b50;
const SIG_ZIP64_EOCD = 0x06064b50;
const SIG_ZIP64_LOCATOR = 0x07064b50;
const U16_MAX = 0xffff;
const U32_MAX = 0xffffffff;

const utf8Strict = new TextDecoder('utf-8', { fatal: true });
const utf8Loose = new TextDecoder('utf-8');

function decodeName(b: Uint8Array, utf8Flag: boolean): string {
  if (utf8Flag) return utf8Loose.decode(b);
  let ascii = true;
  for (let i = 0; i < b.length; i++) if (b[i] >= 0x80) ascii = false;
  if (!ascii) {
    try {
      return utf8Strict.decode(b);
    } catch {
      // fall through to Latin-1
    }
  }
  let s = '';
  for (let i = 0; i < b.length; i++) s += String.fromCharCode(b[i]);
  return s;
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/**
 * Index a zip archive held in memory. Returns its entries by name, in central-directory order.
 * Throws a FormatError (naming `options.file` and the entry) for anything malformed: no end of
 * central directory, truncation, multi-disk or encrypted archives, compression methods other than
 * stored and deflate, duplicate names, or declared sizes beyond the limits.
 */
export function readZip(
  bytes: Uint8Array,
  options: ZipLimits & { file?: string } = {},
): Map<string, ZipEntry> {
  const file = options.file;
  try {
    return parseZip(bytes, options);
  } catch (e) {
    if (e instanceof MedsamError) throw e;
    // Safety net: a bounds error we did not anticipate still means a corrupt archive.
    throw new FormatError(`corrupt zip archive (${(e as Error)?.message ?? String(e)})`, { file, cause: e });
  }
}

function parseZip(bytes: Uint8Array, options: ZipLimits & { file?: string }): Map<string, ZipEntry> {
  const file = options.file;
  const maxEntry = options.maxEntryBytes ?? DEFAULT_ZIP_LIMITS.maxEntryBytes;
  const maxTotal = options.maxTotalBytes ?? DEFAULT_ZIP_LIMITS.maxTotalBytes;
  const fail = (msg: string, cause?: unknown): never => {
    throw new FormatError(msg, { file, cause });
  };
  const len = bytes.length;
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const need = (pos: number, n: number, what: string) => {
    if (pos < 0 || pos + n > len) fail(`zip archive truncated (${what} at byte ${pos} runs past the end)`);
  };
  const u16 = (p: number) => dv.getUint16(p, true);
  const u32 = (p: number) => dv.getUint32(p, true);
  const u64 = (p: number, what: string) => {
    const v = dv.getBigUint64(p, true);
    if (v > BigInt(Number.MAX_SAFE_INTEGER)) fail(`${what} ${v} is too large`);
    return Number(v);
  };

  // --- end of central directory (the last 22 bytes plus an optional comment of up to 64 KiB)
  if (len < 22) fail(`not a zip archive (${len} bytes is too short)`);
  let eocd = -1;
  for (let p = len - 22, stop = Math.max(0, len - 22 - U16_MAX); p >= stop; p--) {
    if (bytes[p] === 0x50 && bytes[p + 1] === 0x4b && u32(p) === SIG_EOCD && p + 22 + u16(p + 20) <= len) {
      eocd = p;
      break;
    }
  }
  if (eocd < 0) fail('not a zip archive (no end-of-central-directory record; truncated?)');
  let disk = u16(eocd + 4);
  let cdDisk = u16(eocd + 6);
  let countOnDisk = u16(eocd + 8);
  let count = u16(eocd + 10);
  let cdSize = u32(eocd + 12);
  let cdOffset = u32(eocd + 16);
  let cdLimit = eocd; // the central directory must end before this

  const loc = eocd - 20;
  if (loc >= 0 && u32(loc) === SIG_ZIP64_LOCATOR) {
    const recPos = u64(loc + 8, 'ZIP64 end-of-central-directory offset');
    if (u32(loc + 16) > 1 || u32(loc + 4) !== 0) fail('multi-disk zip archives are not supported');
    if (recPos + 56 > loc) fail('ZIP64 end-of-central-directory record out of bounds');
    if (u32(recPos) !== SIG_ZIP64_EOCD) fail('bad ZIP64 end-of-central-directory signature');
    disk = u32(recPos + 16);
    cdDisk = u32(recPos + 20);
    countOnDisk = u64(recPos + 24, 'ZIP64 entry count');
    count = u64(recPos + 32, 'ZIP64 entry count');
    cdSize = u64(recPos + 40, 'ZIP64 central directory size');
    cdOffset = u64(recPos + 48, 'ZIP64 central directory offset');
    cdLimit = recPos;
  } else if (count === U16_MAX || cdSize === U32_MAX || cdOffset === U32_MAX) {
    fail('ZIP64 archive without a ZIP64 end-of-central-directory locator');
  }
  if (disk !== 0 || cdDisk !== 0 || countOnDisk !== count) fail('multi-disk zip archives are not supported');
  if (cdOffset + cdSize > cdLimit) fail('central directory out of bounds (truncated archive?)');
  if (count * 46 > cdSize) fail(`central directory too small for ${count} entries`);

  // --- central directory
  const entries = new Map<string, ZipEntry>();
  let total = 0;
  let q = cdOffset;
  const cdEnd = cdOffset + cdSize;
  for (let i = 0; i < count; i++) {
    if (q + 46 > cdEnd) fail(`central directory truncated at entry ${i}`);
    if (u32(q) !== SIG_CENTRAL) fail(`bad central directory signature at entry ${i}`);
    const flags = u16(q + 8);
    const methodCode = u16(q + 10);
    const crc = u32(q + 16);
    let csize = u32(q + 20);
    let size = u32(q + 24);
    const nameLen = u16(q + 28);
    const extraLen = u16(q + 30);
    const commentLen = u16(q + 32);
    let entryDisk = u16(q + 34);
    let localOffset = u32(q + 42);
    const nameStart = q + 46;
    const extraStart = nameStart + nameLen;
    const next = extraStart + extraLen + commentLen;
    if (next > cdEnd) fail(`central directory truncated at entry ${i}`);
    const nameBytes = bytes.subarray(nameStart, extraStart);
    const name = decodeName(nameBytes, (flags & 0x800) !== 0);
    const efail = (msg: string, cause?: unknown): never =>
      fail(`zip entry ${JSON.stringify(name)}: ${msg}`, cause);

    // ZIP64 extended information: only the fields saturated in the fixed header, in this order.
    if (size === U32_MAX || csize === U32_MAX || localOffset === U32_MAX || entryDisk === U16_MAX) {
      let found = false;
      for (let p = extraStart; p + 4 <= extraStart + extraLen; ) {
        const id = u16(p);
        const sz = u16(p + 2);
        const body = p + 4;
        if (body + sz > extraStart + extraLen) efail('extra field runs past its end');
        if (id === 0x0001) {
          found = true;
          let r = body;
          const take8 = (what: string) => {
            if (r + 8 > body + sz) efail(`ZIP64 extra field too short for the ${what}`);
            const v = u64(r, `ZIP64 ${what} of entry ${JSON.stringify(name)}`);
            r += 8;
            return v;
          };
          if (size === U32_MAX) size = take8('size');
          if (csize === U32_MAX) csize = take8('compressed size');
          if (localOffset === U32_MAX) localOffset = take8('local header offset');
          if (entryDisk === U16_MAX) {
            if (r + 4 > body + sz) efail('ZIP64 extra field too short for the disk number');
            entryDisk = u32(r);
          }
          break;
        }
        p = body + sz;
      }
      if (!found) efail('sizes need a ZIP64 extra field, which is missing');
    }
    if (entryDisk !== 0) efail('multi-disk zip archives are not supported');
    if (flags & 0x1) efail('encrypted entries are not supported');
    let method: 'stored' | 'deflate';
    if (methodCode === 0) method = 'stored';
    else if (methodCode === 8) method = 'deflate';
    else method = efail(`unsupported compression method ${methodCode} (only stored and deflate)`);
    if (method === 'stored' && csize !== size) {
      efail(`stored entry with compressed size ${csize} different from its size ${size}`);
    }
    if (size > maxEntry) efail(`declares ${size} bytes, more than the limit of ${maxEntry}`);
    total += size;
    if (total > maxTotal) efail(`entries declare more than the limit of ${maxTotal} bytes in all`);
    if (entries.has(name)) efail('duplicate entry name');

    // Local header: check it names the same entry and find where the data starts.
    need(localOffset, 30, `local header of ${JSON.stringify(name)}`);
    if (u32(localOffset) !== SIG_LOCAL) efail('bad local header signature');
    const lNameLen = u16(localOffset + 26);
    const lExtraLen = u16(localOffset + 28);
    need(localOffset + 30, lNameLen + lExtraLen, `local header of ${JSON.stringify(name)}`);
    if (!sameBytes(bytes.subarray(localOffset + 30, localOffset + 30 + lNameLen), nameBytes)) {
      efail('local header names a different entry');
    }
    const dataOffset = localOffset + 30 + lNameLen + lExtraLen;
    if (dataOffset + csize > len)
      efail(`data truncated (${csize} bytes at ${dataOffset}, archive has ${len})`);

    entries.set(name, makeEntry(bytes, { name, method, csize, size, crc, dataOffset }, efail));
    q = next;
  }
  return entries;
}

function makeEntry(
  bytes: Uint8Array,
  e: {
    name: string;
    method: 'stored' | 'deflate';
    csize: number;
    size: number;
    crc: number;
    dataOffset: number;
  },
  efail: (msg: string, cause?: unknown) => never,
): ZipEntry {
  let verified = false;
  const checkCrc = (data: Uint8Array) => {
    const got = crc32(data);
    if (got !== e.crc) efail(`CRC mismatch (declared ${hex(e.crc)}, data has ${hex(got)})`);
  };
  return {
    name: e.name,
    method: e.method,
    compressedSize: e.csize,
    size: e.size,
    crc32: e.crc,
    dataOffset: e.dataOffset,
    read(): Uint8Array {
      const raw = bytes.subarray(e.dataOffset, e.dataOffset + e.csize);
      if (e.method === 'stored') {
        if (!verified) checkCrc(raw);
        verified = true;
        return raw;
      }
      if (e.csize === 0) efail('empty deflate stream');
      let out: Uint8Array;
      try {
        // One spare byte: output filling it means the stream holds more than declared.
        out = new Uint8Array(e.size + 1);
      } catch (err) {
        return efail(`cannot allocate ${e.size} bytes`, err);
      }
      let got: Uint8Array;
      try {
        got = inflateSync(raw, { out });
      } catch (err) {
        if (err instanceof RangeError) efail(`inflates to more than the declared ${e.size} bytes`, err);
        return efail(`corrupt deflate data (${(err as Error).message})`, err);
      }
      if (got.length > e.size) efail(`inflates to more than the declared ${e.size} bytes`);
      if (got.length < e.size) efail(`inflates to ${got.length} bytes, not the declared ${e.size}`);
      const data = out.subarray(0, e.size);
      checkCrc(data);
      return data;
    },
  };
}

function hex(n: number): string {
  return '0x' + n.toString(16).padStart(8, '0');
}

// ---------------------------------------------------------------------------------------------
// writer

export interface ZipWriteEntry {
  name: string;
  data: Uint8Array;
  /** Deflate the data (default: store it). */
  compress?: boolean;
  /**
   * Pad the local header's extra field so that the entry's data starts at a multiple of this many
   * bytes (1..32768). PyTorch aligns stored entries to 64.
   */
  align?: number;
}

export interface ZipWriteOptions {
  /** Deflate level 0..9 for compressed entries (default 6). */
  level?: 0 | 1 | 2 | 3 | 4 | 5 | 6 | 7 | 8 | 9;
  /** Write ZIP64 records for every entry and the directory even when not needed (for tests). */
  forceZip64?: boolean;
}

const ALIGN_EXTRA_ID = 0xd935; // the alignment-padding extra field id used by Android's zipalign/apksigner

/**
 * Build a zip archive. Entries keep their order; names are stored as UTF-8 (flagged when not ASCII);
 * timestamps are fixed at 1980-01-01 so the output depends only on the input. ZIP64 records are
 * written where sizes or offsets need them.
 */
export function writeZip(entries: ZipWriteEntry[], options: ZipWriteOptions = {}): Uint8Array {
  const force = options.forceZip64 === true;
  const enc = new TextEncoder();
  const seen = new Set<string>();
  interface Prepared {
    nameBytes: Uint8Array;
    utf8: boolean;
    data: Uint8Array;
    size: number;
    crc: number;
    method: number;
    offset: number;
    localExtra: number;
    pad: number;
    zip64Local: boolean;
  }
  const prepared: Prepared[] = [];
  let offset = 0;
  for (const entry of entries) {
    if (typeof entry.name !== 'string') throw new InputError('zip entry name must be a string');
    if (seen.has(entry.name)) throw new InputError(`duplicate zip entry name ${JSON.stringify(entry.name)}`);
    seen.add(entry.name);
    if (!(entry.data instanceof Uint8Array)) {
      throw new InputError(`zip entry ${JSON.stringify(entry.name)}: data must be a Uint8Array`);
    }
    const align = entry.align ?? 1;
    if (!Number.isInteger(align) || align < 1 || align > 0x8000) {
      throw new InputError(`zip entry ${JSON.stringify(entry.name)}: align must be an integer in 1..32768`);
    }
    const nameBytes = enc.encode(entry.name);
    if (nameBytes.length > U16_MAX)
      throw new InputError(`zip entry name too long: ${entry.name.slice(0, 80)}...`);
    const utf8 = nameBytes.some((b) => b >= 0x80);
    const data = entry.compress ? deflateSync(entry.data, { level: options.level ?? 6 }) : entry.data;
    const size = entry.data.length;
    const zip64Local = force || size >= U32_MAX || data.length >= U32_MAX;
    let localExtra = zip64Local ? 20 : 0;
    let pad = 0;
    if (align > 1) {
      const base = offset + 30 + nameBytes.length + localExtra;
      pad = (align - (base % align)) % align;
      while (pad > 0 && pad < 4) pad += align; // a padding record needs at least its 4-byte header
      localExtra += pad;
    }
    prepared.push({
      nameBytes,
      utf8,
      data,
      size,
      crc: crc32(entry.data),
      method: entry.compress ? 8 : 0,
      offset,
      localExtra,
      pad,
      zip64Local,
    });
    offset += 30 + nameBytes.length + localExtra + data.length;
  }

  // Central directory sizes.
  const cdOffset = offset;
  let cdSize = 0;
  const centralExtra = prepared.map((p) => {
    let n = 0;
    if (force || p.size >= U32_MAX) n += 8;
    if (force || p.data.length >= U32_MAX) n += 8;
    if (force || p.offset >= U32_MAX) n += 8;
    return n ? n + 4 : 0;
  });
  prepared.forEach((p, i) => (cdSize += 46 + p.nameBytes.length + centralExtra[i]));
  const zip64End = force || prepared.length >= U16_MAX || cdOffset >= U32_MAX || cdSize >= U32_MAX;
  const totalLen = cdOffset + cdSize + (zip64End ? 56 + 20 : 0) + 22;

  let out: Uint8Array;
  try {
    out = new Uint8Array(totalLen);
  } catch (e) {
    throw new InputError(`zip archive of ${totalLen} bytes is too large to build in memory`, { cause: e });
  }
  const dv = new DataView(out.buffer);
  const w16 = (p: number, v: number) => dv.setUint16(p, v, true);
  const w32 = (p: number, v: number) => dv.setUint32(p, v, true);
  const w64 = (p: number, v: number) => dv.setBigUint64(p, BigInt(v), true);
  const DOS_DATE = (0 << 9) | (1 << 5) | 1; // 1980-01-01
  const sat32 = (v: number, forced: boolean) => (forced || v >= U32_MAX ? U32_MAX : v);

  for (const p of prepared) {
    let o = p.offset;
    w32(o, SIG_LOCAL);
    w16(o + 4, p.zip64Local ? 45 : p.method === 8 ? 20 : 10);
    w16(o + 6, p.utf8 ? 0x800 : 0);
    w16(o + 8, p.method);
    w16(o + 10, 0);
    w16(o + 12, DOS_DATE);
    w32(o + 14, p.crc);
    w32(o + 18, p.zip64Local ? U32_MAX : p.data.length);
    w32(o + 22, p.zip64Local ? U32_MAX : p.size);
    w16(o + 26, p.nameBytes.length);
    w16(o + 28, p.localExtra);
    out.set(p.nameBytes, o + 30);
    o += 30 + p.nameBytes.length;
    if (p.zip64Local) {
      w16(o, 0x0001);
      w16(o + 2, 16);
      w64(o + 4, p.size);
      w64(o + 12, p.data.length);
      o += 20;
    }
    if (p.pad) {
      w16(o, ALIGN_EXTRA_ID);
      w16(o + 2, p.pad - 4);
      o += p.pad; // the padding body stays zero
    }
    out.set(p.data, o);
  }

  let c = cdOffset;
  prepared.forEach((p, i) => {
    const zip64 = centralExtra[i] > 0;
    w32(c, SIG_CENTRAL);
    w16(c + 4, 45);
    w16(c + 6, zip64 || p.zip64Local ? 45 : p.method === 8 ? 20 : 10);
    w16(c + 8, p.utf8 ? 0x800 : 0);
    w16(c + 10, p.method);
    w16(c + 12, 0);
    w16(c + 14, DOS_DATE);
    w32(c + 16, p.crc);
    w32(c + 20, sat32(p.data.length, force));
    w32(c + 24, sat32(p.size, force));
    w16(c + 28, p.nameBytes.length);
    w16(c + 30, centralExtra[i]);
    // comment length, disk number, internal and external attributes stay zero
    w32(c + 42, sat32(p.offset, force));
    out.set(p.nameBytes, c + 46);
    let e = c + 46 + p.nameBytes.length;
    if (zip64) {
      w16(e, 0x0001);
      w16(e + 2, centralExtra[i] - 4);
      e += 4;
      for (const [v, needed] of [
        [p.size, force || p.size >= U32_MAX],
        [p.data.length, force || p.data.length >= U32_MAX],
        [p.offset, force || p.offset >= U32_MAX],
      ] as const) {
        if (!needed) continue;
        w64(e, v);
        e += 8;
      }
    }
    c = e;
  });

  let z = cdOffset + cdSize;
  if (zip64End) {
    w32(z, SIG_ZIP64_EOCD);
    w64(z + 4, 44); // size of the rest of this record
    w16(z + 12, 45);
    w16(z + 14, 45);
    // disk numbers zero
    w64(z + 24, prepared.length);
    w64(z + 32, prepared.length);
    w64(z + 40, cdSize);
    w64(z + 48, cdOffset);
    w32(z + 56, SIG_ZIP64_LOCATOR);
    w32(z + 60, 0);
    w64(z + 64, z);
    w32(z + 72, 1);
    z += 76;
  }
  w32(z, SIG_EOCD);
  // disk numbers zero
  const count16 = zip64End && (force || prepared.length >= U16_MAX) ? U16_MAX : prepared.length;
  w16(z + 8, count16);
  w16(z + 10, count16);
  w32(z + 12, sat32(cdSize, force));
  w32(z + 16, sat32(cdOffset, force));
  return out;
}
