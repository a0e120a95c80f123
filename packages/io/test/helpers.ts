import { FormatError } from '@mcp-medsam/core';
import { expect } from 'vitest';
import { type DType, type NdArray, ndarray, numel } from '../src/index.js';

/** Deterministic pseudo-random array of `dtype` and `shape` covering the dtype's range. */
export function sampleArray(dtype: DType, shape: number[], seed = 1): NdArray {
  let s = seed >>> 0 || 1;
  const next = () => {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    return s >>> 0;
  };
  const a = ndarray(dtype, shape);
  const n = numel(shape);
  const d = a.data as unknown as { [i: number]: number | bigint };
  for (let i = 0; i < n; i++) {
    const r = next();
    switch (dtype) {
      case 'bool':
        d[i] = r & 1;
        break;
      case 'int64':
        d[i] = BigInt.asIntN(64, (BigInt(r) << 32n) | BigInt(next()));
        break;
      case 'uint64':
        d[i] = (BigInt(r) << 32n) | BigInt(next());
        break;
      case 'float32':
      case 'float64':
        d[i] = ((r / 2 ** 32) * 2 - 1) * 10 ** ((r % 13) - 6);
        break;
      default:
        d[i] = r; // wraps modulo the integer width; float16 gets arbitrary bit patterns
    }
  }
  return a;
}

/** Bytes from base64. */
export function b64(s: string): Uint8Array {
  return new Uint8Array(Buffer.from(s, 'base64'));
}

/** Run `fn`, expect a FormatError whose message starts with the file name; return the message. */
export function expectFormatError(fn: () => unknown, file: string): string {
  try {
    fn();
  } catch (e) {
    if (!(e instanceof FormatError)) throw e;
    expect(e.message.startsWith(`${file}: `)).toBe(true);
    expect(e.file).toBe(file);
    return e.message;
  }
  throw new Error('expected a FormatError, but nothing was thrown');
}
