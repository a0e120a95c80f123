import { describe, expect, it } from 'vitest';
import * as zlib from 'node:zlib';
import { deflateSync } from 'fflate';
import { FormatError, InputError } from '@mcp-medsam/core';
import { crc32, readZip, writeZip } from '../src/index.js';
import { b64, expectFormatError } from './helpers.js';

const enc = new TextEncoder();
const dec = new TextDecoder();

function bytesOf(n: number, seed = 7): Uint8Array {
  const out = new Uint8Array(n);
  let s = seed;
  for (let i = 0; i < n; i++) {
    s = (s * 1103515245 + 12345) >>> 0;
    out[i] = (s >>> 16) % 7; // compressible but not trivial
  }
  return out;
}

/** Find the central directory record of the i-th entry (archives built here have no comment). */
function centralRecord(zip: Uint8Array, i: number): number {
  const dv = new DataView(zip.buffer, zip.byteOffset, zip.byteLength);
  const eocd = zip.length - 22;
  let p = dv.getUint32(eocd + 16, true);
  if (p === 0xffffffff) p = Number(dv.getBigUint64(Number(dv.getBigUint64(eocd - 20 + 8, true)) + 48, true)); // ZIP64
  for (let k = 0; k < i; k++)
    p += 46 + dv.getUint16(p + 28, true) + dv.getUint16(p + 30, true) + dv.getUint16(p + 32, true);
  return p;
}

describe('crc32', () => {
  it('matches the standard check value and zlib', () => {
    expect(crc32(enc.encode('123456789'))).toBe(0xcbf43926);
    expect(crc32(new Uint8Array(0))).toBe(0);
    const data = bytesOf(100003);
    // node >= 20.15 has zlib.crc32; compare where it exists
    const zcrc = (zlib as unknown as { crc32?: (d: Uint8Array) => number }).crc32;
    if (zcrc) expect(crc32(data)).toBe(zcrc(data));
    expect(crc32(data.subarray(50000), crc32(data.subarray(0, 50000)))).toBe(crc32(data));
  });
});

