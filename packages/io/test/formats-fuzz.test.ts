/**
 * Property-based robustness of the image readers (fast-check): truncated and corrupted NIfTI
 * (plain and gzipped), DICOM, PNG, JPEG, TIFF, GIF and BMP files end in a FormatError that names
 * the file, or (for damage a format cannot detect) in a well-formed array; never in another
 * error, a crash or a hang (each decode is timed).
 */
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import sharp from 'sharp';
import { FormatError } from '@mcp-medsam/core';
import { type NdArray, ndarray, numel, readImageBytes, writeNifti, writePng } from '../src/index.js';
import { makeDicom } from './formats-dicom-helpers.js';

const FILE = 'fuzz/image.bin';
/** `IO_FUZZ_SCALE=50 pnpm vitest run packages/io/test/formats-fuzz.test.ts` runs 50 times as many cases. */
const SCALE = Math.max(1, Number(process.env.IO_FUZZ_SCALE ?? 1) || 1);
const runs = (n: number) => n * SCALE;
const MAX_MS = 5000;
const LIMIT = { maxBytes: 1 << 24 }; // a corrupted size must not allocate much

async function outcome(bytes: Uint8Array): Promise<'ok' | 'error'> {
  const t0 = performance.now();
  try {
    const im = await readImageBytes(bytes, { file: FILE, ...LIMIT });
    const a: NdArray = im.array;
    expect(a.data.length).toBe(numel(a.shape));
    return 'ok';
  } catch (e) {
    if (e instanceof FormatError && e.file === FILE && e.message.startsWith(`${FILE}: `)) return 'error';
    throw e;
  } finally {
    expect(performance.now() - t0).toBeLessThan(MAX_MS);
  }
}

function bmp(width: number, height: number, bpp: 1 | 24, topDown = false): Uint8Array {
  const stride = Math.floor((width * bpp + 31) / 32) * 4;
  const palette = bpp === 1 ? 8 : 0;
  const off = 54 + palette;
  const b = new Uint8Array(off + stride * height);
  const v = new DataView(b.buffer);
  b[0] = 0x42;
  b[1] = 0x4d;
  v.setUint32(2, b.length, true);
  v.setUint32(10, off, true);
  v.setUint32(14, 40, true);
  v.setInt32(18, width, true);
  v.setInt32(22, topDown ? -height : height, true);
  v.setUint16(26, 1, true);
  v.setUint16(28, bpp, true);
  if (bpp === 1) {
    v.setUint32(46, 2, true);
    b.set([0, 0, 0, 0, 255, 255, 255, 0], 54);
  }
  for (let i = off; i < b.length; i++) b[i] = (i * 131) & 0xff;
  return b;
}

const grey = ndarray(
  'uint8',
  [12, 9],
  Array.from({ length: 108 }, (_, i) => (i * 29) % 256),
);
const rgb = ndarray(
  'uint8',
  [8, 10, 3],
  Array.from({ length: 240 }, (_, i) => (i * 7) % 256),
);
const vol = ndarray(
  'int16',
  [3, 5, 4],
  Array.from({ length: 60 }, (_, i) => i * 37 - 900),
);

async function samples(): Promise<Record<string, Uint8Array>> {
  const raw = (a: NdArray) =>
    sharp(Buffer.from(a.data as Uint8Array), { raw: { width: a.shape[1], height: a.shape[0], channels: 3 } });
  const u8 = (b: Buffer) => new Uint8Array(b.buffer, b.byteOffset, b.byteLength);
  return {
    nifti: writeNifti(vol, { spacing: [0.5, 0.7, 2] }),
    'nifti.gz': writeNifti(vol, { gzip: true }),
    dicom: makeDicom({
      rows: 6,
      cols: 5,
      pixels: Int16Array.from({ length: 30 }, (_, i) => i * 11 - 100),
      signed: true,
      pixelSpacing: [0.5, 0.5],
      ipp: [0, 0, 0],
      iop: [1, 0, 0, 0, 1, 0],
    }),
    'png-grey': await writePng(grey),
    'png-rgb': await writePng(rgb),
    jpeg: u8(await raw(rgb).jpeg({ quality: 90 }).toBuffer()),
    tiff: u8(await raw(rgb).tiff().toBuffer()),
    gif: u8(await raw(rgb).gif().toBuffer()),
    'bmp-24': bmp(7, 5, 24),
    'bmp-1': bmp(13, 6, 1, true),
  };
}

describe('image readers on damaged files', async () => {
  const files = await samples();
  for (const [name, bytes] of Object.entries(files)) {
    it(`${name}: the intact sample decodes`, async () => {
      expect(await outcome(bytes)).toBe('ok');
    });

    it(`${name}: every truncation ends in a FormatError or a well-formed array`, async () => {
      let errors = 0;
      await fc.assert(
        fc.asyncProperty(fc.integer({ min: 0, max: bytes.length - 1 }), async (cut) => {
          if ((await outcome(bytes.slice(0, cut))) === 'error') errors++;
        }),
        { numRuns: runs(60), seed: 42 },
      );
      expect(errors).toBeGreaterThan(0);
      // The header alone, and nothing at all, are always errors.
      expect(await outcome(bytes.slice(0, 20))).toBe('error');
      expect(await outcome(new Uint8Array(0))).toBe('error');
    }, 120_000);

    it(`${name}: corrupted bytes end in a FormatError or a well-formed array`, async () => {
      await fc.assert(
        fc.asyncProperty(
          fc.array(fc.tuple(fc.nat({ max: bytes.length - 1 }), fc.integer({ min: 0, max: 255 })), {
            minLength: 1,
            maxLength: 8,
          }),
          async (edits) => {
            const b = bytes.slice();
            for (const [i, v] of edits) b[i] = v;
            await outcome(b);
          },
        ),
        { numRuns: runs(80), seed: 7 },
      );
    }, 120_000);
  }

  it('random bytes behind each signature', async () => {
    const heads = Object.values(files).map((b) => b.slice(0, Math.min(b.length, 140)));
    await fc.assert(
      fc.asyncProperty(
        fc.nat({ max: heads.length - 1 }),
        fc.uint8Array({ maxLength: 400 }),
        async (k, tail) => {
          const h = heads[k];
          const b = new Uint8Array(h.length + tail.length);
          b.set(h);
          b.set(tail, h.length);
          await outcome(b);
        },
      ),
      { numRuns: runs(100), seed: 3 },
    );
  }, 120_000);
});
