export {
  exportOnnx,
  exportEncoder,
  exportDecoder,
  traceEncoder,
  traceDecoder,
  exampleImage,
  exampleDecoderInputs,
  extensionGraphInputs,
  decoderInputNames,
  stateNames,
  inEvalMode,
  CLIP_IMAGE_SIZE,
  ENCODER_INPUTS,
  ENCODER_OUTPUTS,
  DECODER_INPUTS,
  DECODER_OUTPUTS,
} from './export.js';
export type {
  DecoderTensors,
  TraceResult,
  ExportGraphOptions,
  ExportOnnxOptions,
  ExportOnnxResult,
  ExtensionGraphInput,
} from './export.js';
export { buildOnnx, OPSET, IR_VERSION, PRODUCER } from './graph.js';
export type { BuildOptions, BuiltGraph, GraphInputSpec, GraphSymbol } from './graph.js';
export { traceKernels } from './trace.js';
export type { Trace, KernelCall, TensorMeta, ConstTensor } from './trace.js';
export { KERNELS } from './onnx/ops.js';
export { convProbeNames, parseConvProbeName, staticConvCandidates, uint8Params } from './onnx/static_conv.js';
export type { ConvActivationRange } from './onnx/static_conv.js';
export type { QuantizeReport } from './onnx/quantize.js';
export { encodeModel } from './onnx/proto.js';
export { standinClipOnnx, writeStandinClip } from './standin_clip.js';
export type { StandinClipFiles } from './standin_clip.js';
