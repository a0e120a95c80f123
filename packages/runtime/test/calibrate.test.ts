// int8 calibration (calibrate.ts) and the calibrated export: the ranges are the extremes of the
// probe outputs over every decoder run, the export runs the decoder's convolutions as QLinearConv
// and segments like the float export; bad calibration inputs give errors naming the problem.
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type * as Ort from 'onnxruntime-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { initBackend, nn } from '@mcp-medsam/core';
import {
  exportOnnx,
  parseConvProbeName,
  writeStandinClip,
  type StandinClipFiles,
} from '@mcp-medsam/exporter';
import { readChallengeCase, writeSyntheticDataset, type SyntheticDataset } from '@mcp-medsam/io';
import { McpMedsam, TINY } from '@mcp-medsam/model';
import { OnnxClipVision, TextFeatureTable } from '@mcp-medsam/prompts';
import {
  calibrateDecoderConvs,
  exportModel,
  MedsamPredictor,
  modalityToken,
  OnnxEngine,
  readManifest,
} from '../src/index.js';

// Decoder convolutions 48→48 are large enough to be quantized (13 of them; see the exporter's
// static_conv test).
const WIDE = { ...TINY, name: 'tiny-wide', embedDim: 48 };
const CANDIDATES = 13;

let dir: string;
let model: McpMedsam;
let probeDir: string;
let data: SyntheticDataset;
let clip: StandinClipFiles;

beforeAll(async () => {
  await initBackend({ backend: 'wasm', log: null });
  dir = await mkdtemp(path.join(os.tmpdir(), 'mcp-medsam-calibrate-'));
  nn.setInitSeed(3);
  model = new McpMedsam(WIDE);
  model.eval();
  probeDir = path.join(dir, 'probe');
  exportOnnx(model, { outDir: probeDir, probeDecoderConvs: true });
  // One 2D case with several boxes and one volume (3D propagation) as calibration data.
  data = await writeSyntheticDataset(path.join(dir, 'data'), {
    seed: 5,
    trainPerKind: 0,
    testPerKind: 1,
    kinds: ['Microscopy', 'MR'],
  });
  clip = await writeStandinClip(path.join(dir, 'clip'));
}, 300_000);

