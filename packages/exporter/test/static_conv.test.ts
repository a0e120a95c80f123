// Static int8 convolutions (onnx/static_conv.ts): the probe outputs, the calibrated QLinearConv
// rewrite and its accuracy against the float graph, on a tiny model widened so that its decoder
// convolutions have enough weights to be quantized.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { initBackend, InputError, nn, tf } from '@mcp-medsam/core';
import { McpMedsam, TINY } from '@mcp-medsam/model';
import {
  convProbeNames,
  exampleDecoderInputs,
  exportDecoder,
  parseConvProbeName,
  uint8Params,
  type ConvActivationRange,
  type DecoderTensors,
} from '../src/index.js';
import { decoderFeeds, maxAbsDiff, session } from './ort.js';

// 3x3 convolutions 48→48 have 20,736 weights, above MIN_QUANTIZED_WEIGHTS (16,384).
const WIDE = { ...TINY, name: 'tiny-wide', embedDim: 48 };
// Decoder: the crop net's six 3x3 and one 5x5 convolution and the three DecBlocks' six 3x3
// ones (the crop net's first convolution, 3→48, is too small).
const CANDIDATES = 13;

let model: McpMedsam;
let inputs: DecoderTensors[];

beforeAll(async () => {
  // wasm: the same graph as the cpu backend traces, in a fraction of the time.
  await initBackend({ backend: 'wasm', log: null });
  nn.setInitSeed(11);
  model = new McpMedsam(WIDE);
  model.eval();
  // Two batches: ranges measured on the first, checked on both.
  inputs = [exampleDecoderInputs(model, 2), exampleDecoderInputs(model, 3)];
});

afterAll(() => {
  model?.dispose();
  for (const x of inputs ?? []) tf.dispose(Object.values(x).filter((t) => t instanceof tf.Tensor));
});

describe('uint8Params', () => {
  it('covers the range widened to include zero', () => {
    expect(uint8Params(-1, 3)).toEqual({ scale: Math.fround(4 / 255), zero: 64 });
    expect(uint8Params(0.5, 2)).toEqual({ scale: Math.fround(2 / 255), zero: 0 });
    expect(uint8Params(-2, -1)).toEqual({ scale: Math.fround(2 / 255), zero: 255 });
    expect(uint8Params(0, 0)).toEqual({ scale: 1, zero: 0 });
  });

  it('rejects empty and non-finite ranges', () => {
    expect(() => uint8Params(2, 1)).toThrow(InputError);
    expect(() => uint8Params(2, 1)).toThrow(/invalid calibration range \[2, 1\]/);
    expect(() => uint8Params(NaN, 1)).toThrow(/invalid calibration range/);
  });
});

describe('probe names', () => {
  it('round-trip and ignore other outputs', () => {
    expect(parseConvProbeName(convProbeNames(12).input)).toEqual({ k: 12, side: 'input' });
    expect(parseConvProbeName(convProbeNames(0).output)).toEqual({ k: 0, side: 'output' });
    expect(parseConvProbeName('low_res_logits')).toBeUndefined();
  });
});

describe('calibrated static int8 decoder convolutions', () => {
  let ranges: ConvActivationRange[];
  let float: { logits: Float32Array[]; iou: Float32Array[] };

  it(
    'a probed float graph outputs each candidate convolution input and output',
    { timeout: 300_000 },
    async () => {
      const probed = exportDecoder(model, { probeConvs: true });
      expect(probed.probes).toHaveLength(2 * CANDIDATES);
      expect(probed.probes.slice(0, 2)).toEqual([convProbeNames(0).input, convProbeNames(0).output]);
      const s = await session(probed.bytes);
      const out = await s.run(decoderFeeds(inputs[0]));
      ranges = Array.from({ length: CANDIDATES }, (_, k) => {
        const r = (name: string): [number, number] => {
          const d = out[name].data as Float32Array;
          let lo = Infinity;
          let hi = -Infinity;
          for (const v of d) [lo, hi] = [Math.min(lo, v), Math.max(hi, v)];
          return [lo, hi];
        };
        return { input: r(convProbeNames(k).input), output: r(convProbeNames(k).output) };
      });
      // A convolution's input is 4-D with the graph's batch (2) first and 48 channels.
      expect(Array.from(out[convProbeNames(1).input].dims)).toEqual([2, 48, 64, 64]);
      // The probes do not change the decoder's own outputs (up to onnxruntime fusing differently
      // around a tensor that is also a graph output).
      const plain = await session(exportDecoder(model).bytes);
      const ref = await plain.run(decoderFeeds(inputs[0]));
      expect(
        maxAbsDiff(out.low_res_logits.data as Float32Array, ref.low_res_logits.data as Float32Array),
      ).toBeLessThan(1e-5);
      float = { logits: [], iou: [] };
      for (const x of inputs) {
        const o = await plain.run(decoderFeeds(x));
        float.logits.push(o.low_res_logits.data as Float32Array);
        float.iou.push(o.iou.data as Float32Array);
      }
      await Promise.all([s.release(), plain.release()]);
    },
  );

  it('runs every candidate as QLinearConv, close to the float graph', { timeout: 300_000 }, async () => {
    const q = exportDecoder(model, { quantize: 'int8', convRanges: ranges });
    expect(q.quantized).toEqual({ matMul: expect.any(Number), staticConv: CANDIDATES });
    expect(q.ops.QLinearConv).toBe(CANDIDATES);
    // Only the small first crop-net convolution stays float.
    expect(q.ops.Conv).toBe(1);
    const s = await session(q.bytes);
    for (const [i, x] of inputs.entries()) {
      const out = await s.run(decoderFeeds(x));
      const logits = out.low_res_logits.data as Float32Array;
      const ref = float.logits[i];
      let scale = 0;
      for (const v of ref) scale = Math.max(scale, Math.abs(v));
      const err = maxAbsDiff(logits, ref);
      // int8 error: well under 5% of the logits' range, and not zero (the convolutions did change).
      expect(err).toBeGreaterThan(0);
      expect(err).toBeLessThan(0.05 * scale);
      let flips = 0;
      for (let j = 0; j < ref.length; j++) if (ref[j] > 0 !== logits[j] > 0) flips++;
      expect(flips / ref.length).toBeLessThan(0.01);
    }
    await s.release();
  });

  it('rejects ranges that do not fit the graph', () => {
    expect(() => exportDecoder(model, { quantize: 'int8', convRanges: ranges.slice(1) })).toThrow(InputError);
    expect(() => exportDecoder(model, { quantize: 'int8', convRanges: ranges.slice(1) })).toThrow(
      /calibration has 12 convolution ranges, the graph 13 candidate convolutions/,
    );
    expect(() => exportDecoder(model, { convRanges: ranges })).toThrow(/convRanges needs quantize: int8/);
    expect(() => exportDecoder(model, { quantize: 'int8', probeConvs: true })).toThrow(
      /probes are for the float graph only/,
    );
  });
});
