// MCP-MedSAM → ONNX: the image encoder and the prompt decoder (prompt encoder + mask decoder),
// each traced from the tfjs model at two batch sizes and written with a dynamic batch axis.
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { MODALITIES, tf } from '@mcp-medsam/core';
import type { Module } from '@mcp-medsam/core';
import { CROP_SIZE, EMBEDDING_SIZE } from '@mcp-medsam/model';
import type { McpMedsam } from '@mcp-medsam/model';
import type { BuiltGraph } from './graph.js';
import { buildOnnx, IR_VERSION, OPSET, PRODUCER } from './graph.js';
import type { ValueInfoProto } from './onnx/proto.js';
import type { Trace } from './trace.js';
import { traceKernels } from './trace.js';

/** Side of the square CLIP ViT-B/32 input the content-prompt features are computed from. */
export const CLIP_IMAGE_SIZE = 224;

export const ENCODER_INPUTS = ['image'] as const;
export const ENCODER_OUTPUTS = ['image_embeddings'] as const;
export const DECODER_INPUTS = [
  'image_embeddings',
  'boxes',
  'clip_image',
  'clip_text',
  'category_idx',
  'crops',
] as const;
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

/** Traces `decode` (prompt encoder and mask decoder); the results are low_res_logits and iou. */
export function traceDecoder(model: McpMedsam, t: DecoderTensors): TraceResult {
  let trace: Trace | undefined;
  const results = inEvalMode(model, () => {
    const out: tf.Tensor[] = [];
    trace = traceKernels(
      (emb, boxes, clipImage, clipText, categoryIdx, crops) => {
        const kept = tf.tidy(() => {
          const d = model.decode(tf.transpose(emb, [0, 2, 3, 1]), {
            boxes,
            clipImage,
            clipText,
            categoryIdx,
            crops,
          });
          return [d.lowResLogits, d.iou];
        });
        out.push(...kept);
        return out;
      },
      [t.imageEmbeddings, t.boxes, t.clipImage, t.clipText, t.categoryIdx, t.crops],
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

/** Deterministic example decoder inputs with valid boxes and categories. */
export function exampleDecoderInputs(model: McpMedsam, batch: number): DecoderTensors {
  const c = model.config;
  const boxes = Array.from({ length: batch }, (_, i) => [10 + 7 * i, 20 + 3 * i, 120 + 11 * i, 200 - 5 * i]);
  return {
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
    else tf.dispose(Object.values(g));
  }
}

export interface ExportGraphOptions {
  /** The two batch sizes traced (default [1, 2]). */
  batches?: [number, number];
  /** Dynamic int8 quantization of the large MatMul and Conv weights. */
  quantize?: 'int8';
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
    ...(options.quantize ? { quantize: options.quantize } : {}),
  });
}

/** The prompt encoder and mask decoder as an ONNX model (see DECODER_INPUTS / DECODER_OUTPUTS). */
export function exportDecoder(model: McpMedsam, options: ExportGraphOptions = {}): BuiltGraph {
  const [b1, b2] = options.batches ?? [1, 2];
  const traces = [b1, b2].map((b) => {
    const inputs = exampleDecoderInputs(model, b);
    const r = traceDecoder(model, inputs);
    disposeAll(inputs, r.results);
    return r.trace;
  });
  return buildOnnx(traces[0], traces[1], {
    name: `mcp_medsam_prompt_decoder_${model.config.name}`,
    inputs: DECODER_INPUTS.map((name) => ({ name, dtype: name === 'category_idx' ? 'int64' : undefined })),
    outputs: [...DECODER_OUTPUTS],
    batches: [b1, b2],
    metadata: { preset: model.config.name, ...(options.quantize ? { quantization: options.quantize } : {}) },
    ...(options.quantize ? { quantize: options.quantize } : {}),
  });
}

export interface ExportOnnxOptions extends ExportGraphOptions {
  outDir: string;
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
 * Writes `image_encoder.onnx`, `prompt_decoder.onnx` and `manifest.json` to `outDir`. Trace on
 * the cpu backend (`initBackend({ backend: 'cpu' })`) for the reference numerics; the model's
 * modes are left as they were.
 */
export function exportOnnx(model: McpMedsam, options: ExportOnnxOptions): ExportOnnxResult {
  mkdirSync(options.outDir, { recursive: true });
  const encoder = exportEncoder(model, options);
  const encoderPath = path.join(options.outDir, 'image_encoder.onnx');
  writeFileSync(encoderPath, encoder.bytes);
  const decoder = exportDecoder(model, options);
  const decoderPath = path.join(options.outDir, 'prompt_decoder.onnx');
  writeFileSync(decoderPath, decoder.bytes);
  const c = model.config;
  const manifest = {
    format: 'mcp-medsam-onnx',
    version: 1,
    producer: PRODUCER,
    preset: c.name,
    quantization: options.quantize ?? null,
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
  };
  const manifestPath = path.join(options.outDir, 'manifest.json');
  writeFileSync(manifestPath, JSON.stringify(manifest, null, 2) + '\n');
  return { encoder: encoderPath, decoder: decoderPath, manifest: manifestPath };
}
