import { describe, expect, it } from 'vitest';
import { FormatError, InputError } from '@mcp-medsam/core';
import { DTYPES, type NdArray, ndarray, readNpy, readNpyHeader, writeNpy } from '../src/index.js';
import { b64, expectFormatError, sampleArray } from './helpers.js';

// Files below were written by NumPy 2.4 (`np.lib.format.write_array(buf, a, version=...)`) and
// base64-encoded; the expected values are the arrays they were made from.
const NUMPY = {
  // np.asfortranarray(np.arange(6, dtype='>i4').reshape(2, 3) * 1000 - 2500): NumPy writes it '<i4',
  // fortran_order True; C-order values [-2500, -1500, -500, 500, 1500, 2500]
  fortranI4:
    'k05VTVBZAQB2AHsnZGVzY3InOiAnPGk0JywgJ2ZvcnRyYW5fb3JkZXInOiBUcnVlLCAnc2hhcGUnOiAoMiwgMyksIH0gICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgIAo89v//9AEAACT6///cBQAADP7//8QJAAA=',
  // np.array([1.0, -2.5, 65504, 6e-8, np.inf, 0.333], dtype='<f2'); bits [15360, 49408, 31743, 1, 31744, 13652]
  f2: 'k05VTVBZAQB2AHsnZGVzY3InOiAnPGYyJywgJ2ZvcnRyYW5fb3JkZXInOiBGYWxzZSwgJ3NoYXBlJzogKDYsKSwgfSAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgIAoAPADB/3sBAAB8VDU=',
  // np.array([[True, False, True], [False, False, True]])
  b1: 'k05VTVBZAQB2AHsnZGVzY3InOiAnfGIxJywgJ2ZvcnRyYW5fb3JkZXInOiBGYWxzZSwgJ3NoYXBlJzogKDIsIDMpLCB9ICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgIAoBAAEAAAE=',
  // np.array([1.5, -2.25], dtype='>f8'), version (2, 0)
  beF8v2:
    'k05VTVBZAgB0AAAAeydkZXNjcic6ICc+ZjgnLCAnZm9ydHJhbl9vcmRlcic6IEZhbHNlLCAnc2hhcGUnOiAoMiwpLCB9ICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgIAo/+AAAAAAAAMACAAAAAAAA',
  // np.array([2**63 + 5, 7], dtype='>u8'), version (3, 0)
  beU8v3:
    'k05VTVBZAwB0AAAAeydkZXNjcic6ICc+dTgnLCAnZm9ydHJhbl9vcmRlcic6IEZhbHNlLCAnc2hhcGUnOiAoMiwpLCB9ICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgIAqAAAAAAAAABQAAAAAAAAAH',
  // np.asfortranarray(np.arange(24, dtype='<i2').reshape(2, 3, 4))
  fortranI2x3d:
    'k05VTVBZAQB2AHsnZGVzY3InOiAnPGkyJywgJ2ZvcnRyYW5fb3JkZXInOiBUcnVlLCAnc2hhcGUnOiAoMiwgMywgNCksIH0gICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgIAoAAAwABAAQAAgAFAABAA0ABQARAAkAFQACAA4ABgASAAoAFgADAA8ABwATAAsAFwA=',
  // np.array(np.float32(3.25)) (0-d)
  scalarF4:
    'k05VTVBZAQB2AHsnZGVzY3InOiAnPGY0JywgJ2ZvcnRyYW5fb3JkZXInOiBGYWxzZSwgJ3NoYXBlJzogKCksIH0gICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgIAoAAFBA',
  // np.array([1, 'a'], dtype=object) with allow_pickle=True
  object:
    'k05VTVBZAQB2AHsnZGVzY3InOiAnfE8nLCAnZm9ydHJhbl9vcmRlcic6IEZhbHNlLCAnc2hhcGUnOiAoMiwpLCB9ICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgIAqABJWQAAAAAAAAAIwWbnVtcHkuX2NvcmUubXVsdGlhcnJheZSMDF9yZWNvbnN0cnVjdJSTlIwFbnVtcHmUjAduZGFycmF5lJOUSwCFlEMBYpSHlFKUKEsBSwKFlGgDjAVkdHlwZZSTlIwCTziUiYiHlFKUKEsDjAF8lE5OTkr/////Sv////9LP3SUYoldlChLAYwBYZRldJRiLg==',
};

