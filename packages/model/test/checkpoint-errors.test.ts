/**
 * Broken, hostile and unsupported .pth files, and bad writer input.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import fc from 'fast-check';
import { beforeAll, describe, expect, test } from 'vitest';
import { FormatError, InputError, MedsamError, UnsafeCheckpointError } from '@mcp-medsam/core';
import { readZip, writeZip } from '@mcp-medsam/io';
import type { NdArray } from '@mcp-medsam/io';
import { readPth, writePth, readCheckpoint } from '../src/checkpoint/index.js';
import { sharedPath } from '../../../test-utils/shared.js';

const FIX = path.join(path.dirname(fileURLToPath(import.meta.url)), 'fixtures');
const VIEWS = new Uint8Array(readFileSync(path.join(FIX, 'torch-views.pth')));

/** Rebuild a zip with `edit` applied to each entry (null drops it) and `extra` entries appended. */
function rezip(
  bytes: Uint8Array,
  edit: (name: string, data: Uint8Array) => Uint8Array | null,
  extra: { name: string; data: Uint8Array }[] = [],
): Uint8Array {
  const out: { name: string; data: Uint8Array }[] = [];
  for (const [name, e] of readZip(bytes)) {
    const d = edit(name, e.read().slice());
    if (d) out.push({ name, data: d });
  }
  return writeZip([...out, ...extra]);
}

function withPickle(pkl: Uint8Array, base = VIEWS): Uint8Array {
  return rezip(base, (name, d) => (name.endsWith('/data.pkl') ? pkl : d));
}

function errorOf(f: () => unknown): unknown {
  try {
    f();
  } catch (e) {
    return e;
  }
  throw new Error('expected an error');
}

function b(...parts: (string | number | number[])[]): Uint8Array {
  const out: number[] = [];
  for (const p of parts) {
    if (typeof p === 'number') out.push(p);
    else if (Array.isArray(p)) out.push(...p);
    else for (let i = 0; i < p.length; i++) out.push(p.charCodeAt(i));
  }
  return new Uint8Array(out);
}

describe('truncated and corrupted checkpoint-a.pth', () => {
  let bytes: Uint8Array;
  beforeAll(() => {
    bytes = new Uint8Array(readFileSync(sharedPath('fixtures/model/checkpoint-a.pth')));
  });

  test('truncated at several points -> FormatError naming the file', () => {
    const cuts = [
      0,
      3,
      4,
      30,
      100,
      20_000,
      1_000_000,
      Math.floor(bytes.length / 2),
      bytes.length - 100,
      bytes.length - 22,
      bytes.length - 1,
    ];
    for (const cut of cuts) {
      const e = errorOf(() => readPth(bytes.subarray(0, cut), { file: 'checkpoint-a.pth' }));
      expect(e, `cut ${cut}`).toBeInstanceOf(FormatError);
      expect((e as FormatError).code).toBe('E_FORMAT');
      if (cut > 0) expect((e as FormatError).file).toBe('checkpoint-a.pth');
    }
  });

  test('its data.pkl truncated or corrupted (re-zipped with a valid CRC) -> FormatError', () => {
    const entries = readZip(bytes);
    const pkl = entries.get('checkpoint-a/data.pkl')!.read();
    const variants: Uint8Array[] = [
      pkl.subarray(0, 1000),
      pkl.subarray(0, pkl.length - 1),
      (() => {
        const c = pkl.slice();
        c[2] = 0xff; // an unknown opcode instead of EMPTY_DICT
        return c;
      })(),
    ];
    // re-zipping all 511 entries is slow-ish; rebuild only the pickle on the small torch file instead
    for (const v of variants) {
      const e = errorOf(() => readPth(withPickle(v), { file: 'x.pth' }));
      expect(e).toBeInstanceOf(FormatError);
      expect((e as Error).message).toMatch(/pickle/);
    }
  });

  test('a flipped byte inside a stored entry is caught by the CRC', () => {
    const stored = writePth(readPth(VIEWS).stateDict);
    const entries = readZip(stored);
    const e0 = entries.get('archive/data/0')!;
    const c = stored.slice();
    c[e0.dataOffset + 1] ^= 0x40;
    expect(() => readPth(c)).toThrow(FormatError);
  });
});

