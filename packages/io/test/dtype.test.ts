import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { InputError } from '@mcp-medsam/core';
import {
  DTYPES,
  bfloat16ToFloat32,
  float16ToFloat32,
  float32ToBfloat16,
  float32ToFloat16,
  itemSize,
  ndarray,
  numel,
  toFloat32,
  toFloat64,
} from '../src/index.js';

describe('numel', () => {
  it('multiplies dimensions; 0-d is one element; a zero dimension is empty', () => {
    expect(numel([])).toBe(1);
    expect(numel([2, 3, 4])).toBe(24);
    expect(numel([5, 0, 7])).toBe(0);
  });
  it('rejects negative, fractional and overflowing shapes', () => {
    expect(() => numel([-1])).toThrow(InputError);
    expect(() => numel([1.5])).toThrow(InputError);
    expect(() => numel([2 ** 30, 2 ** 30, 2 ** 30])).toThrow(InputError);
  });
});

describe('ndarray', () => {
  it('zero-fills with the right typed array for every dtype', () => {
    const kinds: Record<string, string> = {
      bool: 'Uint8Array',
      int8: 'Int8Array',
      uint8: 'Uint8Array',
      int16: 'Int16Array',
      uint16: 'Uint16Array',
      int32: 'Int32Array',
      uint32: 'Uint32Array',
      int64: 'BigInt64Array',
      uint64: 'BigUint64Array',
      float16: 'Uint16Array',
      float32: 'Float32Array',
      float64: 'Float64Array',
    };
    for (const d of DTYPES) {
      const a = ndarray(d, [2, 3]);
      expect(a.data.constructor.name).toBe(kinds[d]);
      expect(a.data.length).toBe(6);
      expect(a.shape).toEqual([2, 3]);
      expect(a.data.BYTES_PER_ELEMENT).toBe(itemSize(d));
    }
  });
  it('uses a typed array of the right kind without copying', () => {
    const data = new Float32Array([1, 2, 3, 4]);
    expect(ndarray('float32', [2, 2], data).data).toBe(data);
  });
  it('converts plain arrays by value', () => {
    expect(Array.from(ndarray('float16', [3], [1, -2, 0.5]).data)).toEqual([0x3c00, 0xc000, 0x3800]);
    expect(Array.from(ndarray('int64', [2], [3, -4]).data)).toEqual([3n, -4n]);
    expect(Array.from(ndarray('bool', [3], [0, 2, -1]).data)).toEqual([0, 1, 1]);
    expect(Array.from(ndarray('uint8', [2], [7, 255]).data)).toEqual([7, 255]);
  });
  it('rejects a length mismatch, a wrong typed array kind and unknown dtypes', () => {
    expect(() => ndarray('float32', [3], new Float32Array(2))).toThrow(InputError);
    expect(() => ndarray('float32', [2], [1])).toThrow(InputError);
    expect(() => ndarray('int64', [1], [1.5])).toThrow(InputError);
    expect(() => ndarray('complex64' as never, [1])).toThrow(InputError);
  });
});

