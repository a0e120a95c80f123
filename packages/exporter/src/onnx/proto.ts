// A minimal protobuf writer for the few ONNX messages an exported model needs (onnx.proto field
// numbers). Repeated scalars are written unpacked, which every proto2/proto3 parser accepts.

/** ONNX TensorProto.DataType values used here. */
export const DataType = { FLOAT: 1, UINT8: 2, INT8: 3, INT32: 6, INT64: 7, BOOL: 9, DOUBLE: 11 } as const;
export type OnnxDataType = (typeof DataType)[keyof typeof DataType];

const AttrType = { FLOAT: 1, INT: 2, STRING: 3, TENSOR: 4, FLOATS: 6, INTS: 7 } as const;

/** Growable byte buffer with the protobuf wire encodings. */
class Writer {
  private buf = new Uint8Array(1024);
  private len = 0;

  private reserve(n: number): void {
    if (this.len + n <= this.buf.length) return;
    let size = this.buf.length * 2;
    while (size < this.len + n) size *= 2;
    const next = new Uint8Array(size);
    next.set(this.buf.subarray(0, this.len));
    this.buf = next;
  }

  /** Unsigned varint of a non-negative safe integer, or any int64 as a bigint (two's complement). */
  varint(v: number | bigint): void {
    let x = typeof v === 'bigint' ? BigInt.asUintN(64, v) : BigInt.asUintN(64, BigInt(v));
    this.reserve(10);
    while (x >= 0x80n) {
      this.buf[this.len++] = Number(x & 0x7fn) | 0x80;
      x >>= 7n;
    }
    this.buf[this.len++] = Number(x);
  }

  tag(field: number, wire: 0 | 1 | 2 | 5): void {
    this.varint((field << 3) | wire);
  }

  bytes(field: number, data: Uint8Array): void {
    this.tag(field, 2);
    this.varint(data.length);
    this.reserve(data.length);
    this.buf.set(data, this.len);
    this.len += data.length;
  }

  string(field: number, s: string): void {
    this.bytes(field, new TextEncoder().encode(s));
  }

  int(field: number, v: number | bigint): void {
    this.tag(field, 0);
    this.varint(v);
  }

  float(field: number, v: number): void {
    this.tag(field, 5);
    this.reserve(4);
    new DataView(this.buf.buffer, this.buf.byteOffset + this.len, 4).setFloat32(0, v, true);
    this.len += 4;
  }

  message(field: number, write: (w: Writer) => void): void {
    const inner = new Writer();
    write(inner);
    this.bytes(field, inner.finish());
  }

  finish(): Uint8Array {
    return this.buf.slice(0, this.len);
  }
}

export interface TensorProto {
  name: string;
  dataType: OnnxDataType;
  dims: number[];
  /** Little-endian element bytes. */
  raw: Uint8Array;
}

export type AttributeValue =
  | { type: 'float'; value: number }
  | { type: 'int'; value: number }
  | { type: 'string'; value: string }
  | { type: 'floats'; value: number[] }
  | { type: 'ints'; value: number[] }
  | { type: 'tensor'; value: TensorProto };

export interface NodeProto {
  opType: string;
  inputs: string[];
  outputs: string[];
  name: string;
  attributes: Record<string, AttributeValue>;
}

export interface ValueInfoProto {
  name: string;
  elemType: OnnxDataType;
  /** A number is a fixed size, a string a symbolic one (dim_param). */
  shape: (number | string)[];
}

export interface GraphProto {
  name: string;
  nodes: NodeProto[];
  initializers: TensorProto[];
  inputs: ValueInfoProto[];
  outputs: ValueInfoProto[];
  docString?: string;
}

export interface ModelProto {
  irVersion: number;
  opsetVersion: number;
  producerName: string;
  producerVersion: string;
  graph: GraphProto;
  metadata?: Record<string, string>;
}

function writeTensor(w: Writer, t: TensorProto): void {
  for (const d of t.dims) w.int(1, d);
  w.int(2, t.dataType);
  w.string(8, t.name);
  w.bytes(9, t.raw);
}

function writeAttribute(w: Writer, name: string, a: AttributeValue): void {
  w.string(1, name);
  switch (a.type) {
    case 'float':
      w.float(2, a.value);
      w.int(20, AttrType.FLOAT);
      break;
    case 'int':
      w.int(3, a.value);
      w.int(20, AttrType.INT);
      break;
    case 'string':
      w.string(4, a.value);
      w.int(20, AttrType.STRING);
      break;
    case 'tensor':
      w.message(5, (m) => writeTensor(m, a.value));
      w.int(20, AttrType.TENSOR);
      break;
    case 'floats':
      for (const f of a.value) w.float(7, f);
      w.int(20, AttrType.FLOATS);
      break;
    case 'ints':
      for (const i of a.value) w.int(8, i);
      w.int(20, AttrType.INTS);
      break;
  }
}

function writeNode(w: Writer, n: NodeProto): void {
  for (const i of n.inputs) w.string(1, i);
  for (const o of n.outputs) w.string(2, o);
  w.string(3, n.name);
  w.string(4, n.opType);
  for (const [name, a] of Object.entries(n.attributes)) w.message(5, (m) => writeAttribute(m, name, a));
}

function writeValueInfo(w: Writer, v: ValueInfoProto): void {
  w.string(1, v.name);
  // TypeProto { tensor_type = 1: { elem_type = 1, shape = 2: { dim = 1: { dim_value = 1 | dim_param = 2 } } } }
  w.message(2, (type) =>
    type.message(1, (tensor) => {
      tensor.int(1, v.elemType);
      tensor.message(2, (shape) => {
        for (const d of v.shape)
          shape.message(1, (dim) => (typeof d === 'number' ? dim.int(1, d) : dim.string(2, d)));
      });
    }),
  );
}

function writeGraph(w: Writer, g: GraphProto): void {
  for (const n of g.nodes) w.message(1, (m) => writeNode(m, n));
  w.string(2, g.name);
  for (const t of g.initializers) w.message(5, (m) => writeTensor(m, t));
  if (g.docString) w.string(10, g.docString);
  for (const i of g.inputs) w.message(11, (m) => writeValueInfo(m, i));
  for (const o of g.outputs) w.message(12, (m) => writeValueInfo(m, o));
}

/** Serialises a ModelProto (default domain opset only). */
export function encodeModel(model: ModelProto): Uint8Array {
  const w = new Writer();
  w.int(1, model.irVersion);
  w.string(2, model.producerName);
  w.string(3, model.producerVersion);
  w.message(7, (g) => writeGraph(g, model.graph));
  w.message(8, (op) => {
    op.string(1, '');
    op.int(2, model.opsetVersion);
  });
  for (const [key, value] of Object.entries(model.metadata ?? {}))
    w.message(14, (e) => {
      e.string(1, key);
      e.string(2, value);
    });
  return w.finish();
}
