/**
 * The restricted unpickler: CPython-written streams of protocols 0 and 2-5 (test/fixtures/pickle-p*.pkl,
 * `pickle.dumps(obj, protocol=p)` of the object rebuilt in `expected()` below), the global allow-list,
 * malformed streams and the pickle writer.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import fc from 'fast-check';
import { describe, expect, test } from 'vitest';
import { FormatError, MedsamError, UnsafeCheckpointError } from '@mcp-medsam/core';
import {
  unpickle,
  PickleWriter,
  PyDict,
  PyTuple,
  PyFloat,
  ALLOWED_GLOBALS,
  isTensorRef,
} from '../src/checkpoint/index.js';

const FIX = path.join(path.dirname(fileURLToPath(import.meta.url)), 'fixtures');
const enc = new TextEncoder();

/** Bytes from a mix of strings (latin-1) and byte values. */
function b(...parts: (string | number | number[])[]): Uint8Array {
  const out: number[] = [];
  for (const p of parts) {
    if (typeof p === 'number') out.push(p);
    else if (Array.isArray(p)) out.push(...p);
    else for (let i = 0; i < p.length; i++) out.push(p.charCodeAt(i));
  }
  return new Uint8Array(out);
}

/** Plain JS view of unpickled values, for comparisons (tuples tagged, dicts as entry lists). */
function plain(v: unknown): unknown {
  if (v instanceof PyTuple) return { tuple: [...v].map(plain) };
  if (Array.isArray(v)) return v.map(plain);
  if (v instanceof PyDict)
    return { [v.ordered ? 'odict' : 'dict']: [...v].map(([k, x]) => [plain(k), plain(x)]) };
  if (v instanceof Set) return { set: [...v].map(plain) };
  if (v instanceof Uint8Array) return { bytes: [...v] };
  return v;
}

function expected(): unknown {
  const t = (...xs: unknown[]) => ({ tuple: xs });
  return {
    dict: [
      [
        'ints',
        [
          0,
          1,
          -1,
          255,
          256,
          65535,
          65536,
          -(2 ** 31),
          2 ** 31 - 1,
          2 ** 31,
          2 ** 53 - 1,
          2n ** 53n,
          -(2n ** 63n),
          2n ** 70n,
        ],
      ],
      ['floats', [0.5, -0, 1e300, Infinity]],
      ['consts', [null, true, false]],
      ['str', 'héllo ✓ \u{1F600}'],
      ['bytes', { bytes: [0, 1, 255] }],
      ['tuples', [t(), t(1), t(1, 2), t(1, 2, 3), t(1, 2, 3, 4)]],
      ['nested', [[[]], { dict: [] }]],
      [
        'intkeys',
        {
          dict: [
            [1, 'one'],
            [-5, 'minus five'],
          ],
        },
      ],
      [
        'shared',
        [
          [7, 8],
          [7, 8],
        ],
      ],
      ['set', { set: [3] }],
      ['frozenset', { set: [4] }],
      [
        'od',
        {
          odict: [
            ['z', 1],
            ['a', 2],
          ],
        },
      ],
      ['bytearray', { bytes: [97, 98] }],
      ['long_list', Array.from({ length: 1001 }, (_, i) => i)],
    ],
  };
}

describe('CPython pickles', () => {
  for (const p of [0, 2, 3, 4, 5]) {
    test(`protocol ${p}`, () => {
      const bytes = new Uint8Array(readFileSync(path.join(FIX, `pickle-p${p}.pkl`)));
      const v = unpickle(bytes);
      expect(plain(v)).toEqual(expected());
      // memoised objects keep their identity
      const shared = (v as PyDict).get('shared') as unknown[];
      expect(shared[0]).toBe(shared[1]);
    });
  }

  test('every truncation of a stream is a FormatError', () => {
    const bytes = new Uint8Array(readFileSync(path.join(FIX, 'pickle-p2.pkl')));
    for (let cut = 0; cut < bytes.length; cut++) {
      expect(() => unpickle(bytes.subarray(0, cut)), `cut ${cut}`).toThrow(FormatError);
    }
  });

  test('random corruption: a value, a FormatError or an UnsafeCheckpointError, nothing else', () => {
    const srcs = [2, 4].map((p) => new Uint8Array(readFileSync(path.join(FIX, `pickle-p${p}.pkl`))));
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 1 }),
        fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 4 }),
        (which, edits) => {
          const c = srcs[which].slice();
          for (const [i, v] of edits) c[i % c.length] = v;
          try {
            unpickle(c);
          } catch (e) {
            if (!(e instanceof FormatError || e instanceof UnsafeCheckpointError)) throw e;
          }
        },
      ),
      { numRuns: 1000 },
    );
  });

  test('random bytes never escape as anything but a MedsamError', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 64 }), (bytes) => {
        try {
          unpickle(Uint8Array.from([0x80, 2, ...bytes]));
        } catch (e) {
          if (!(e instanceof MedsamError)) throw e;
        }
      }),
      { numRuns: 2000 },
    );
  });
});