describe('hostile pickles', () => {
  test("GLOBAL 'os system' in data.pkl -> UnsafeCheckpointError naming os.system", () => {
    const pkl = b(0x80, 2, 'cos\nsystem\nq\x00X', [2, 0, 0, 0], 'id', 0x85, 'R.');
    const e = errorOf(() => readPth(withPickle(pkl), { file: 'evil.pth' }));
    expect(e).toBeInstanceOf(UnsafeCheckpointError);
    expect((e as UnsafeCheckpointError).code).toBe('E_UNSAFE');
    expect((e as Error).message).toContain('os.system');
    expect((e as Error).message).toContain('evil.pth');
    expect((e as Error).message).toContain('torch-views/data.pkl');
    expect((e as UnsafeCheckpointError).file).toBe('evil.pth');
  });

  test("STACK_GLOBAL 'os' 'system' -> UnsafeCheckpointError", () => {
    const pkl = b(0x80, 4, 0x8c, 2, 'os', 0x8c, 6, 'system', 0x93, 0x8c, 2, 'id', 0x85, 'R.');
    const e = errorOf(() => readPth(withPickle(pkl)));
    expect(e).toBeInstanceOf(UnsafeCheckpointError);
    expect((e as Error).message).toContain('os.system');
  });

  test('a foreign global hidden deep inside the state dict is still refused', () => {
    const good = readZip(VIEWS).get('torch-views/data.pkl')!.read();
    const text = Buffer.from(good)
      .toString('latin1')
      .replace('collections\nOrderedDict\n', 'subprocess\nPopen\n');
    const e = errorOf(() => readPth(withPickle(Uint8Array.from(Buffer.from(text, 'latin1')))));
    expect(e).toBeInstanceOf(UnsafeCheckpointError);
    expect((e as Error).message).toContain('subprocess.Popen');
  });
});

