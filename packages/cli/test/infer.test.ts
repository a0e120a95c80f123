// `mcp-medsam export` and `mcp-medsam infer` end to end on the tiny preset: both engines write
// the same masks, a broken case is reported while the others are still segmented.
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, beforeAll, describe, expect, test } from 'vitest';
import { initBackend, nn } from '@mcp-medsam/core';
import { readNpzFile } from '@mcp-medsam/io';
import { McpMedsam, TINY, saveWeights } from '@mcp-medsam/model';
import { readManifest } from '@mcp-medsam/runtime';
import { sharedPath } from '../../../test-utils/shared.js';
import { buildProgram } from '../src/main.js';

const dir = mkdtempSync(path.join(tmpdir(), 'mcp-medsam-cli-infer-'));
const weights = path.join(dir, 'tiny.safetensors');
const exportDir = path.join(dir, 'export');
const input = path.join(dir, 'input');
const CASES = ['2D_XRay_cxr-pneumonia-day0.npz', '3D_CT_lesion-000015.npz'];

async function cli(...args: string[]): Promise<void> {
  await buildProgram()
    .exitOverride()
    .parseAsync(['node', 'mcp-medsam', ...args]);
}

function clipFlags(): string[] {
  return [
    '--clip-vision',
    sharedPath('fixtures/clip-standin/vision.onnx'),
    '--clip-text',
    sharedPath('fixtures/clip-standin/text-features.json'),
  ];
}

beforeAll(async () => {
  await initBackend({ backend: 'wasm', log: null });
  nn.setInitSeed(5);
  const model = new McpMedsam(TINY);
  await saveWeights(model, weights);
  model.dispose();
  mkdirSync(input);
  for (const c of CASES) copyFileSync(sharedPath(`fixtures/e2e/input/${c}`), path.join(input, c));
  // A truncated file sorted between the two good cases.
  writeFileSync(
    path.join(input, '2D_XRay_zz-broken.npz'),
    readFileSync(path.join(input, CASES[0])).subarray(0, 500),
  );
}, 300_000);

afterEach(() => {
  process.exitCode = undefined;
});

describe('export and infer (tiny)', () => {
  test('export writes both graphs and a manifest the runtime reads', async () => {
    await cli('export', '--weights', weights, '--out', exportDir);
    const m = await readManifest(exportDir);
    expect(m.preset).toBe('tiny');
    expect(m.embedDim).toBe(TINY.embedDim);
    expect(m.quantization).toBeNull();
  }, 300_000);

  test('onnx and tfjs engines segment every good case alike; the broken one is reported', async () => {
    const outs: Record<string, string> = {};
    for (const engine of ['onnx', 'tfjs']) {
      outs[engine] = path.join(dir, `out-${engine}`);
      const model = engine === 'onnx' ? exportDir : weights;
      await cli(
        'infer',
        '--model',
        model,
        '--engine',
        engine,
        '--input',
        input,
        '--output',
        outs[engine],
        '--threads',
        '1',
        ...clipFlags(),
      );
      expect(process.exitCode).toBe(1);
      const csv = readFileSync(path.join(outs[engine], 'efficiency.csv'), 'utf8').trim().split('\n');
      expect(csv[0]).toBe('case,time');
      expect(csv.slice(1).map((l) => l.split(',')[0])).toEqual(CASES);
      process.exitCode = undefined;
    }
    for (const c of CASES) {
      const src = await readNpzFile(path.join(input, c));
      const a = (await readNpzFile(path.join(outs.onnx, c))).segs;
      const b = (await readNpzFile(path.join(outs.tfjs, c))).segs;
      expect(a.dtype).toBe('uint8');
      expect(a.shape).toEqual(c.startsWith('3D') ? src.imgs.shape : src.imgs.shape.slice(0, 2));
      let differ = 0;
      for (let i = 0; i < a.data.length; i++) if (a.data[i] !== b.data[i]) differ++;
      // Pixels on the 0.5 crossing may flip between engines; a handful at most.
      expect(differ).toBeLessThan(a.data.length * 1e-4);
    }
  }, 600_000);

  test('bad flags and models give errors naming the problem', async () => {
    const base = ['infer', '--input', input, '--output', path.join(dir, 'x'), ...clipFlags()];
    await expect(cli(...base, '--model', exportDir, '--engine', 'torch')).rejects.toThrow(/--engine must be/);
    await expect(cli(...base, '--model', exportDir, '--threads', '0')).rejects.toThrow(
      /--threads must be a positive/,
    );
    await expect(cli(...base, '--model', exportDir, '--engine', 'tfjs')).rejects.toThrow(/no tfjs weights/);
    await expect(cli(...base, '--model', path.join(dir, 'missing'))).rejects.toThrow(/no such model/);
    await expect(
      cli('export', '--weights', weights, '--out', path.join(dir, 'q'), '--quantize', 'int4'),
    ).rejects.toThrow(/--quantize must be 'int8'/);
    const q = ['export', '--weights', weights, '--out', path.join(dir, 'q')];
    await expect(cli(...q, '--calibration-data', input)).rejects.toThrow(
      /--calibration-data, --clip-vision, --clip-text and --no-calibration need --quantize int8/,
    );
    await expect(
      cli(...q, '--quantize', 'int8', '--no-calibration', '--calibration-data', input),
    ).rejects.toThrow(/--no-calibration cannot be combined/);
    await expect(
      cli(...q, '--quantize', 'int8', '--clip-vision', sharedPath('fixtures/clip-standin/vision.onnx')),
    ).rejects.toThrow(/give both --clip-vision and --clip-text/);
  }, 120_000);

  test('export --quantize int8 stores 8-bit weights and segments the same cases', async () => {
    const q = path.join(dir, 'export-int8');
    await cli('export', '--weights', weights, '--out', q, '--quantize', 'int8');
    expect((await readManifest(q)).quantization).toBe('int8');
    // Calibrated on the synthetic set by default; the tiny preset's convolutions are all too
    // small to quantize, so they stay float.
    const manifest = JSON.parse(readFileSync(path.join(q, 'manifest.json'), 'utf8'));
    expect(manifest.int8.calibration).toMatchObject({ source: 'synthetic', clip: 'stand-in', cases: 17 });
    expect(manifest.int8.decoder.staticConv).toBe(0);
    const q2 = path.join(dir, 'export-int8-calibrated');
    await cli(
      'export',
      '--weights',
      weights,
      '--out',
      q2,
      '--quantize',
      'int8',
      '--calibration-data',
      input,
      ...clipFlags(),
    );
    expect(JSON.parse(readFileSync(path.join(q2, 'manifest.json'), 'utf8')).int8.calibration).toMatchObject({
      source: 'input',
      clip: 'given',
      cases: 2,
      skipped: 1, // the truncated case
    });
    const out = path.join(dir, 'out-int8');
    await cli('infer', '--model', q, '--input', input, '--output', out, '--threads', '1', ...clipFlags());
    for (const c of CASES) expect((await readNpzFile(path.join(out, c))).segs.dtype).toBe('uint8');
  }, 600_000);
});