describe('allow-list', () => {
  const unsafe = (bytes: Uint8Array, name: string) => {
    let err: unknown;
    try {
      unpickle(bytes, { file: 'evil.pkl' });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(UnsafeCheckpointError);
    expect((err as UnsafeCheckpointError).code).toBe('E_UNSAFE');
    expect((err as Error).message).toContain(name);
    expect((err as UnsafeCheckpointError).file).toBe('evil.pkl');
  };

  test('GLOBAL os.system (protocol 0 and 2)', () => {
    unsafe(b("cos\nsystem\n(S'echo pwned'\ntR."), 'os.system');
    unsafe(b(0x80, 2, 'cos\nsystem\nq\x00X', [4, 0, 0, 0], 'echo', 0x85, 'R.'), 'os.system');
  });

  test('STACK_GLOBAL os system (protocol 4)', () => {
    unsafe(b(0x80, 4, 0x8c, 2, 'os', 0x8c, 6, 'system', 0x93, 0x8c, 2, 'ls', 0x85, 'R.'), 'os.system');
  });

  test('other foreign globals and INST / EXT', () => {
    unsafe(b('cbuiltins\neval\n.'), 'builtins.eval');
    unsafe(b('c__builtin__\ngetattr\n.'), '__builtin__.getattr');
    unsafe(b('ctorch\nload\n.'), 'torch.load');
    unsafe(b('cnumpy.core.multiarray\n_reconstruct\n.'), 'numpy.core.multiarray._reconstruct');
    unsafe(b('(S"ls"\nios\nsystem\n.'), 'os.system');
    unsafe(b(0x80, 2, 0x82, 1, '.'), 'extension code 1');
  });

  test('calling an allowed class that is not callable (a storage class) is refused', () => {
    unsafe(b(0x80, 2, 'ctorch\nFloatStorage\n)R.'), 'torch.FloatStorage');
  });

  test('the allow-list is small and torch-only', () => {
    expect(ALLOWED_GLOBALS).toContain('collections.OrderedDict');
    expect(ALLOWED_GLOBALS).toContain('torch._utils._rebuild_tensor_v2');
    expect(ALLOWED_GLOBALS).toContain('torch._utils._rebuild_parameter');
    expect(ALLOWED_GLOBALS).toContain('torch.BFloat16Storage');
    for (const g of ALLOWED_GLOBALS) expect(g).toMatch(/^(collections|builtins|_codecs|torch)\./);
    expect(ALLOWED_GLOBALS).not.toContain('builtins.eval');
    expect(ALLOWED_GLOBALS).not.toContain('builtins.getattr');
  });
});

describe('torch objects', () => {
  test('_rebuild_tensor_v2 with a persistent id; BUILD on an OrderedDict keeps _metadata', () => {
    const w = new PickleWriter();
    w.global('collections', 'OrderedDict');
    w.op(0x29);
    w.op(0x52);
    w.mark();
    w.string('x');
    w.global('torch._utils', '_rebuild_parameter');
    w.mark();
    w.global('torch._utils', '_rebuild_tensor_v2');
    w.mark();
    w.mark();
    w.string('storage');
    w.global('torch', 'HalfStorage');
    w.string('0');
    w.string('cpu');
    w.int(6);
    w.op(0x74);
    w.op(0x51); // BINPERSID
    w.int(1);
    w.intTuple([2, 2]);
    w.intTuple([1, 2]);
    w.bool(true);
    w.global('collections', 'OrderedDict');
    w.op(0x29);
    w.op(0x52);
    w.op(0x74);
    w.op(0x52); // tensor
    w.bool(true);
    w.global('collections', 'OrderedDict');
    w.op(0x29);
    w.op(0x52);
    w.op(0x74);
    w.op(0x52); // parameter
    w.op(0x75); // SETITEMS
    w.value({ _metadata: { '': { version: 1 } } });
    w.op(0x62); // BUILD
    const pids: unknown[] = [];
    const v = unpickle(w.finish(), {
      persistentLoad: (pid) => {
        pids.push(pid);
        return { my: 'storage' };
      },
    }) as PyDict;
    expect(v).toBeInstanceOf(PyDict);
    expect(v.ordered).toBe(true);
    expect(v.attributes._metadata).toBeInstanceOf(PyDict);
    const t = v.get('x');
    expect(isTensorRef(t)).toBe(true);
    expect(t).toMatchObject({
      storage: { my: 'storage' },
      storageOffset: 1,
      shape: [2, 2],
      stride: [1, 2],
      requiresGrad: true,
      isParameter: true,
    });
    expect(pids).toHaveLength(1);
    const [tag, st, key, loc, n] = pids[0] as unknown[];
    expect([tag, key, loc, n]).toEqual(['storage', '0', 'cpu', 6]);
    expect(st).toMatchObject({
      kind: 'storage-type',
      name: 'torch.HalfStorage',
      dtype: 'float16',
      itemSize: 2,
    });
  });

  test('a persistent id without a loader is a FormatError', () => {
    expect(() => unpickle(b(0x80, 2, 'K', 1, 'Q.'))).toThrow(FormatError);
  });
});

describe('malformed streams -> FormatError', () => {
  const bad = (bytes: Uint8Array, re: RegExp) => {
    let err: unknown;
    try {
      unpickle(bytes, { file: 'f.pkl' });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(FormatError);
    expect((err as Error).message).toMatch(re);
    expect((err as FormatError).file).toBe('f.pkl');
  };
  test('cases', () => {
    bad(b(0x80, 2, 0xff), /unknown opcode 0xff/);
    bad(b(0x80, 6, '.'), /protocol 6/);
    bad(b(0x80, 2), /truncated/);
    bad(b(0x80, 2, 'X', [200, 0, 0, 0], 'abc'), /truncated/);
    bad(b(0x80, 2, 0x8d, [255, 255, 255, 255, 255, 255, 255, 255]), /truncated/);
    bad(b(0x80, 2, '.'), /STOP with 0 values/);
    bad(b(0x80, 2, 'NN.'), /STOP with 2 values/);
    bad(b(0x80, 2, 's.'), /underflow/);
    bad(b(0x80, 2, 't.'), /MARK/);
    bad(b(0x80, 2, '(N.'), /STOP inside a MARK/);
    bad(b(0x80, 2, 'h', 5, '.'), /memo key 5/);
    bad(b(0x80, 2, 'X', [2, 0, 0, 0], [0xc3, 0x28], '.'), /UTF-8/);
    bad(b(0x80, 2, ']K', 1, 'K', 2, 's.'), /not a dict/);
    bad(b(0x80, 2, '}N', 'a.'), /not a list/);
    bad(b(0x80, 2, 'N}b.'), /BUILD/);
    bad(b(0x80, 2, 'ccollections\nOrderedDict\nK', 1, 'R.'), /not a tuple/);
    bad(b(0x80, 2, 0x97, '.'), /out-of-band/);
    bad(b(0x80, 2, 'ctorch._utils\n_rebuild_tensor_v2\n(NK', 0, ')', '.'), /(truncated|MARK)/);
    bad(
      b(0x80, 2, 'ctorch._utils\n_rebuild_tensor_v2\n(NX', [1, 0, 0, 0], 'a))', 0x89, 'Nt', 'R.'),
      /storage_offset/,
    );
  });

  test('resource bounds: MARK depth, memo size, huge integers', () => {
    bad(b(0x80, 2, '('.repeat(20_000)), /deeper than 10000/);
    const puts: number[] = [0x80, 2, 0x4e];
    for (let i = 0; i < 20; i++) puts.push(0x71, i);
    puts.push(0x2e);
    expect(() => unpickle(Uint8Array.from(puts), { maxMemo: 10 })).toThrow(/more than 10 memo/);
    bad(b(0x80, 2, 0x8b, [0, 0, 1, 0], new Array(65536).fill(1), '.'), /integer of 65536 bytes/);
  });
});

describe('PickleWriter', () => {
  test('values round trip through unpickle', () => {
    const w = new PickleWriter();
    w.value({
      a: [1, -1, 300, 70000, -(2 ** 31), 2 ** 40, -(2 ** 53) + 1, 2n ** 100n, -(2n ** 100n)],
      f: [0.5, -0, new PyFloat(2), NaN],
      s: ['', 'x'.repeat(300), 'ü'],
      n: null,
      t: true,
      m: new Map([['k', { deep: [[[]]] }]]),
    });
    const v = plain(unpickle(w.finish())) as { dict: [string, unknown][] };
    expect(v.dict).toEqual([
      ['a', [1, -1, 300, 70000, -(2 ** 31), 2 ** 40, -(2 ** 53) + 1, 2n ** 100n, -(2n ** 100n)]],
      ['f', [0.5, -0, 2, NaN]],
      ['s', ['', 'x'.repeat(300), 'ü']],
      ['n', null],
      ['t', true],
      ['m', { dict: [['k', { dict: [['deep', [[[]]]]] }]] }],
    ]);
  });

  test('globals and strings are memoised past 256 entries', () => {
    const w = new PickleWriter();
    w.op(0x5d);
    w.mark();
    for (let i = 0; i < 600; i++) {
      w.string(`s${i % 300}`, true);
      w.global('collections', 'OrderedDict');
    }
    w.op(0x65);
    const v = unpickle(w.finish()) as unknown[];
    expect(v).toHaveLength(1200);
    expect(v[1198]).toBe('s299');
    expect(v[1]).toBe(v[1199]);
    void enc;
  });
});