describe('float16', () => {
  it('decodes known bit patterns', () => {
    expect(float16ToFloat32(0x3c00)).toBe(1);
    expect(float16ToFloat32(0xc000)).toBe(-2);
    expect(float16ToFloat32(0x7bff)).toBe(65504);
    expect(float16ToFloat32(0x0001)).toBe(2 ** -24);
    expect(float16ToFloat32(0x03ff)).toBe(1023 * 2 ** -24);
    expect(float16ToFloat32(0x0400)).toBe(2 ** -14);
    expect(float16ToFloat32(0x7c00)).toBe(Infinity);
    expect(float16ToFloat32(0xfc00)).toBe(-Infinity);
    expect(float16ToFloat32(0x7e00)).toBeNaN();
    expect(Object.is(float16ToFloat32(0x8000), -0)).toBe(true);
    // numpy: np.float16(0.333).view(np.uint16) == 13652 and float(np.float16(0.333)) == 0.3330078125
    expect(float16ToFloat32(13652)).toBe(0.3330078125);
  });
  it('encodes with round half to even, overflow and underflow', () => {
    expect(float32ToFloat16(1)).toBe(0x3c00);
    expect(float32ToFloat16(1 + 2 ** -11)).toBe(0x3c00); // tie, rounds to even
    expect(float32ToFloat16(1 + 3 * 2 ** -11)).toBe(0x3c02); // tie, rounds to even (up)
    expect(float32ToFloat16(65504)).toBe(0x7bff);
    expect(float32ToFloat16(65519)).toBe(0x7bff);
    expect(float32ToFloat16(65520)).toBe(0x7c00); // rounds to infinity
    expect(float32ToFloat16(-1e10)).toBe(0xfc00);
    expect(float32ToFloat16(2 ** -24)).toBe(0x0001);
    expect(float32ToFloat16(2 ** -25)).toBe(0x0000); // tie between 0 and the smallest subnormal
    expect(float32ToFloat16(1.5 * 2 ** -25)).toBe(0x0001);
    expect(float32ToFloat16(3 * 2 ** -25)).toBe(0x0002); // tie 1.5 ulp rounds to even
    expect(float32ToFloat16(2 ** -14 - 2 ** -25)).toBe(0x0400); // rounds up into the normals
    expect(float32ToFloat16(-0)).toBe(0x8000);
    expect(float32ToFloat16(NaN) & 0x7fff).toBe(0x7e00);
    expect(float32ToFloat16(6e-8)).toBe(1); // numpy: np.float16(6e-8).view(np.uint16) == 1
  });
  it('round-trips every non-NaN half exactly', () => {
    const bad: number[] = [];
    let checked = 0;
    for (let b = 0; b < 65536; b++) {
      if ((b & 0x7c00) === 0x7c00 && b & 0x3ff) continue;
      checked++;
      if (float32ToFloat16(float16ToFloat32(b)) !== b) bad.push(b);
    }
    expect(bad).toEqual([]);
    expect(checked).toBe(65536 - 2046);
  });
  it('matches rounding to the nearest half for random values (property)', () => {
    fc.assert(
      fc.property(fc.float({ noNaN: true, min: -70000, max: 70000 }), (x) => {
        const h = float32ToFloat16(x);
        const v = float16ToFloat32(h);
        if (!Number.isFinite(v)) return Math.abs(x) >= 65520;
        // no other finite half is strictly closer
        const up = float16ToFloat32(h + 1);
        const down = float16ToFloat32(h - 1);
        const d = Math.abs(v - Math.fround(x));
        return (
          (!(Math.abs(up - x) < d) || (h & 0x7fff) === 0x7bff) &&
          (h === 0 || h === 0x8000 || !(Math.abs(down - x) < d))
        );
      }),
      { numRuns: 2000 },
    );
  });
});

describe('bfloat16', () => {
  it('decodes and encodes', () => {
    expect(bfloat16ToFloat32(0x3f80)).toBe(1);
    expect(bfloat16ToFloat32(0xc040)).toBe(-3);
    expect(bfloat16ToFloat32(0x7f80)).toBe(Infinity);
    expect(float32ToBfloat16(1)).toBe(0x3f80);
    expect(float32ToBfloat16(-3)).toBe(0xc040);
    expect(float32ToBfloat16(1 + 2 ** -8)).toBe(0x3f80); // tie to even
    expect(float32ToBfloat16(1 + 3 * 2 ** -8)).toBe(0x3f82);
    expect(bfloat16ToFloat32(float32ToBfloat16(NaN))).toBeNaN();
    expect(float32ToBfloat16(3.4e38)).toBe(0x7f80); // rounds past the largest finite
  });
});

describe('toFloat32 / toFloat64', () => {
  it('converts every dtype by value into a new array', () => {
    const cases: [Parameters<typeof ndarray>[0], ArrayLike<number> | ArrayLike<bigint>, number[]][] = [
      ['bool', [1, 0, 1], [1, 0, 1]],
      ['int8', [-128, 0, 127], [-128, 0, 127]],
      ['uint8', [0, 128, 255], [0, 128, 255]],
      ['int16', [-32768, 1, 32767], [-32768, 1, 32767]],
      ['uint16', [0, 40000, 65535], [0, 40000, 65535]],
      ['int32', [-2147483648, 5, 2147483647], [-2147483648, 5, 2147483647]],
      ['uint32', [0, 7, 4294967295], [0, 7, 4294967295]],
      ['int64', [-(2n ** 40n), 3n, 2n ** 62n], [-(2 ** 40), 3, 2 ** 62]],
      ['uint64', [0n, 9n, 2n ** 63n], [0, 9, 2 ** 63]],
      ['float16', [1, -2.5, 65504], [1, -2.5, 65504]],
      ['float32', [0.5, -1e30, 3], [0.5, Math.fround(-1e30), 3]],
      ['float64', [0.1, -2, 1e300], [0.1, -2, 1e300]],
    ];
    for (const [dtype, values, expected] of cases) {
      const arr = ndarray(dtype, [3], values);
      const f32 = toFloat32(arr);
      expect(f32).toBeInstanceOf(Float32Array);
      expect(Array.from(f32)).toEqual(expected.map((v) => Math.fround(v)));
      expect(f32).not.toBe(arr.data);
      if (dtype !== 'uint32' && dtype !== 'int64' && dtype !== 'uint64') {
        expect(Array.from(toFloat64(arr))).toEqual(expected);
      }
    }
    expect(Array.from(toFloat64(ndarray('uint64', [1], [2n ** 63n])).map((x) => x))).toEqual([2 ** 63]);
  });
});