describe('writeZip / readZip', () => {
  it('round-trips stored and deflated entries, keeping order', () => {
    const a = bytesOf(10000, 1);
    const b = enc.encode('hello zip');
    const z = writeZip([
      { name: 'dir/a.bin', data: a, compress: true },
      { name: 'b.txt', data: b },
      { name: 'empty', data: new Uint8Array(0), compress: true },
      { name: 'empty-stored', data: new Uint8Array(0) },
      { name: 'ünïcødé/名前', data: b, compress: true },
    ]);
    const m = readZip(z, { file: 'x.zip' });
    expect([...m.keys()]).toEqual(['dir/a.bin', 'b.txt', 'empty', 'empty-stored', 'ünïcødé/名前']);
    const ea = m.get('dir/a.bin')!;
    expect(ea.method).toBe('deflate');
    expect(ea.size).toBe(10000);
    expect(ea.compressedSize).toBeLessThan(10000);
    expect(ea.crc32).toBe(crc32(a));
    expect(ea.read()).toEqual(a);
    expect(dec.decode(m.get('b.txt')!.read())).toBe('hello zip');
    expect(m.get('b.txt')!.method).toBe('stored');
    expect(m.get('empty')!.read().length).toBe(0);
    expect(m.get('empty-stored')!.read().length).toBe(0);
    expect(dec.decode(m.get('ünïcødé/名前')!.read())).toBe('hello zip');
  });

  it('returns stored entries as zero-copy views', () => {
    const data = bytesOf(999);
    const z = writeZip([{ name: 's', data }]);
    const e = readZip(z).get('s')!;
    const got = e.read();
    expect(got.buffer).toBe(z.buffer);
    expect(got.byteOffset).toBe(e.dataOffset);
    expect(got).toEqual(data);
  });

  it('aligns entry data to the requested boundary', () => {
    const entries = [1, 2, 3, 5, 64, 100, 4096].map((align, i) => ({
      name: 'x'.repeat(i * 7 + 1),
      data: bytesOf(37 * i + 3, i),
      align,
    }));
    const z = writeZip(entries);
    const m = readZip(z);
    for (const { name, data, align } of entries) {
      const e = m.get(name)!;
      expect(e.dataOffset % align).toBe(0);
      expect(e.read()).toEqual(data);
    }
    expect(() => writeZip([{ name: 'a', data: new Uint8Array(1), align: 0 }])).toThrow(InputError);
    expect(() => writeZip([{ name: 'a', data: new Uint8Array(1), align: 1.5 }])).toThrow(InputError);
  });

  it('writes the same bytes for the same input', () => {
    const e = [{ name: 'a', data: bytesOf(300), compress: true }];
    expect(writeZip(e)).toEqual(writeZip(e));
  });

  it('rejects duplicate names when writing', () => {
    expect(() =>
      writeZip([
        { name: 'a', data: new Uint8Array(1) },
        { name: 'a', data: new Uint8Array(1) },
      ]),
    ).toThrow(InputError);
  });

  it('reads ZIP64 records (forced) for stored and deflated entries', () => {
    const a = bytesOf(5000);
    const z = writeZip(
      [
        { name: 'a', data: a, compress: true },
        { name: 'b', data: a, align: 64 },
      ],
      { forceZip64: true },
    );
    const dv = new DataView(z.buffer);
    expect(dv.getUint32(z.length - 22 - 20, true)).toBe(0x07064b50); // locator present
    expect(dv.getUint32(z.length - 22 + 16, true)).toBe(0xffffffff); // EOCD offset saturated
    const m = readZip(z);
    expect(m.get('a')!.read()).toEqual(a);
    expect(m.get('b')!.read()).toEqual(a);
    expect(m.get('b')!.dataOffset % 64).toBe(0);
  });

  it('reads a ZIP64 archive written by Python zipfile', () => {
    // zipfile.ZipFile(buf, 'w', ZIP_DEFLATED): zf.open('x.npy', 'w', force_zip64=True) holding
    // np.save of np.arange(5, dtype='<i8'), then zf.writestr('hello.txt', b'hello world')
    const z = b64(
      'UEsDBC0AAAAIAAAAIQDLd52p//////////8FABQAeC5ucHkBABAAqAAAAAAAAABRAAAAAAAAAJvsF+obEMnIUMZQrZ6SWpxcpG6loG6TaaGuo6Cell9UUpSYF59flJIKEndLzClOBYoXZyQWpAL5GqY6mjoKtQoUAC4GKGCE0kxQmhlKs0BpAFBLAwQUAAAACAAHI3tdhRFKDQ0AAAALAAAACQAAAGhlbGxvLnR4dMtIzcnJVyjPL8pJAQBQSwECLQMtAAAACAAAACEAy3edqVEAAACoAAAABQAAAAAAAAAAAAAAgAEAAAAAeC5ucHlQSwECFAMUAAAACAAHI3tdhRFKDQ0AAAALAAAACQAAAAAAAAAAAAAAgAGIAAAAaGVsbG8udHh0UEsFBgAAAAACAAIAagAAALwAAAAAAA==',
    );
    const m = readZip(z);
    expect([...m.keys()]).toEqual(['x.npy', 'hello.txt']);
    expect(m.get('x.npy')!.size).toBe(168);
    expect(dec.decode(m.get('hello.txt')!.read())).toBe('hello world');
    const npy = m.get('x.npy')!.read();
    expect(new BigInt64Array(npy.slice(128).buffer)).toEqual(new BigInt64Array([0n, 1n, 2n, 3n, 4n]));
  });

  it('handles an archive with no entries', () => {
    const z = writeZip([]);
    expect(z.length).toBe(22);
    expect(readZip(z).size).toBe(0);
  });

  it('finds the end record behind an archive comment', () => {
    const z = writeZip([{ name: 'a', data: enc.encode('abc') }]);
    const comment = enc.encode('a comment PK\x05\x06 with a fake signature');
    const withComment = new Uint8Array(z.length + comment.length);
    withComment.set(z);
    withComment.set(comment, z.length);
    new DataView(withComment.buffer).setUint16(z.length - 2, comment.length, true);
    expect(dec.decode(readZip(withComment).get('a')!.read())).toBe('abc');
  });
});