/** A hand-made npy file: any header text, any payload. */
function craft(header: string, payload: Uint8Array, version = 1): Uint8Array {
  const pre = version === 1 ? 10 : 12;
  const text = header + ' '.repeat((64 - ((pre + header.length + 1) % 64)) % 64) + '\n';
  const out = new Uint8Array(pre + text.length + payload.length);
  out.set([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, version, 0]);
  const dv = new DataView(out.buffer);
  if (version === 1) dv.setUint16(8, text.length, true);
  else dv.setUint32(8, text.length, true);
  out.set(new TextEncoder().encode(text), pre);
  out.set(payload, pre + text.length);
  return out;
}

function expectSame(a: NdArray, b: NdArray) {
  expect(a.dtype).toBe(b.dtype);
  expect(a.shape).toEqual(b.shape);
  expect(a.data.constructor).toBe(b.data.constructor);
  expect(Array.from(a.data as ArrayLike<unknown>)).toEqual(Array.from(b.data as ArrayLike<unknown>));
}

describe('readNpy on files written by NumPy', () => {
  it('reads Fortran-order int32 into C order', () => {
    const a = readNpy(b64(NUMPY.fortranI4));
    expect(a.dtype).toBe('int32');
    expect(a.shape).toEqual([2, 3]);
    expect(Array.from(a.data as Int32Array)).toEqual([-2500, -1500, -500, 500, 1500, 2500]);
  });
  it('reads a 3-d Fortran-order array into C order', () => {
    const a = readNpy(b64(NUMPY.fortranI2x3d));
    expect(a.shape).toEqual([2, 3, 4]);
    expect(Array.from(a.data as Int16Array)).toEqual(Array.from({ length: 24 }, (_, i) => i));
  });
  it('reads float16 as raw bits', () => {
    const a = readNpy(b64(NUMPY.f2));
    expect(a.dtype).toBe('float16');
    expect(Array.from(a.data as Uint16Array)).toEqual([15360, 49408, 31743, 1, 31744, 13652]);
  });
  it('reads bool', () => {
    const a = readNpy(b64(NUMPY.b1));
    expect(a.dtype).toBe('bool');
    expect(a.shape).toEqual([2, 3]);
    expect(Array.from(a.data as Uint8Array)).toEqual([1, 0, 1, 0, 0, 1]);
  });
  it('reads big-endian data from version 2.0 and 3.0 headers', () => {
    const f = readNpy(b64(NUMPY.beF8v2));
    expect(f.dtype).toBe('float64');
    expect(Array.from(f.data as Float64Array)).toEqual([1.5, -2.25]);
    const u = readNpy(b64(NUMPY.beU8v3));
    expect(u.dtype).toBe('uint64');
    expect(Array.from(u.data as BigUint64Array)).toEqual([2n ** 63n + 5n, 7n]);
    expect(readNpyHeader(b64(NUMPY.beU8v3)).version).toEqual([3, 0]);
  });
  it('reads a 0-d array', () => {
    const a = readNpy(b64(NUMPY.scalarF4));
    expect(a.shape).toEqual([]);
    expect(Array.from(a.data as Float32Array)).toEqual([3.25]);
  });
  it('refuses object (pickled) arrays', () => {
    expect(expectFormatError(() => readNpy(b64(NUMPY.object), { file: 'obj.npy' }), 'obj.npy')).toMatch(
      /pickle/,
    );
  });
});

