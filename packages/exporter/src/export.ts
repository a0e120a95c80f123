// MCP-MedSAM → ONNX: the image encoder and the prompt decoder (prompt encoder + mask decoder),
// each traced from the tfjs model at two batch sizes and written with a dynamic batch axis.
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { MODALITIES, tf } from '@mcp-medsam/core';
import type { Module } from '@mcp-medsam/core';
import { InputError } from '@mcp-medsam/core';
import { BASE_DECODER_INPUTS, CROP_SIZE, EMBEDDING_SIZE } from '@mcp-medsam/model';
import type { ExtensionInputSpec, McpMedsam, PromptExtension, PromptInputs } from '@mcp-medsam/model';
import type { BuiltGraph, GraphSymbol } from './graph.js';
import { buildOnnx, IR_VERSION, OPSET, PRODUCER } from './graph.js';
import type { ValueInfoProto } from './onnx/proto.js';
import type { ConvActivationRange } from './onnx/static_conv.js';
import type { Trace } from './trace.js';
import { traceKernels } from './trace.js';

/** Side of the square CLIP ViT-B/32 input the content-prompt features are computed from. */
export const CLIP_IMAGE_SIZE = 224;

export const ENCODER_INPUTS = ['image'] as const;
export const ENCODER_OUTPUTS = ['image_embeddings'] as const;
/** The decoder graph's base inputs (extension inputs follow them). */
export const DECODER_INPUTS = BASE_DECODER_INPUTS;
export const DECODER_OUTPUTS = ['low_res_logits', 'iou'] as const;

/** Decoder inputs as the ONNX graph takes them (category_idx as int32 here; int64 in the graph). */
export interface DecoderTensors {
  /** (B, C, 64, 64) NCHW. */
  imageEmbeddings: tf.Tensor;
  /** (B, 4) [x0, y0, x1, y1] in the 256 frame. */
  boxes: tf.Tensor;
  clipImage: tf.Tensor;
  clipText: tf.Tensor;
  /** (B,) int32. */
  categoryIdx: tf.Tensor;
  /** (B, 3, 64, 64) in [0, 1]. */
  crops: tf.Tensor;
  /** The prompt extensions' inputs by name (graph inputs after the base ones). */
  extra?: Record<string, tf.Tensor>;
}

/** One prompt-extension input of the decoder graph. */
export interface ExtensionGraphInput {
  extension: PromptExtension;
  spec: ExtensionInputSpec;
}

/** The decoder graph's prompt-extension inputs, after DECODER_INPUTS, in registration order. */
export function extensionGraphInputs(model: McpMedsam): ExtensionGraphInput[] {
  return model.promptExtensions.flatMap((extension) => extension.inputs.map((spec) => ({ extension, spec })));
}

/** Every input name of the model's decoder graph. */
export function decoderInputNames(model: McpMedsam): string[] {
  return [...DECODER_INPUTS, ...extensionGraphInputs(model).map((x) => x.spec.name)];
}

/** A symbolic size of an extension input: dynamic in the graph, traced at two sizes. */
interface ExtensionSymbol {
  extension: string;
  symbol: string;
  /** Its name in the graph: the symbol, or `<extension>_<symbol>` when extensions share it. */
  graphName: string;
  /** The first input declaring it, and the axis. */
  input: string;
  axis: number;
}

/** The two sizes every symbolic extension dim is traced at (the batch uses 1 and 2). */
const SYMBOL_SIZES: [number, number] = [2, 3];

function extensionSymbols(model: McpMedsam): ExtensionSymbol[] {
  const found: ExtensionSymbol[] = [];
  for (const { extension, spec } of extensionGraphInputs(model))
    spec.shape.forEach((d, axis) => {
      if (axis === 0 || typeof d !== 'string') return;
      if (found.some((f) => f.extension === extension.name && f.symbol === d)) return;
      found.push({ extension: extension.name, symbol: d, graphName: d, input: spec.name, axis });
    });
  for (const f of found)
    if (found.some((o) => o !== f && o.symbol === f.symbol)) f.graphName = `${f.extension}_${f.symbol}`;
  return found;
}
/** A trace and the traced computation's results (the caller disposes them). */
export interface TraceResult {
  trace: Trace;
  results: tf.Tensor[];
}

/** Tensor id → state-dict key of every parameter and buffer (non-persistent ones included). */
export function stateNames(model: Module): Map<number, string> {
  const names = new Map<number, string>();
  for (const [key, t] of model.namedParameters()) names.set(t.id, key);
  for (const [key, t] of model.namedBuffers(true)) names.set(t.id, key);
  return names;
}