describe('structural problems -> FormatError', () => {
  test('a storage entry shorter than the tensor needs', () => {
    const bad = rezip(VIEWS, (name, d) => (name === 'torch-views/data/0' ? d.subarray(0, 40) : d));
    const e = errorOf(() => readPth(bad, { file: 'short.pth' }));
    expect(e).toBeInstanceOf(FormatError);
    expect((e as Error).message).toMatch(/torch-views\/data\/0 has 40 bytes but .* need 96/);
  });

  test('a missing storage entry', () => {
    const bad = rezip(VIEWS, (name, d) => (name === 'torch-views/data/3' ? null : d));
    expect(() => readPth(bad)).toThrow(/missing storage entry torch-views\/data\/3/);
  });

  test('a view reaching past its storage (size/stride inconsistent with numel)', () => {
    const sd = new Map<string, NdArray>([['x', { dtype: 'float32', shape: [4], data: new Float32Array(4) }]]);
    const good = readZip(writePth(sd)).get('archive/data.pkl')!.read();
    // the shape tuple (4,) is "K\x04\x85"; make it (5,)
    const text = Buffer.from(good).toString('latin1');
    const i = text.indexOf('K\x04\x85');
    expect(i).toBeGreaterThan(0);
    const c = good.slice();
    c[i + 1] = 5;
    const bad = rezip(writePth(sd), (name, d) => (name === 'archive/data.pkl' ? c : d));
    expect(() => readPth(bad)).toThrow(/reaches element 4 of a storage of 4/);
  });

  test('no data.pkl, no state dict, unknown byteorder, TorchScript archive', () => {
    const enc = new TextEncoder();
    expect(() => readPth(writeZip([{ name: 'a/b.txt', data: enc.encode('x') }]))).toThrow(
      /no <archive>\/data.pkl/,
    );
    // torch.save([1, 2]) -> a list, not a dict
    expect(() => readPth(withPickle(b(0x80, 2, ']q', 0, '(K', 1, 'K', 2, 'e.')))).toThrow(
      /no state dict found.*list/,
    );
    // a dict without any of the known keys
    expect(() => readPth(withPickle(b(0x80, 2, '}X', [1, 0, 0, 0], 'aK', 1, 's.')))).toThrow(
      /no state dict found.*"a"/,
    );
    const bo = rezip(VIEWS, (_n, d) => d, [{ name: 'torch-views/byteorder', data: enc.encode('middle') }]);
    expect(() => readPth(bo)).toThrow(/byteorder/);
    const ts = rezip(VIEWS, (_n, d) => d, [{ name: 'torch-views/constants.pkl', data: b(0x80, 2, ').') }]);
    expect(() => readPth(ts)).toThrow(/TorchScript/);
  });

  test('a legacy (pre-1.6) checkpoint gets a FormatError that says how to re-save it', () => {
    // what torch.save(..., _use_new_zipfile_serialization=False) starts with: the magic number as LONG1
    const legacy = b(
      0x80,
      2,
      0x8a,
      0x0a,
      [0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19],
      '.',
      0x80,
      2,
      'M',
      [0xe9, 3],
      '.',
    );
    for (const f of [
      () => readPth(legacy, { file: 'old.pth' }),
      () => readCheckpoint(legacy, { file: 'old.pth' }),
    ]) {
      const e = errorOf(f);
      expect(e).toBeInstanceOf(FormatError);
      expect((e as Error).message).toMatch(/legacy/);
      expect((e as Error).message).toMatch(/torch\.save\(torch\.load/);
    }
  });

  test('not a checkpoint at all', () => {
    expect(() => readPth(b('hello world'))).toThrow(/not a PyTorch checkpoint/);
    expect(() => readCheckpoint(b('hello world'))).toThrow(FormatError); // taken as safetensors
    expect(() => readCheckpoint(new Uint8Array(0))).toThrow(FormatError);
  });

  test('random corruption of data.pkl (re-zipped) gives a result or a MedsamError, nothing else', () => {
    const sd = readPth(VIEWS).stateDict;
    const base = writePth(sd, { epoch: 1 });
    const pkl = readZip(base).get('archive/data.pkl')!.read().slice();
    const others = [...readZip(base)]
      .filter(([n]) => n !== 'archive/data.pkl')
      .map(([name, e]) => ({ name, data: e.read().slice() }));
    fc.assert(
      fc.property(
        fc.array(fc.tuple(fc.nat({ max: pkl.length - 1 }), fc.integer({ min: 0, max: 255 })), {
          minLength: 1,
          maxLength: 3,
        }),
        fc.option(fc.nat({ max: pkl.length }), { nil: undefined }),
        (edits, cut) => {
          const c = pkl.slice(0, cut ?? pkl.length);
          for (const [i, v] of edits) if (i < c.length) c[i] = v;
          const zip = writeZip([{ name: 'archive/data.pkl', data: c }, ...others]);
          try {
            readPth(zip);
          } catch (e) {
            if (!(e instanceof MedsamError)) throw e;
            expect(['E_FORMAT', 'E_UNSAFE']).toContain(e.code);
          }
        },
      ),
      { numRuns: 400 },
    );
  });

  test('random truncation of a whole small checkpoint -> FormatError', () => {
    const file = writePth(readPth(VIEWS).stateDict);
    fc.assert(
      fc.property(fc.nat({ max: file.length - 1 }), (cut) => {
        expect(() => readPth(file.subarray(0, cut))).toThrow(FormatError);
      }),
      { numRuns: 300 },
    );
  });
});

describe('writePth input errors -> InputError', () => {
  const t = (dtype: NdArray['dtype'], data: NdArray['data'], shape = [data.length]): Map<string, NdArray> =>
    new Map([['x', { dtype, shape, data }]]);
  test('cases', () => {
    expect(() => writePth(t('uint16', new Uint16Array(2)))).toThrow(/no storage type for dtype uint16/);
    expect(() => writePth(t('uint64', new BigUint64Array(2)))).toThrow(InputError);
    expect(() => writePth(t('float32', new Float32Array(3), [2]))).toThrow(InputError);
    expect(() => writePth(t('float32', new Float32Array(2)), { model: 1 })).toThrow(/'model' key/);
    expect(() => writePth(t('float32', new Float32Array(2)), { f: () => 1 })).toThrow(InputError);
    expect(() => writePth(t('float32', new Float32Array(2)), {}, { archiveName: 'a/b' })).toThrow(InputError);
  });
});