describe('writeNpy / readNpy round trips', () => {
  it('every dtype, several shapes', () => {
    for (const dtype of DTYPES) {
      for (const shape of [[], [0], [7], [3, 5], [2, 0, 4], [2, 3, 4, 5]]) {
        const a = sampleArray(dtype, shape, 17 + shape.length);
        const bytes = writeNpy(a);
        const h = readNpyHeader(bytes);
        expect(h.dataOffset % 64).toBe(0);
        expect(h.version).toEqual([1, 0]);
        expectSame(readNpy(bytes), a);
      }
    }
  });
  it('writes byte for byte what NumPy writes', () => {
    // base64 of np.lib.format.write_array(buf, a) for each array (NumPy 2.4)
    const cases: [NdArray, string][] = [
      [
        ndarray('float32', [2, 3], [-2.5, -1.5, -0.5, 0.5, 1.5, 2.5]), // np.arange(6, dtype=np.float32).reshape(2, 3) - 2.5
        'k05VTVBZAQB2AHsnZGVzY3InOiAnPGY0JywgJ2ZvcnRyYW5fb3JkZXInOiBGYWxzZSwgJ3NoYXBlJzogKDIsIDMpLCB9ICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgIAoAACDAAADAvwAAAL8AAAA/AADAPwAAIEA=',
      ],
      [
        ndarray('bool', [], [1]), // np.array(True)
        'k05VTVBZAQB2AHsnZGVzY3InOiAnfGIxJywgJ2ZvcnRyYW5fb3JkZXInOiBGYWxzZSwgJ3NoYXBlJzogKCksIH0gICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgIAoB',
      ],
      [
        ndarray('int64', [5], [0, -3, -6, -9, -12]), // np.arange(5, dtype=np.int64) * -3
        'k05VTVBZAQB2AHsnZGVzY3InOiAnPGk4JywgJ2ZvcnRyYW5fb3JkZXInOiBGYWxzZSwgJ3NoYXBlJzogKDUsKSwgfSAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgIAoAAAAAAAAAAP3/////////+v/////////3//////////T/////////',
      ],
    ];
    for (const [arr, expected] of cases) expect(Buffer.from(writeNpy(arr)).toString('base64')).toBe(expected);
  });
  it('a large array (1M float32)', () => {
    const a = sampleArray('float32', [1024, 1024], 3);
    const back = readNpy(writeNpy(a));
    expect(back.shape).toEqual([1024, 1024]);
    expect(
      Buffer.compare(
        Buffer.from((back.data as Float32Array).buffer),
        Buffer.from((a.data as Float32Array).buffer),
      ),
    ).toBe(0);
  });
  it('copies by default and can return a view', () => {
    const bytes = writeNpy(sampleArray('float64', [4]));
    const copied = readNpy(bytes);
    expect(copied.data.buffer).not.toBe(bytes.buffer);
    const view = readNpy(bytes, { copy: false });
    expect(view.data.buffer).toBe(bytes.buffer);
    expect(Array.from(view.data as Float64Array)).toEqual(Array.from(copied.data as Float64Array));
  });
  it('rejects arrays whose data does not match', () => {
    expect(() => writeNpy({ dtype: 'float32', shape: [3], data: new Float32Array(2) })).toThrow(InputError);
    expect(() => writeNpy({ dtype: 'float32', shape: [2], data: new Float64Array(2) } as never)).toThrow(
      InputError,
    );
  });
});