/** Runs `fn` with every module of `model` in eval mode, restoring the modes afterwards. */
export function inEvalMode<T>(model: Module, fn: () => T): T {
  const modes = [...model.namedModules()].map(([, m]) => [m, m.training] as const);
  model.eval();
  try {
    return fn();
  } finally {
    for (const [m, training] of modes) m.training = training;
  }
}

/** Traces `encodeImage` on (B, 3, 256, 256) images; the result is the NCHW embedding. */
export function traceEncoder(model: McpMedsam, image: tf.Tensor): TraceResult {
  let trace: Trace | undefined;
  const results = inEvalMode(model, () => {
    const out: tf.Tensor[] = [];
    trace = traceKernels(
      (x) => {
        out.push(...tf.tidy(() => [tf.transpose(model.encodeImage(x), [0, 3, 1, 2])]));
        return out;
      },
      [image],
      stateNames(model),
    );
    return out;
  });
  return { trace: trace!, results };
}

/**
 * Traces `decode` (prompt encoder and mask decoder); the results are low_res_logits and iou. The
 * traced inputs are DECODER_INPUTS, then the prompt extensions' inputs from `t.extra`.
 */
export function traceDecoder(model: McpMedsam, t: DecoderTensors): TraceResult {
  const extNames = extensionGraphInputs(model).map((x) => x.spec.name);
  const extTensors = extNames.map((name) => {
    const x = t.extra?.[name];
    if (!x) throw new InputError(`traceDecoder: the prompt-extension input '${name}' is missing`);
    return x;
  });
  let trace: Trace | undefined;
  const results = inEvalMode(model, () => {
    const out: tf.Tensor[] = [];
    trace = traceKernels(
      (emb, boxes, clipImage, clipText, categoryIdx, crops, ...extra) => {
        const kept = tf.tidy(() => {
          const prompts: PromptInputs = { boxes, clipImage, clipText, categoryIdx, crops };
          if (extNames.length) prompts.extra = Object.fromEntries(extNames.map((n, i) => [n, extra[i]]));
          const d = model.decode(tf.transpose(emb, [0, 2, 3, 1]), prompts);
          return [d.lowResLogits, d.iou];
        });
        out.push(...kept);
        return out;
      },
      [t.imageEmbeddings, t.boxes, t.clipImage, t.clipText, t.categoryIdx, t.crops, ...extTensors],
      stateNames(model),
    );
    return out;
  });
  return { trace: trace!, results };
}

/** Deterministic example images (values in [0, 1]). */
export function exampleImage(batch: number, size = 256): tf.Tensor {
  return tf.randomUniform([batch, 3, size, size], 0, 1, 'float32', 1234 + batch);
}

/**
 * Deterministic example decoder inputs with valid boxes and categories, and the prompt
 * extensions' example inputs (`sizes[extension][symbol]`: sizes of their symbolic dims, default 2).
 */
export function exampleDecoderInputs(
  model: McpMedsam,
  batch: number,
  sizes: Record<string, Record<string, number>> = {},
): DecoderTensors {
  const c = model.config;
  const boxes = Array.from({ length: batch }, (_, i) => [10 + 7 * i, 20 + 3 * i, 120 + 11 * i, 200 - 5 * i]);
  const extensions = model.promptExtensions;
  const extra: Record<string, tf.Tensor> = {};
  extensions.forEach((ext, k) => {
    const own: Record<string, number> = {};
    for (const spec of ext.inputs)
      for (const d of spec.shape.slice(1))
        if (typeof d === 'string') own[d] = sizes[ext.name]?.[d] ?? SYMBOL_SIZES[0];
    Object.assign(extra, ext.exampleInputs(batch, own, 51 + batch + 100 * k));
  });
  return {
    ...(extensions.length ? { extra } : {}),
    imageEmbeddings: tf.randomNormal(
      [batch, c.embedDim, EMBEDDING_SIZE, EMBEDDING_SIZE],
      0,
      1,
      'float32',
      11 + batch,
    ),
    boxes: tf.tensor2d(boxes, [batch, 4], 'float32'),
    clipImage: tf.randomNormal([batch, c.clipDim], 0, 1, 'float32', 21 + batch),
    clipText: tf.randomNormal([batch, c.clipDim], 0, 1, 'float32', 31 + batch),
    categoryIdx: tf.tensor1d(
      Array.from({ length: batch }, (_, i) => (3 * i + 1) % c.numCategories),
      'int32',
    ),
    crops: tf.randomUniform([batch, 3, CROP_SIZE, CROP_SIZE], 0, 1, 'float32', 41 + batch),
  };
}

