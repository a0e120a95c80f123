// The NIfTI example on a synthetic CT volume and a tiny seeded model: the mask NIfTI has the
// volume's grid and affine, labels only between the box's end slices, and is the runtime API's segs.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { InputError, initBackend, nn } from '@mcp-medsam/core';
import { writeStandinClip } from '@mcp-medsam/exporter';
import { ndarray, readChallengeCase, readNiftiFile, writeNiftiFile } from '@mcp-medsam/io';
import { McpMedsam, TINY, saveWeights } from '@mcp-medsam/model';
import { OnnxClipVision, TextFeatureTable } from '@mcp-medsam/prompts';
import { MedsamPredictor, exportCheckpoint, loadEngine } from '@mcp-medsam/runtime';
import { main } from '../run.mjs';

const dir = mkdtempSync(path.join(tmpdir(), 'mcp-medsam-nifti-'));
const weights = path.join(dir, 'tiny.safetensors');
const onnxDir = path.join(dir, 'onnx');
const clipDir = path.join(dir, 'clip');
const volume = path.join(dir, 'ct.nii.gz');
const [D, H, W] = [12, 96, 96];
const BOX = [22, 24, 2, 78, 72, 10]; // x0,y0,z0,x1,y1,z1 around the ellipsoid
// RAS affine of an LPS scan: x and y flipped, 0.75 mm pixels, 2.5 mm slices, an offset origin.
const AFFINE = [
  [-0.75, 0, 0, 36],
  [0, -0.75, 0, 40.5],
  [0, 0, 2.5, -120],
  [0, 0, 0, 1],
];

/** CT-like HU: air outside a round body, soft tissue (+20) with texture, a bright ellipsoid (+160). */
function syntheticVolume() {
  const hu = ndarray('int16', [D, H, W]);
  for (let z = 0; z < D; z++)
    for (let y = 0; y < H; y++)
      for (let x = 0; x < W; x++) {
        const body = (x - 48) ** 2 + (y - 48) ** 2 < 44 ** 2;
        const organ = ((x - 50) / 26) ** 2 + ((y - 48) / 22) ** 2 + ((z - 6) / 4.5) ** 2 < 1;
        const texture = ((x * 7 + y * 13 + z * 5) % 31) - 15;
        hu.data[(z * H + y) * W + x] = body ? (organ ? 160 : 20) + texture : -1000;
      }
  return hu;
}

afterAll(() => rmSync(dir, { recursive: true, force: true }));

beforeAll(async () => {
  await initBackend({ backend: 'wasm', log: null });
  nn.setInitSeed(9);
  const model = new McpMedsam(TINY);
  await saveWeights(model, weights);
  model.dispose();
  await exportCheckpoint(weights, onnxDir);
  await writeStandinClip(clipDir);
  await writeNiftiFile(volume, syntheticVolume(), { affine: AFFINE });
}, 120_000);

describe('nifti example', () => {
  const run = (...args: string[]) =>
    main(['--image', volume, '--model', onnxDir, '--clip', clipDir, '--threads', '1', ...args]);

  test('the mask NIfTI: same grid and affine, labels inside the box slices, equal to the runtime API', async () => {
    const out = path.join(dir, 'ct-mask.nii.gz');
    const r = await run('--box', BOX.join(','), '--out', out, '--work', path.join(dir, 'work'));
    const input = await readNiftiFile(volume);
    const mask = await readNiftiFile(out);
    expect(mask.array.shape).toEqual([D, H, W]);
    expect(mask.array.dtype).toBe('uint8');
    expect(mask.affine).toEqual(input.affine);
    expect(mask.spacing).toEqual(input.spacing);

    // By default the box's end slices z0 and z1 are not segmented (the original's rule).
    const perSlice = Array.from({ length: D }, (_, z) =>
      mask.array.data.subarray(z * H * W, (z + 1) * H * W).reduce((n, v) => n + (v ? 1 : 0), 0),
    );
    const [z0, z1] = [BOX[2], BOX[5]];
    perSlice.forEach((n, z) => (z <= z0 || z >= z1 ? expect(n, `slice ${z}`).toBe(0) : undefined));
    expect(perSlice.slice(z0 + 1, z1).every((n) => n > 0)).toBe(true);
    expect(new Set(mask.array.data)).toEqual(new Set([0, 1]));

    // The same case through the runtime API.
    const c = await readChallengeCase(r.case);
    const predictor = new MedsamPredictor(
      await loadEngine({ model: onnxDir, threads: 1 }),
      await OnnxClipVision.create(path.join(clipDir, 'vision.onnx')),
      await TextFeatureTable.fromFile(path.join(clipDir, 'text-features.json')),
    );
    try {
      const direct = await predictor.segment({ imgs: c.imgs, boxes: c.boxes!, modality: 'CT', dims: 3 });
      expect(Array.from(c.boxes!.data, Number)).toEqual(BOX);
      expect(Array.from(mask.array.data)).toEqual(Array.from(direct.segs.data));
    } finally {
      await predictor.close();
    }
  });

  test('boxes that do not fit the volume are InputErrors from convert', async () => {
    const work = path.join(dir, 'work-bad');
    const fails = async (box: string, message: RegExp) => {
      const err = await run('--box', box, '--work', work).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(InputError);
      expect((err as Error).message).toMatch(message);
    };
    await fails('22,24,2,78,72,12', /z must lie in \[0, 11\]: the volume has 12 slices/);
    await fails('78,24,2,22,72,10', /inverted \(x_max < x_min\)/);
    await fails('22,24,78,72', /a 3D case takes 6 values/);
    await expect(main(['--image', volume])).rejects.toThrow(/usage: node run\.mjs --image/);
  });
});
