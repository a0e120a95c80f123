import { describe, expect, it } from 'vitest';
import { prepareTrainingSlice, type NdArray } from '@mcp-medsam/io';
import { PreparedSliceCache } from '../src/prepared_cache.js';

/** A prepared 2D slice of side n (about 4n² + n²/16·3 bytes before any label is prepared). */
function slice(n: number, file = `2D_CT_${n}.npz`) {
  const gts = new Uint8Array(n * n);
  gts.fill(1, 0, n); // a foreground row
  const arrays = {
    imgs: { dtype: 'uint8', shape: [n, n, 3], data: new Uint8Array(3 * n * n) } as NdArray,
    gts: { dtype: 'uint8', shape: [n, n], data: gts } as NdArray,
  };
  return prepareTrainingSlice(arrays, file, 0);
}

describe('PreparedSliceCache', () => {
  it('keeps entries within the byte budget, evicting the least recently used', () => {
    const a = slice(100, 'a');
    const b = slice(100, 'b');
    const c = slice(100, 'c');
    const cache = new PreparedSliceCache(a.bytes * 2 + 10);
    cache.set('a', a);
    cache.set('b', b);
    expect(cache.get('a')).toBe(a); // a is now the most recent
    cache.set('c', c); // evicts b
    expect(cache.size).toBe(2);
    expect(cache.get('b')).toBeUndefined();
    expect(cache.get('a')).toBe(a);
    expect(cache.get('c')).toBe(c);
    expect(cache.stats).toMatchObject({ hits: 3, misses: 1, evictions: 1, bytes: a.bytes + c.bytes });
  });

  it('does not keep an entry larger than the budget, nor anything with a zero budget', () => {
    const big = slice(200);
    const cache = new PreparedSliceCache(big.bytes - 1);
    cache.set('x', big);
    expect(cache.size).toBe(0);
    const off = new PreparedSliceCache(0);
    off.set('y', slice(10));
    expect(off.size).toBe(0);
  });

  it('counts the label masks a slice prepares on demand', () => {
    const s = slice(64);
    const before = s.bytes;
    s.label(1);
    expect(s.bytes).toBeGreaterThan(before);
    expect(() => s.label(2)).toThrow(/label 2 is not one of \[1\]/);
  });
});