function disposeAll(...groups: (tf.Tensor[] | DecoderTensors | tf.Tensor)[]): void {
  for (const g of groups) {
    if (g instanceof tf.Tensor) g.dispose();
    else if (Array.isArray(g)) tf.dispose(g);
    else {
      const { extra, ...base } = g;
      tf.dispose(Object.values(base));
      if (extra) tf.dispose(Object.values(extra));
    }
  }
}

export interface ExportGraphOptions {
  /** The two batch sizes traced (default [1, 2]). */
  batches?: [number, number];
  /**
   * int8 weights: the large MatMuls with activations quantized at run time, and with
   * `convRanges` the large convolutions as static QLinearConv.
   */
  quantize?: 'int8';
  /** Calibrated ranges of the graph's candidate convolutions (see calibration in the runtime). */
  convRanges?: readonly ConvActivationRange[];
  /** Export the float graph with the candidate convolutions' inputs and outputs as outputs. */
  probeConvs?: boolean;
}

/** The graph options that pass through to buildOnnx unchanged. */
function quantizationOptions(options: ExportGraphOptions) {
  return {
    ...(options.quantize ? { quantize: options.quantize } : {}),
    ...(options.convRanges ? { convRanges: options.convRanges } : {}),
    ...(options.probeConvs ? { probeConvs: true } : {}),
  };
}

/** The image encoder as an ONNX model: `image` (N,3,256,256) → `image_embeddings` (N,C,64,64). */
export function exportEncoder(model: McpMedsam, options: ExportGraphOptions = {}): BuiltGraph {
  const [b1, b2] = options.batches ?? [1, 2];
  const traces = [b1, b2].map((b) => {
    const image = exampleImage(b, model.config.imageSize);
    const r = traceEncoder(model, image);
    disposeAll(image, r.results);
    return r.trace;
  });
  return buildOnnx(traces[0], traces[1], {
    name: `mcp_medsam_image_encoder_${model.config.name}`,
    inputs: ENCODER_INPUTS.map((name) => ({ name })),
    outputs: [...ENCODER_OUTPUTS],
    batches: [b1, b2],
    metadata: { preset: model.config.name, ...(options.quantize ? { quantization: options.quantize } : {}) },
    ...quantizationOptions(options),
  });
}

/**
 * The prompt encoder and mask decoder as an ONNX model (see DECODER_INPUTS / DECODER_OUTPUTS),
 * with one more input per prompt-extension input; their symbolic dims are dynamic (one more
 * trace each).
 */
export function exportDecoder(model: McpMedsam, options: ExportGraphOptions = {}): BuiltGraph {
  const [b1, b2] = options.batches ?? [1, 2];
  const traceAt = (b: number, sizes: Record<string, Record<string, number>> = {}) => {
    const inputs = exampleDecoderInputs(model, b, sizes);
    const r = traceDecoder(model, inputs);
    disposeAll(inputs, r.results);
    return r.trace;
  };
  const traces = [b1, b2].map((b) => traceAt(b));
  const symbols: GraphSymbol[] = extensionSymbols(model).map((s) => ({
    name: s.graphName,
    trace: traceAt(b1, { [s.extension]: { [s.symbol]: SYMBOL_SIZES[1] } }),
    values: SYMBOL_SIZES,
    input: s.input,
    axis: s.axis,
  }));
  const extensions = model.promptExtensions.map((e) => e.name);
  return buildOnnx(traces[0], traces[1], {
    name: `mcp_medsam_prompt_decoder_${model.config.name}`,
    inputs: [
      ...DECODER_INPUTS.map((name) => ({
        name,
        dtype: name === 'category_idx' ? ('int64' as const) : undefined,
      })),
      ...extensionGraphInputs(model).map((x) => ({ name: x.spec.name })),
    ],
    outputs: [...DECODER_OUTPUTS],
    batches: [b1, b2],
    metadata: {
      preset: model.config.name,
      ...(options.quantize ? { quantization: options.quantize } : {}),
      ...(extensions.length ? { prompt_extensions: extensions.join(',') } : {}),
    },
    ...quantizationOptions(options),
    ...(symbols.length ? { symbols } : {}),
  });
}

