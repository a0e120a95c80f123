/**
 * Property-based robustness: truncated, corrupted or random input must end in a FormatError that
 * names the file (or, for corruption a format cannot detect, in a well-formed result), never in
 * another kind of error and never in a hang.
 */
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { FormatError } from '@mcp-medsam/core';
import {
  type NdArray,
  numel,
  readNpy,
  readNpz,
  readZip,
  writeNpy,
  writeNpz,
  writeZip,
} from '../src/index.js';
import { sampleArray } from './helpers.js';

const FILE = 'fuzz/input.bin';
/** `IO_FUZZ_SCALE=50 pnpm vitest run packages/io/test/fuzz.test.ts` runs 50 times as many cases. */
const SCALE = Math.max(1, Number(process.env.IO_FUZZ_SCALE ?? 1) || 1);
const runs = (n: number) => n * SCALE;
const LIMITS = { maxEntryBytes: 1 << 20, maxTotalBytes: 4 << 20 }; // a corrupted size may not allocate gigabytes

type Outcome = { ok: true } | { ok: false; error: FormatError };

/** Run `fn`; a FormatError naming FILE is a valid outcome, anything else thrown fails the test. */
function outcome(fn: () => void): Outcome {
  try {
    fn();
    return { ok: true };
  } catch (e) {
    if (e instanceof FormatError && e.file === FILE && e.message.startsWith(`${FILE}: `))
      return { ok: false, error: e };
    throw e;
  }
}

function checkArray(a: NdArray) {
  expect(a.data.length).toBe(numel(a.shape));
}

function readAllNpz(bytes: Uint8Array) {
  const arrays = readNpz(bytes, { file: FILE, limits: LIMITS });
  Object.values(arrays).forEach(checkArray);
}

function readAllZip(bytes: Uint8Array) {
  for (const e of readZip(bytes, { file: FILE, ...LIMITS }).values()) expect(e.read().length).toBe(e.size);
}

const npy = writeNpy(sampleArray('float32', [3, 5], 4));
const npyI64 = writeNpy(sampleArray('int64', [4, 2, 2], 5));
const arrays = {
  a: sampleArray('float32', [6, 7], 1),
  b: sampleArray('int64', [5], 2),
  c: sampleArray('bool', [3, 3], 3),
  d: sampleArray('float16', [], 4),
};
const npzStored = writeNpz(arrays);
const npzDeflate = writeNpz(arrays, { compress: true });
const zip64 = writeZip(
  [
    { name: 'x', data: new Uint8Array(3000).map((_, i) => (i * 7) % 13), compress: true },
    { name: 'y', data: new Uint8Array(700).map((_, i) => i & 0xff), align: 64 },
  ],
  { forceZip64: true },
);

/** Apply 1..n single-byte changes at random positions. */
const corruption = (len: number, max = 6) =>
  fc.array(fc.tuple(fc.nat({ max: len - 1 }), fc.integer({ min: 1, max: 255 })), {
    minLength: 1,
    maxLength: max,
  });
const corrupt = (bytes: Uint8Array, edits: [number, number][]) => {
  const out = bytes.slice();
  for (const [pos, x] of edits) out[pos] ^= x;
  return out;
};