describe('readZip rejects bad archives with a FormatError naming file and entry', () => {
  const data = bytesOf(20000);
  const good = () =>
    writeZip([
      { name: 'w.bin', data, compress: true },
      { name: 's.bin', data },
    ]);

  it('not a zip / truncated', () => {
    expect(expectFormatError(() => readZip(new Uint8Array(10), { file: 'f.zip' }), 'f.zip')).toMatch(
      /not a zip/,
    );
    expect(expectFormatError(() => readZip(new Uint8Array(100), { file: 'f.zip' }), 'f.zip')).toMatch(
      /not a zip/,
    );
    const z = good();
    expect(expectFormatError(() => readZip(z.subarray(0, z.length - 1), { file: 'f.zip' }), 'f.zip')).toMatch(
      /not a zip/,
    );
    // cut in the middle of the data but keep the end records: central directory points past the end
    const tail = z.subarray(z.length - 22);
    const cut = new Uint8Array(1000 + 22);
    cut.set(z.subarray(0, 1000));
    cut.set(tail, 1000);
    expect(expectFormatError(() => readZip(cut, { file: 'f.zip' }), 'f.zip')).toMatch(
      /truncated|out of bounds/,
    );
  });

  it('bad CRC', () => {
    const z = good();
    const m = readZip(z);
    const off = m.get('s.bin')!.dataOffset;
    z[off + 5] ^= 0xff;
    const msg = expectFormatError(() => readZip(z, { file: 'c.zip' }).get('s.bin')!.read(), 'c.zip');
    expect(msg).toMatch(/"s\.bin": CRC mismatch/);
    const z2 = good();
    new DataView(z2.buffer).setUint32(centralRecord(z2, 0) + 16, 12345, true);
    expect(expectFormatError(() => readZip(z2, { file: 'c.zip' }).get('w.bin')!.read(), 'c.zip')).toMatch(
      /"w\.bin": CRC mismatch/,
    );
  });

  it('corrupt deflate stream', () => {
    const z = good();
    const e = readZip(z).get('w.bin')!;
    z.fill(0xff, e.dataOffset, e.dataOffset + 8); // invalid block type / codes
    expect(expectFormatError(() => readZip(z, { file: 'd.zip' }).get('w.bin')!.read(), 'd.zip')).toMatch(
      /"w\.bin"/,
    );
  });

  it('unknown compression method and encryption', () => {
    const z = good();
    new DataView(z.buffer).setUint16(centralRecord(z, 1) + 10, 12, true); // bzip2
    expect(expectFormatError(() => readZip(z, { file: 'm.zip' }), 'm.zip')).toMatch(
      /"s\.bin": unsupported compression method 12/,
    );
    const z2 = good();
    new DataView(z2.buffer).setUint16(centralRecord(z2, 0) + 8, 1, true);
    expect(expectFormatError(() => readZip(z2, { file: 'm.zip' }), 'm.zip')).toMatch(/"w\.bin": encrypted/);
  });

  it('duplicate names and mismatched local headers', () => {
    const z = writeZip([
      { name: 'aa', data: enc.encode('1') },
      { name: 'ab', data: enc.encode('2') },
    ]);
    const p = centralRecord(z, 1);
    z[p + 46 + 1] = 'a'.charCodeAt(0); // central name "aa" again
    expect(expectFormatError(() => readZip(z, { file: 'n.zip' }), 'n.zip')).toMatch(
      /"aa": (duplicate|local header)/,
    );
  });

  it('entry size limits are checked before inflating', () => {
    const z = good();
    expect(expectFormatError(() => readZip(z, { file: 'l.zip', maxEntryBytes: 19999 }), 'l.zip')).toMatch(
      /"w\.bin": declares 20000 bytes, more than the limit of 19999/,
    );
    expect(expectFormatError(() => readZip(z, { file: 'l.zip', maxTotalBytes: 39999 }), 'l.zip')).toMatch(
      /"s\.bin": entries declare more than the limit of 39999 bytes/,
    );
    expect(readZip(z, { maxEntryBytes: 20000, maxTotalBytes: 40000 }).size).toBe(2);
  });

  it('zip bomb: a deflate entry declaring more than the limit (via ZIP64, 5 GiB) is refused unread', () => {
    // 1 MiB of zeros deflates to ~1 KiB; declare 5 GiB for it in the ZIP64 extra fields.
    const z = writeZip([{ name: 'bomb', data: new Uint8Array(1 << 20), compress: true }], {
      forceZip64: true,
    });
    const dv = new DataView(z.buffer);
    const p = centralRecord(z, 0);
    // readZip never looks at the saturated EOCD fields; patch the ZIP64 size in the central extra.
    expect(dv.getUint16(p + 46 + 4, true)).toBe(1);
    dv.setBigUint64(p + 46 + 4 + 4, 5n * 2n ** 30n, true);
    const msg = expectFormatError(() => readZip(z, { file: 'bomb.zip' }), 'bomb.zip');
    expect(msg).toMatch(/"bomb": declares 5368709120 bytes, more than the limit of 4294967296/);
  });

  it('zip bomb: a declared size smaller than the inflated data is refused', () => {
    const real = new Uint8Array(1 << 20).fill(65);
    for (const size of [0, 1, 1000, (1 << 20) - 1]) {
      const z = writeZip([{ name: 'bomb', data: real, compress: true }]);
      const p = centralRecord(z, 0);
      new DataView(z.buffer).setUint32(p + 24, size, true);
      const e = readZip(z, { file: 'small.zip' }).get('bomb')!;
      expect(e.size).toBe(size);
      expect(expectFormatError(() => e.read(), 'small.zip')).toMatch(
        /"bomb": inflates to more than the declared/,
      );
    }
    // and larger than the data: fewer bytes than declared
    const z = writeZip([{ name: 'bomb', data: real, compress: true }]);
    new DataView(z.buffer).setUint32(centralRecord(z, 0) + 24, (1 << 20) + 1, true);
    expect(expectFormatError(() => readZip(z, { file: 'big.zip' }).get('bomb')!.read(), 'big.zip')).toMatch(
      /"bomb": inflates to 1048576 bytes, not the declared 1048577/,
    );
  });

  it('a stored-block deflate stream overrunning the declared size is refused', () => {
    const raw = deflateSync(bytesOf(5000), { level: 0 }); // stored deflate blocks
    const z = writeZip([{ name: 'st', data: new Uint8Array(4000), compress: true }]);
    // splice the level-0 stream in place of the real one
    const e = readZip(z).get('st')!;
    const out = new Uint8Array(e.dataOffset + raw.length + (z.length - e.dataOffset - e.compressedSize));
    out.set(z.subarray(0, e.dataOffset));
    out.set(raw, e.dataOffset);
    out.set(z.subarray(e.dataOffset + e.compressedSize), e.dataOffset + raw.length);
    const dv = new DataView(out.buffer);
    const cd = dv.getUint32(out.length - 6, true) + raw.length - e.compressedSize;
    dv.setUint32(out.length - 6, cd, true);
    dv.setUint32(cd + 20, raw.length, true);
    expect(expectFormatError(() => readZip(out, { file: 'o.zip' }).get('st')!.read(), 'o.zip')).toMatch(
      /"st": inflates to more than the declared 4000/,
    );
  });

  it('all of these are FormatErrors, also without a file name', () => {
    expect(() => readZip(new Uint8Array(50))).toThrow(FormatError);
  });
});
