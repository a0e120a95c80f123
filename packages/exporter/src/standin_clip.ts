/**
 * Writes the CLIP stand-in of `@mcp-medsam/prompts` as the two files the CLI, the trainer and the
 * runtime take for CLIP (`--clip-vision vision.onnx --clip-text text-features.json`), so a run
 * without pubmed-clip (the demo, the examples) still goes through the same code paths as a real one.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import {
  CLIP_FEATURE_DIM,
  CLIP_IMAGE_SIZE,
  STANDIN_POOL,
  STANDIN_POOLED,
  STANDIN_SEED,
  standinClipWeights,
  standinTextJSON,
  type StandinClipWeights,
} from '@mcp-medsam/prompts';
import { DataType, encodeModel, type TensorProto } from './onnx/proto.js';
import { IR_VERSION, OPSET, PRODUCER } from './graph.js';

export interface StandinClipFiles {
  vision: string;
  text: string;
}

function floatTensor(name: string, dims: number[], data: Float32Array): TensorProto {
  return {
    name,
    dataType: DataType.FLOAT,
    dims,
    raw: new Uint8Array(data.buffer, data.byteOffset, data.byteLength),
  };
}

/** The stand-in image tower as ONNX: `pixel_values` (N,3,224,224) → `image_embeds` (N,512). */
export function standinClipOnnx(weights: StandinClipWeights | number = STANDIN_SEED): Uint8Array {
  const w = typeof weights === 'number' ? standinClipWeights(weights) : weights;
  const seed = w.seed;
  const node = (opType: string, inputs: string[], outputs: string[], attributes = {}) => ({
    opType,
    inputs,
    outputs,
    name: `${opType}_${outputs[0]}`,
    attributes,
  });
  return encodeModel({
    irVersion: IR_VERSION,
    opsetVersion: OPSET,
    producerName: PRODUCER,
    producerVersion: '0.1.0',
    graph: {
      name: 'clip_standin_vision',
      docString: `CLIP image-tower stand-in (seed ${seed}): 28x28 average pooling, then a seeded linear map`,
      nodes: [
        node('AveragePool', ['pixel_values'], ['pooled'], {
          kernel_shape: { type: 'ints', value: [STANDIN_POOL, STANDIN_POOL] },
          strides: { type: 'ints', value: [STANDIN_POOL, STANDIN_POOL] },
        }),
        node('Flatten', ['pooled'], ['flat'], { axis: { type: 'int', value: 1 } }),
        node('MatMul', ['flat', 'proj_weight'], ['projected']),
        node('Add', ['projected', 'proj_bias'], ['image_embeds']),
      ],
      initializers: [
        floatTensor('proj_weight', [STANDIN_POOLED, CLIP_FEATURE_DIM], w.projWeight),
        floatTensor('proj_bias', [CLIP_FEATURE_DIM], w.projBias),
      ],
      inputs: [
        {
          name: 'pixel_values',
          elemType: DataType.FLOAT,
          shape: ['batch', 3, CLIP_IMAGE_SIZE, CLIP_IMAGE_SIZE],
        },
      ],
      outputs: [{ name: 'image_embeds', elemType: DataType.FLOAT, shape: ['batch', CLIP_FEATURE_DIM] }],
    },
    metadata: { model: 'standin', seed: String(seed) },
  });
}

/** Writes `vision.onnx` and `text-features.json` of the stand-in into `dir`. */
export async function writeStandinClip(dir: string, seed = STANDIN_SEED): Promise<StandinClipFiles> {
  await mkdir(dir, { recursive: true });
  const files = { vision: path.join(dir, 'vision.onnx'), text: path.join(dir, 'text-features.json') };
  const weights = standinClipWeights(seed);
  await writeFile(files.vision, standinClipOnnx(weights));
  await writeFile(files.text, JSON.stringify(standinTextJSON(weights)) + '\n');
  return files;
}