afterAll(async () => {
  model?.dispose();
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe('calibrateDecoderConvs', () => {
  it('returns the extremes of every probe over all decoder runs', { timeout: 300_000 }, async () => {
    const { ranges, summary } = await calibrateDecoderConvs(probeDir, {
      data: data.testDir,
      clipVision: clip.vision,
      clipText: clip.text,
      threads: 1,
    });
    expect(summary).toEqual({
      source: 'test',
      clip: 'given',
      cases: 2,
      skipped: 0,
      decoderRuns: expect.any(Number),
    });
    expect(ranges).toHaveLength(CANDIDATES);

    // The same cases through an engine that keeps every probe tensor.
    const seen: Record<string, Ort.Tensor>[] = [];
    const engine = await OnnxEngine.load(probeDir, { threads: 1, onDecoderOutputs: (o) => seen.push(o) });
    const predictor = new MedsamPredictor(
      engine,
      await OnnxClipVision.create(clip.vision, { threads: 1 }),
      await TextFeatureTable.fromFile(clip.text),
    );
    for (const file of data.test) {
      const c = await readChallengeCase(file);
      const modality = modalityToken(path.basename(file));
      await predictor.segment(
        { imgs: c.imgs, boxes: c.boxes!, modality, dims: c.dims },
        { inclusiveZ: true },
      );
    }
    await predictor.close();
    expect(seen.length).toBe(summary.decoderRuns);
    // The volume's slices are decoded one by one: more decoder runs than cases.
    expect(seen.length).toBeGreaterThan(2);
    const expected = Array.from({ length: CANDIDATES }, () => ({
      input: [Infinity, -Infinity],
      output: [Infinity, -Infinity],
    }));
    for (const out of seen)
      for (const [name, t] of Object.entries(out)) {
        const p = parseConvProbeName(name);
        if (!p) continue;
        const r = expected[p.k][p.side];
        for (const v of t.data as Float32Array) [r[0], r[1]] = [Math.min(r[0], v), Math.max(r[1], v)];
      }
    expect(ranges).toEqual(expected);
    for (const r of ranges) {
      expect(r.input[0]).toBeLessThan(r.input[1]);
      expect(r.output[0]).toBeLessThan(r.output[1]);
    }
  });

  it('names what is wrong with the calibration inputs', async () => {
    await expect(calibrateDecoderConvs(probeDir, { data: path.join(dir, 'missing') })).rejects.toThrow(
      /cannot list the calibration directory/,
    );
    await expect(calibrateDecoderConvs(probeDir, { clipVision: clip.vision })).rejects.toThrow(
      /both the CLIP image tower and the text table/,
    );
    const empty = path.join(dir, 'empty');
    await writeSyntheticDataset(empty, { trainPerKind: 1, testPerKind: 0, kinds: ['US'] });
    await expect(calibrateDecoderConvs(probeDir, { data: path.join(empty, 'test') })).rejects.toThrow(
      /no \.npz cases in the calibration directory/,
    );
    // Training-layout cases have no boxes: each is skipped, and with none left it is an error.
    await expect(calibrateDecoderConvs(probeDir, { data: path.join(empty, 'train') })).rejects.toThrow(
      /no calibration case could be used \(.*2D_US_synthetic-0\.npz: the case has no 'boxes' array\)/,
    );
  }, 120_000);
});

describe('exportModel with int8', () => {
  it(
    'calibrates on synthetic cases by default and segments like the float export',
    { timeout: 600_000 },
    async () => {
      const fp32 = path.join(dir, 'fp32');
      const int8 = path.join(dir, 'int8');
      await exportModel(model, fp32);
      await exportModel(model, int8, { quantize: 'int8' });
      const manifest = JSON.parse(await readFile(path.join(int8, 'manifest.json'), 'utf8'));
      expect(manifest.quantization).toBe('int8');
      expect(manifest.int8.decoder.staticConv).toBe(CANDIDATES);
      // The default set: six synthetic kinds at two seeds, and the five other modalities once.
      expect(manifest.int8.calibration).toMatchObject({ source: 'synthetic', clip: 'stand-in', cases: 17 });
      expect((await readManifest(int8)).quantization).toBe('int8');

      const masks: Uint8Array[] = [];
      const logits: Float32Array[][] = [];
      for (const d of [fp32, int8]) {
        const predictor = new MedsamPredictor(
          await OnnxEngine.load(d, { threads: 1 }),
          await OnnxClipVision.create(clip.vision, { threads: 1 }),
          await TextFeatureTable.fromFile(clip.text),
        );
        const c = await readChallengeCase(data.test[0]); // the 2D microscopy case, ten boxes
        const r = await predictor.segment(
          { imgs: c.imgs, boxes: c.boxes!, modality: 'Microscopy', dims: c.dims },
          { keepLogits: true },
        );
        masks.push(r.segs.data as Uint8Array);
        logits.push(r.lowResLogits!);
        await predictor.close();
      }
      let same = 0;
      for (let i = 0; i < masks[0].length; i++) if (masks[0][i] === masks[1][i]) same++;
      expect(same / masks[0].length).toBeGreaterThan(0.99);
      expect(logits[1].length).toBe(logits[0].length);
      for (const [i, ref] of logits[0].entries()) {
        const got = logits[1][i];
        let d = 0;
        for (let j = 0; j < ref.length; j++) d = Math.max(d, Math.abs(got[j] - ref[j]));
        expect(d).toBeGreaterThan(0);
        expect(d).toBeLessThan(0.5);
      }

      // calibration: false keeps the convolutions float (dynamic int8 MatMuls only).
      const dyn = path.join(dir, 'int8-dynamic');
      await exportModel(model, dyn, { quantize: 'int8', calibration: false });
      const m2 = JSON.parse(await readFile(path.join(dyn, 'manifest.json'), 'utf8'));
      expect(m2.int8.decoder.staticConv).toBe(0);
      expect(m2.int8.calibration).toBeUndefined();
    },
  );

  it('writes no partial export when calibration fails', async () => {
    const out = path.join(dir, 'int8-bad');
    await writeFile(path.join(dir, 'not-a-dir'), 'x');
    await expect(
      exportModel(model, out, { quantize: 'int8', calibration: { data: path.join(dir, 'not-a-dir') } }),
    ).rejects.toThrow(/cannot list the calibration directory/);
    await expect(readFile(path.join(out, 'manifest.json'))).rejects.toThrow(/ENOENT/);
  }, 120_000);
});