export interface ExportOnnxOptions extends Omit<ExportGraphOptions, 'convRanges' | 'probeConvs'> {
  outDir: string;
  /**
   * With `quantize: 'int8'`: calibrated ranges of the decoder's convolutions, which then run as
   * static int8 QLinearConv (the runtime's `exportCheckpoint` measures them).
   */
  decoderConvRanges?: readonly ConvActivationRange[];
  /** Export the float decoder with its convolutions' inputs and outputs as outputs (calibration). */
  probeDecoderConvs?: boolean;
  /** Where `decoderConvRanges` were measured, recorded in the manifest's `int8.calibration`. */
  calibration?: Record<string, string | number>;
}

export interface ExportOnnxResult {
  encoder: string;
  decoder: string;
  manifest: string;
}

function ioJson(v: ValueInfoProto[]) {
  const types: Record<number, string> = { 1: 'float32', 6: 'int32', 7: 'int64', 9: 'bool' };
  return v.map((x) => ({ name: x.name, dtype: types[x.elemType] ?? String(x.elemType), shape: x.shape }));
}

/**
 * The manifest's `promptExtensions` (only when the model has any): each extension's inputs with
 * the dtype and shape the decoder graph declares for them.
 */
function promptExtensionsManifest(model: McpMedsam, decoder: BuiltGraph) {
  if (!model.promptExtensions.length) return {};
  const graphInputs = new Map(ioJson(decoder.inputs).map((x) => [x.name, x]));
  return {
    promptExtensions: model.promptExtensions.map((ext) => ({
      name: ext.name,
      inputs: ext.inputs.map((spec) => ({
        ...graphInputs.get(spec.name)!,
        ...(spec.description ? { description: spec.description } : {}),
      })),
    })),
  };
}

/**
 * Writes `image_encoder.onnx`, `prompt_decoder.onnx` and `manifest.json` to `outDir`. Trace on
 * the cpu backend (`initBackend({ backend: 'cpu' })`) for the reference numerics; the model's
 * modes are left as they were.
 */
export function exportOnnx(model: McpMedsam, options: ExportOnnxOptions): ExportOnnxResult {
  mkdirSync(options.outDir, { recursive: true });
  const { decoderConvRanges, probeDecoderConvs, calibration, ...graphOptions } = options;
  const encoder = exportEncoder(model, graphOptions);
  const encoderPath = path.join(options.outDir, 'image_encoder.onnx');
  writeFileSync(encoderPath, encoder.bytes);
  const decoder = exportDecoder(model, {
    ...graphOptions,
    ...(decoderConvRanges ? { convRanges: decoderConvRanges } : {}),
    ...(probeDecoderConvs ? { probeConvs: true } : {}),
  });
  const decoderPath = path.join(options.outDir, 'prompt_decoder.onnx');
  writeFileSync(decoderPath, decoder.bytes);
  const c = model.config;
  const manifest = {
    format: 'mcp-medsam-onnx',
    version: 1,
    producer: PRODUCER,
    preset: c.name,
    quantization: options.quantize ?? null,
    // What runs in int8: dynamic MatMuls in both graphs, static convolutions when calibrated.
    ...(options.quantize
      ? {
          int8: {
            encoder: encoder.quantized,
            decoder: decoder.quantized,
            ...(calibration ? { calibration } : {}),
          },
        }
      : {}),
    opset: OPSET,
    irVersion: IR_VERSION,
    files: {
      image_encoder: {
        file: 'image_encoder.onnx',
        inputs: ioJson(encoder.inputs),
        outputs: ioJson(encoder.outputs),
      },
      prompt_decoder: {
        file: 'prompt_decoder.onnx',
        inputs: ioJson(decoder.inputs),
        outputs: ioJson(decoder.outputs),
      },
    },
    preprocessing: {
      imageSize: c.imageSize,
      image:
        'float32 (B,3,256,256): longest side resized to 256 (INTER_AREA), min-max normalised to [0,1], zero-padded bottom/right',
      embeddingSize: EMBEDDING_SIZE,
      embedDim: c.embedDim,
      cropSize: CROP_SIZE,
      crops: 'the box crop at original resolution, [0,1], resized to 64x64 (antialiased bilinear), NCHW',
      clipImageSize: CLIP_IMAGE_SIZE,
      clipDim: c.clipDim,
      boxes: '[x0, y0, x1, y1] in the 256 frame',
      lowResLogits: 'crop to the resized extent, bilinear-resize to the original size, sigmoid > 0.5',
    },
    modalities: MODALITIES.map((name, index) => ({ index, name, text: `${name} Image` })),
    ...promptExtensionsManifest(model, decoder),
  };
  const manifestPath = path.join(options.outDir, 'manifest.json');
  writeFileSync(manifestPath, JSON.stringify(manifest, null, 2) + '\n');
  return { encoder: encoderPath, decoder: decoderPath, manifest: manifestPath };
}