describe('npy fuzzing', () => {
  it('every truncation is a FormatError naming the file', () => {
    for (const src of [npy, npyI64]) {
      for (let len = 0; len < src.length; len++) {
        const r = outcome(() => readNpy(src.subarray(0, len), { file: FILE }));
        expect(r.ok, `length ${len}`).toBe(false);
      }
    }
  });

  it('random corruption gives a FormatError or a consistent array', () => {
    for (const src of [npy, npyI64]) {
      fc.assert(
        fc.property(corruption(src.length), (edits) => {
          let arr: NdArray | undefined;
          const r = outcome(() => {
            arr = readNpy(corrupt(src, edits), { file: FILE });
          });
          if (r.ok) checkArray(arr!);
        }),
        { numRuns: runs(400) },
      );
    }
  });

  it('corrupting the header (not the data) is mostly detected', () => {
    // Header bytes 0..63 of a v1 file; only padding spaces and digits may survive a change.
    let failures = 0;
    fc.assert(
      fc.property(corruption(64, 1), (edits) => {
        if (!outcome(() => readNpy(corrupt(npy, edits), { file: FILE })).ok) failures++;
      }),
      { numRuns: runs(300), seed: 42 },
    );
    expect(failures).toBeGreaterThan(runs(200));
  });

  it('random header text is a FormatError or a consistent array', () => {
    const alphabet = fc.constantFrom(
      ...`{}()[],:'" <>|=TrueFalseNonedescrfortran_ordershapei4f8u1b1O0123456789L-\n`.split(''),
    );
    fc.assert(
      fc.property(
        fc.array(alphabet, { maxLength: 120 }),
        fc.uint8Array({ maxLength: 64 }),
        (chars, payload) => {
          const header = chars.join('');
          const bytes = new Uint8Array(10 + header.length + payload.length);
          bytes.set([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, 1, 0, header.length & 0xff, header.length >> 8]);
          bytes.set(new TextEncoder().encode(header), 10);
          bytes.set(payload, 10 + header.length);
          let arr: NdArray | undefined;
          if (outcome(() => (arr = readNpy(bytes, { file: FILE }))).ok) checkArray(arr!);
        },
      ),
      { numRuns: runs(1000) },
    );
  });

  it('random bytes are a FormatError', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 300 }), (bytes) => {
        expect(outcome(() => readNpy(bytes, { file: FILE })).ok).toBe(false);
      }),
      { numRuns: runs(300) },
    );
  });
});

describe('zip and npz fuzzing', () => {
  it('every truncation of npz and ZIP64 archives is a FormatError naming the file', () => {
    for (const src of [npzStored, npzDeflate]) {
      fc.assert(
        fc.property(fc.nat({ max: src.length - 1 }), (len) => {
          expect(outcome(() => readAllNpz(src.subarray(0, len))).ok).toBe(false);
        }),
        { numRuns: runs(300) },
      );
    }
    for (let len = 0; len < zip64.length; len += 7) {
      expect(outcome(() => readAllZip(zip64.subarray(0, len))).ok).toBe(false);
    }
  });

  it('random corruption of npz and zip archives gives a FormatError or consistent arrays', () => {
    for (const src of [npzStored, npzDeflate]) {
      fc.assert(
        fc.property(corruption(src.length), (edits) => {
          outcome(() => readAllNpz(corrupt(src, edits)));
        }),
        { numRuns: runs(400) },
      );
    }
    fc.assert(
      fc.property(corruption(zip64.length), (edits) => {
        outcome(() => readAllZip(corrupt(zip64, edits)));
      }),
      { numRuns: runs(400) },
    );
  });

  it('any change to the data of a stored entry is caught by the CRC', () => {
    const entries = [...readZip(npzStored).values()];
    fc.assert(
      fc.property(fc.constantFrom(...entries), fc.nat(), fc.integer({ min: 1, max: 255 }), (entry, k, x) => {
        const pos = entry.dataOffset + (k % entry.size);
        const r = outcome(() => readAllNpz(corrupt(npzStored, [[pos, x]])));
        expect(r.ok).toBe(false);
        if (!r.ok) expect(r.error.message).toContain(`"${entry.name}": CRC mismatch`);
      }),
      { numRuns: runs(300) },
    );
  });

  it('corrupting inside a deflate stream is caught', () => {
    const entries = [...readZip(npzDeflate).values()];
    let failures = 0;
    let total = 0;
    fc.assert(
      fc.property(fc.constantFrom(...entries), fc.nat(), fc.integer({ min: 1, max: 255 }), (entry, k, x) => {
        // all but the last byte, whose unused padding bits may change without effect
        const pos = entry.dataOffset + (k % (entry.compressedSize - 1));
        total++;
        if (!outcome(() => readAllNpz(corrupt(npzDeflate, [[pos, x]]))).ok) failures++;
      }),
      { numRuns: runs(300), seed: 7 },
    );
    // A change to an unused Huffman code length could in principle leave the output intact.
    expect(failures).toBeGreaterThanOrEqual(Math.floor(total * 0.98));
  });

  it('random bytes are a FormatError', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 500 }), (bytes) => {
        expect(outcome(() => readAllNpz(bytes)).ok).toBe(false);
      }),
      { numRuns: runs(300) },
    );
  });
});
