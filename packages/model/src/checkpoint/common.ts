/** Small helpers shared by the checkpoint readers and writers. */
import { isDType, itemSize, typedArrayConstructor, type DType, type NdArray } from '@mcp-medsam/io';
import { InputError } from '@mcp-medsam/core';

// dtype tables come from @mcp-medsam/io (one place for the dtype -> typed array mapping).
export const dtypeSize = itemSize;
export const isKnownDType = isDType;

/** Whether this machine stores numbers little-endian (every platform Node supports in practice). */
export const HOST_LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

/** Reverse the byte order of each `size`-byte element of `b`, in place. */
export function byteSwap(b: Uint8Array, size: number): void {
  if (size === 1) return;
  for (let i = 0; i + size <= b.length; i += size) {
    for (let a = i, z = i + size - 1; a < z; a++, z--) {
      const t = b[a];
      b[a] = b[z];
      b[z] = t;
    }
  }
}

/**
 * A new NdArray of `dtype` and `shape` whose elements are the `numel * itemSize` bytes at
 * `src[byteOffset...]`, in file byte order `littleEndian`. Always copies (so the result is aligned
 * and owns its buffer).
 */
export function ndarrayFromBytes(
  dtype: DType,
  shape: number[],
  src: Uint8Array,
  byteOffset: number,
  numel: number,
  littleEndian: boolean,
): NdArray {
  const Ctor = typedArrayConstructor(dtype);
  const out = new Ctor(numel);
  const size = Ctor.BYTES_PER_ELEMENT;
  const bytes = new Uint8Array(out.buffer, out.byteOffset, numel * size);
  bytes.set(src.subarray(byteOffset, byteOffset + numel * size));
  if (littleEndian !== HOST_LITTLE_ENDIAN) byteSwap(bytes, size);
  return { dtype, shape, data: out } as NdArray;
}

/** bfloat16 bit patterns (2 bytes each, little-endian) -> float32 values (exact). */
export function bf16BytesToFloat32(
  src: Uint8Array,
  byteOffset: number,
  numel: number,
  littleEndian: boolean,
): Float32Array {
  const out = new Float32Array(numel);
  const u = new Uint32Array(out.buffer);
  const [lo, hi] = littleEndian ? [0, 1] : [1, 0];
  for (let i = 0, p = byteOffset; i < numel; i++, p += 2)
    u[i] = ((src[p + hi] << 24) | (src[p + lo] << 16)) >>> 0;
  return out;
}

/** The little-endian bytes of an NdArray's data (a view when possible, else a copy). */
export function ndarrayBytes(a: NdArray): Uint8Array {
  const d = a.data;
  const view = new Uint8Array(d.buffer, d.byteOffset, d.byteLength);
  if (HOST_LITTLE_ENDIAN) return view;
  const copy = view.slice();
  byteSwap(copy, d.BYTES_PER_ELEMENT);
  return copy;
}

export function numelOf(shape: readonly number[]): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

/** Check that `a` is a well-formed NdArray (known dtype, matching typed array, shape, length); throws InputError. */
export function checkNdArray(name: string, a: NdArray): void {
  if (!a || typeof a !== 'object') throw new InputError(`${name}: not an NdArray`);
  if (!isKnownDType(a.dtype)) throw new InputError(`${name}: unknown dtype ${JSON.stringify(a.dtype)}`);
  if (!Array.isArray(a.shape) || a.shape.some((d) => !Number.isSafeInteger(d) || d < 0))
    throw new InputError(`${name}: invalid shape ${JSON.stringify(a.shape)}`);
  if (!(a.data instanceof typedArrayConstructor(a.dtype)))
    throw new InputError(
      `${name}: data is not a ${typedArrayConstructor(a.dtype).name} for dtype ${a.dtype}`,
    );
  const n = numelOf(a.shape);
  if (a.data.length !== n)
    throw new InputError(
      `${name}: data has ${a.data.length} elements but shape [${a.shape.join(', ')}] needs ${n}`,
    );
}
