import { InputError, tf } from '@mcp-medsam/core';
import { toFloat32, type NdArray } from './dtype.js';

/**
 * An NdArray as a tfjs tensor: floats become float32, bool becomes bool, other integers int32
 * (tfjs has no 64-bit integers; values outside the int32 range are an error, not a wrap).
 */
export function ndarrayToTensor(arr: NdArray, name = 'array'): tf.Tensor {
  switch (arr.dtype) {
    case 'float32':
    case 'float64':
    case 'float16':
      return tf.tensor(toFloat32(arr), arr.shape, 'float32');
    case 'bool':
      return tf.tensor(arr.data as Uint8Array, arr.shape, 'bool');
    default: {
      const src = arr.data as ArrayLike<number | bigint>;
      const out = new Int32Array(src.length);
      for (let i = 0; i < src.length; i++) {
        const v = Number(src[i]);
        if (v > 2147483647 || v < -2147483648)
          throw new InputError(`${name}: value ${v} does not fit in int32`);
        out[i] = v;
      }
      return tf.tensor(out, arr.shape, 'int32');
    }
  }
}

/** A tfjs tensor as an NdArray (float32, int32 or bool). */
export function tensorToNdarray(t: tf.Tensor): NdArray {
  const data = t.dataSync();
  if (t.dtype === 'float32')
    return { dtype: 'float32', shape: t.shape.slice(), data: new Float32Array(data as Float32Array) };
  if (t.dtype === 'int32')
    return { dtype: 'int32', shape: t.shape.slice(), data: new Int32Array(data as Int32Array) };
  if (t.dtype === 'bool')
    return { dtype: 'bool', shape: t.shape.slice(), data: Uint8Array.from(data as Uint8Array) };
  throw new InputError(`cannot convert a ${t.dtype} tensor to an array`);
}
