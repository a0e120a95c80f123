// The quickstart script on a tiny seeded model: the PNG it writes is the runtime API's mask, and
// bad inputs fail early with the project's typed errors.
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, test, vi } from 'vitest';
import { InputError, initBackend, nn } from '@mcp-medsam/core';
import { writeStandinClip } from '@mcp-medsam/exporter';
import { ndarray, readImageFile, writePngFile, type NdArray } from '@mcp-medsam/io';
import { McpMedsam, TINY, saveWeights } from '@mcp-medsam/model';
import { OnnxClipVision, StandinClipVision, TextFeatureTable, standinTextTable } from '@mcp-medsam/prompts';
import { MedsamPredictor, exportCheckpoint, loadEngine, type EngineName } from '@mcp-medsam/runtime';
import { main } from '../segment.mjs';

const dir = mkdtempSync(path.join(tmpdir(), 'mcp-medsam-quickstart-'));
const weights = path.join(dir, 'tiny.safetensors');
const onnxDir = path.join(dir, 'onnx');
const clipDir = path.join(dir, 'clip');
const image = path.join(dir, 'slice.png');
const [H, W] = [120, 160];
const BOX = [40, 30, 120, 90];

/** A CT-like grey slice: noisy tissue and a brighter ellipse inside BOX. */
function syntheticSlice(): NdArray<'uint8'> {
  const img = ndarray('uint8', [H, W]);
  for (let y = 0; y < H; y++)
    for (let x = 0; x < W; x++) {
      const organ = ((x - 80) / 34) ** 2 + ((y - 60) / 24) ** 2 < 1;
      img.data[y * W + x] = (organ ? 180 : 70) + ((x * 7 + y * 13) % 23);
    }
  return img;
}

/** The mask the runtime API gives for the same image, box, model and CLIP (files, else the stand-in). */
async function directSegs(
  model: string,
  engine: EngineName,
  clip: string | null = clipDir,
): Promise<NdArray> {
  const predictor = new MedsamPredictor(
    await loadEngine({ model, engine, threads: 1 }),
    clip ? await OnnxClipVision.create(path.join(clip, 'vision.onnx')) : new StandinClipVision(),
    clip ? await TextFeatureTable.fromFile(path.join(clip, 'text-features.json')) : standinTextTable(),
  );
  try {
    const imgs = (await readImageFile(image)).array; // (H,W) grey: the script feeds it as (H,W,3)
    const boxes = ndarray('int32', [1, 4], Int32Array.from(BOX));
    return (await predictor.segment({ imgs, boxes, modality: 'CT', dims: 2 })).segs;
  } finally {
    await predictor.close();
  }
}

afterAll(() => rmSync(dir, { recursive: true, force: true }));

beforeAll(async () => {
  await initBackend({ backend: 'wasm', log: null });
  nn.setInitSeed(9); // a seed whose random weights give a mask neither empty nor full
  const model = new McpMedsam(TINY);
  await saveWeights(model, weights);
  model.dispose();
  await exportCheckpoint(weights, onnxDir);
  await writeStandinClip(clipDir);
  await writePngFile(image, syntheticSlice());
}, 120_000);

describe('quickstart', () => {
  const run = (...args: string[]) => main(['--image', image, '--clip', clipDir, '--threads', '1', ...args]);

  for (const engine of ['onnx', 'tfjs'] as const) {
    test(`${engine}: the mask PNG is binary, image-sized and the runtime API's mask`, async () => {
      const out = path.join(dir, `mask-${engine}.png`);
      const model = engine === 'onnx' ? onnxDir : weights;
      const log = vi.spyOn(console, 'log').mockImplementation(() => undefined);
      const r = await run('--box', BOX.join(','), '--out', out, '--model', model, '--engine', engine);
      expect(log).toHaveBeenCalledWith(
        expect.stringMatching(
          new RegExp(`^${out}: ${r.area} pixels .* segmented in [0-9.]+ s \\(${engine} model`),
        ),
      );
      log.mockRestore();
      const png = (await readImageFile(out)).array;
      expect(png.shape).toEqual([H, W]);
      expect(png.dtype).toBe('uint8');
      expect(new Set(png.data)).toEqual(new Set([0, 255]));
      const segs = await directSegs(model, engine);
      expect(Array.from(png.data)).toEqual(Array.from(segs.data, (v) => (v ? 255 : 0)));
      expect(r.area).toBe(png.data.filter((v) => v === 255).length);
      expect(r.area).toBeGreaterThan(0);
      expect(r.area).toBeLessThan(H * W);
    });
  }

  test('without a CLIP folder (no demo-output here) the stand-in in memory is used', async () => {
    const cwd = process.cwd();
    const log = vi.spyOn(console, 'log').mockImplementation(() => undefined);
    process.chdir(dir); // the default paths are relative: demo-output/ does not exist in dir
    try {
      const out = path.join(dir, 'mask-standin.png');
      await main(['--image', image, '--box', BOX.join(','), '--out', out, '--model', onnxDir]);
      expect(log).toHaveBeenCalledWith(
        expect.stringMatching(/^no CLIP folder: using the seeded CLIP stand-in/),
      );
      const png = (await readImageFile(out)).array;
      const segs = await directSegs(onnxDir, 'onnx', null);
      expect(Array.from(png.data)).toEqual(Array.from(segs.data, (v) => (v ? 255 : 0)));
    } finally {
      process.chdir(cwd);
      log.mockRestore();
    }
  });

  test('bad boxes and missing files are InputErrors naming the problem, before any model loads', async () => {
    const out = path.join(dir, 'never.png');
    const fails = async (args: string[], message: RegExp) => {
      const err = await main(['--out', out, '--clip', clipDir, '--model', onnxDir, ...args]).catch(
        (e: unknown) => e,
      );
      expect(err).toBeInstanceOf(InputError);
      expect((err as Error).message).toMatch(message);
    };
    const png = image.replace(/[.]/g, '\\.');
    await fails(
      ['--image', image, '--box', '120,30,40,90'],
      new RegExp(`^${png}: box 0 \\[120, 30, 40, 90\\] is inverted \\(x_max < x_min\\)`),
    );
    await fails(
      ['--image', image, '--box', '40,30,200,90'],
      /box 0 \[40, 30, 200, 90\] is out of bounds \(x must lie in \[0, 160\]\)/,
    );
    await fails(
      ['--image', image, '--box', '40,30,120'],
      /--box '40,30,120' must be four integers x0,y0,x1,y1/,
    );
    await fails(
      ['--image', path.join(dir, 'missing.png'), '--box', '1,1,9,9'],
      /missing\.png: cannot read file \(no such file\)/,
    );
    await fails(
      ['--image', image, '--box', BOX.join(','), '--model', path.join(dir, 'nope')],
      /nope: no such model/,
    );
    await fails(
      ['--image', image, '--box', BOX.join(','), '--clip', path.join(dir, 'no-clip')],
      /no-clip.text-features\.json: cannot read text-feature table \(no such file\)/,
    );
    await expect(main(['--box', '1,2,3,4'])).rejects.toThrow(/usage: node segment\.mjs --image/);
    expect(existsSync(out)).toBe(false);
  });
});