describe('readNpy on crafted input', () => {
  const le = (vals: number[]) => new Uint8Array(new Int32Array(vals).buffer);
  it('big-endian of every multi-byte dtype', () => {
    for (const dtype of DTYPES) {
      const a = sampleArray(dtype, [3, 2], 99);
      const bytes = writeNpy(a);
      const h = readNpyHeader(bytes);
      const size = a.data.BYTES_PER_ELEMENT;
      if (size === 1) continue;
      const payload = bytes.slice(h.dataOffset);
      for (let i = 0; i < payload.length; i += size) payload.subarray(i, i + size).reverse();
      const descr = '>' + new TextDecoder().decode(bytes.subarray(10, h.dataOffset)).match(/'<(\w\d)'/)![1];
      const be = craft(`{'descr': '${descr}', 'fortran_order': False, 'shape': (3, 2), }`, payload);
      expectSame(readNpy(be), a);
    }
  });
  it('Fortran order with bytes in column-major layout', () => {
    // a 2x2x3 array with C-order values 0..11 laid out column-major
    const shape = [2, 2, 3];
    const f: number[] = [];
    for (let k = 0; k < 3; k++)
      for (let j = 0; j < 2; j++) for (let i = 0; i < 2; i++) f.push(i * 6 + j * 3 + k);
    const a = readNpy(craft(`{'descr': '<i4', 'fortran_order': True, 'shape': (2, 2, 3), }`, le(f)));
    expect(a.shape).toEqual(shape);
    expect(Array.from(a.data as Int32Array)).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11]);
  });
  it('Fortran order, big-endian, 0-d and empty', () => {
    const a = readNpy(
      craft(
        `{'descr': '>i2', 'fortran_order': True, 'shape': (2, 2), }`,
        new Uint8Array([0, 1, 0, 2, 0, 3, 1, 0]),
      ),
    );
    expect(Array.from(a.data as Int16Array)).toEqual([1, 3, 2, 256]);
    const z = readNpy(
      craft(
        `{'descr': '<f8', 'fortran_order': True, 'shape': (), }`,
        new Uint8Array(new Float64Array([-7]).buffer),
      ),
    );
    expect(z.shape).toEqual([]);
    expect(Array.from(z.data as Float64Array)).toEqual([-7]);
    const e = readNpy(craft(`{'descr': '<f4', 'fortran_order': True, 'shape': (0, 5), }`, new Uint8Array(0)));
    expect(e.shape).toEqual([0, 5]);
    expect(e.data.length).toBe(0);
  });
  it('header variations Python allows: key order, double quotes, no trailing comma, version 2/3, "L" suffix', () => {
    const payload = le([1, 2, 3]);
    for (const [h, v] of [
      [`{"shape": (3,), "descr": "<i4", "fortran_order": False}`, 1],
      [`{'descr':'<i4','fortran_order':False,'shape':(3L,)}`, 1],
      [`{'descr': '<i4', 'fortran_order': False, 'shape': (3,), }`, 2],
      [`{'descr': '<i4', 'fortran_order': False, 'shape': (3,), }`, 3],
    ] as const) {
      const a = readNpy(craft(h, payload, v));
      expect(a.shape).toEqual([3]);
      expect(Array.from(a.data as Int32Array)).toEqual([1, 2, 3]);
    }
  });
  it('rejects malformed headers, unsupported dtypes and size mismatches', () => {
    const payload = le([1, 2, 3]);
    const bad: [string, RegExp][] = [
      [`{'descr': '<i4', 'fortran_order': False}`, /keys/],
      [`{'descr': '<i4', 'fortran_order': False, 'shape': (3,), 'extra': 1}`, /keys/],
      [`{'descr': '<i4', 'fortran_order': 0, 'shape': (3,)}`, /fortran_order/],
      [`{'descr': '<i4', 'fortran_order': False, 'shape': [3]}`, /shape/],
      [`{'descr': '<i4', 'fortran_order': False, 'shape': (-3,)}`, /shape/],
      [`{'descr': '<i4', 'fortran_order': False, 'shape': (3.0,)}`, /malformed/],
      [`{'descr': '<c8', 'fortran_order': False, 'shape': (3,)}`, /unsupported npy dtype/],
      [`{'descr': '<U1', 'fortran_order': False, 'shape': (3,)}`, /unsupported npy dtype/],
      [`{'descr': [('a', '<i4')], 'fortran_order': False, 'shape': (3,)}`, /structured/],
      [`{'descr': '|O', 'fortran_order': False, 'shape': (3,)}`, /pickle/],
      [`{'descr': '<i4', 'fortran_order': False, 'shape': (4,)}`, /truncated/],
      [`{'descr': '<i4', 'fortran_order': False, 'shape': (2,)}`, /after the data/],
      [`{'descr': '<i4', 'fortran_order': False, 'shape': (3000000000, 3000000000, 3000000000)}`, /too many/],
      [`{'descr': '<i4', 'fortran_order': False, 'shape': (3,)`, /malformed/],
      [`{'descr': '<i4' 'fortran_order': False, 'shape': (3,)}`, /malformed/],
      [`{'descr': '<i4', 'fortran_order': False, 'shape': (3,)} x`, /malformed/],
      [`${'['.repeat(100)}`, /malformed/],
    ];
    for (const [h, re] of bad) {
      expect(expectFormatError(() => readNpy(craft(h, payload), { file: 'x.npy' }), 'x.npy')).toMatch(re);
    }
    const good = craft(`{'descr': '<i4', 'fortran_order': False, 'shape': (3,)}`, payload);
    const wrongVersion = good.slice();
    wrongVersion[6] = 4;
    expect(expectFormatError(() => readNpy(wrongVersion, { file: 'v.npy' }), 'v.npy')).toMatch(
      /version 4\.0/,
    );
    expect(
      expectFormatError(() => readNpy(new Uint8Array([0x80, 4, 0x95]), { file: 'p.npy' }), 'p.npy'),
    ).toMatch(/pickle/);
    expect(expectFormatError(() => readNpy(new Uint8Array(0), { file: 'e.npy' }), 'e.npy')).toMatch(
      /not an npy/,
    );
    const hugeHeader = good.slice(0, 12);
    hugeHeader[6] = 2;
    new DataView(hugeHeader.buffer).setUint32(8, 0xfffffff0, true);
    expect(expectFormatError(() => readNpy(hugeHeader, { file: 'h.npy' }), 'h.npy')).toMatch(/header/);
  });
  it('errors are FormatErrors without a file name too', () => {
    expect(() => readNpy(new Uint8Array([1, 2, 3]))).toThrow(FormatError);
  });
});
