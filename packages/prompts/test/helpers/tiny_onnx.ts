/**
 * Writes tiny ONNX models for the tests: `Flatten(axis=1)` then `MatMul` with a weight
 * initializer, i.e. a linear "image tower" whose expected output is easy to compute in JS. The
 * declared input and output shapes are free, so the loader's checks (fixed batch, symbolic
 * feature width, wrong image size, other names) can be exercised without Python.
 *
 * Only the handful of protobuf fields these graphs need are encoded (onnx.proto: ModelProto,
 * GraphProto, NodeProto, TensorProto, ValueInfoProto, TypeProto, TensorShapeProto).
 */

type Dim = number | string;

function varint(value: number | bigint): number[] {
  let v = BigInt.asUintN(64, BigInt(value));
  const out: number[] = [];
  do {
    let byte = Number(v & 0x7fn);
    v >>= 7n;
    if (v) byte |= 0x80;
    out.push(byte);
  } while (v);
  return out;
}

const tag = (field: number, wire: number) => varint((field << 3) | wire);
const int = (field: number, v: number | bigint) => [...tag(field, 0), ...varint(v)];
const bytes = (field: number, b: ArrayLike<number>) => [
  ...tag(field, 2),
  ...varint(b.length),
  ...Array.from(b),
];
const str = (field: number, s: string) => bytes(field, new TextEncoder().encode(s));
const msg = (field: number, parts: number[][]) => bytes(field, parts.flat());

function valueInfo(field: number, name: string, shape: Dim[] | null): number[] {
  // TypeProto.tensor_type { elem_type FLOAT = 1, shape { dim... } }; no shape field when null.
  const tensorType = [int(1, 1)];
  if (shape)
    tensorType.push(
      msg(
        2,
        shape.map((d) => msg(1, [typeof d === 'number' ? int(1, d) : str(2, d)])),
      ),
    );
  return msg(field, [str(1, name), msg(2, [msg(1, tensorType)])]);
}

/** Options of {@link tinyLinearOnnx}. */
export interface TinyOnnxOptions {
  inputName?: string;
  outputName?: string;
  /** Declared input shape, e.g. ['batch', 3, 2, 2]. */
  inputShape: Dim[];
  /** Declared output shape, e.g. ['batch', 4] or ['batch', 'dim']; null declares none. */
  outputShape: Dim[] | null;
  /** Add `Unsqueeze(axes=[1])` at the end, so that the real output is (batch, 1, dim). */
  unsqueeze?: boolean;
  /** The (features, dim) weight, row-major. */
  weight: Float32Array;
  features: number;
  dim: number;
}

/** Serialise the model: y = flatten(x) @ weight, then unsqueezed to (B, 1, D) if asked. */
export function tinyLinearOnnx(o: TinyOnnxOptions): Uint8Array {
  const input = o.inputName ?? 'pixel_values';
  const output = o.outputName ?? 'image_embeds';
  const product = o.unsqueeze ? 'product' : output;
  const node = (inputs: string[], out: string, name: string, op: string, attrs: number[][] = []) =>
    msg(1, [...inputs.map((i) => str(1, i)), str(2, out), str(3, name), str(4, op), ...attrs]);
  const tensor = (name: string, dims: number[], dataType: number, raw: ArrayLike<number>) =>
    msg(5, [...dims.map((d) => int(1, d)), int(2, dataType), str(8, name), bytes(9, raw)]);

  const w = new Uint8Array(o.weight.buffer, o.weight.byteOffset, o.weight.byteLength);
  const parts = [
    // AttributeProto { name 'axis', i 1, type INT = 2 }
    node([input], 'flat', 'flatten', 'Flatten', [msg(5, [str(1, 'axis'), int(3, 1), int(20, 2)])]),
    node(['flat', 'weight'], product, 'matmul', 'MatMul'),
    str(2, 'tiny'),
    tensor('weight', [o.features, o.dim], 1, w),
  ];
  if (o.unsqueeze) {
    parts.push(node([product, 'axes'], output, 'unsqueeze', 'Unsqueeze'));
    // axes = [1]: int64 (data_type 7), 8 little-endian bytes.
    parts.push(tensor('axes', [1], 7, [1, 0, 0, 0, 0, 0, 0, 0]));
  }
  parts.push(valueInfo(11, input, o.inputShape), valueInfo(12, output, o.outputShape));
  const graph = msg(7, parts);
  return new Uint8Array([
    ...int(1, 8),
    ...str(2, 'prompts-test'),
    ...graph,
    ...msg(8, [str(1, ''), int(2, 17)]),
  ]);
}
