import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BackendError, FormatError, InputError } from '@mcp-medsam/core/common';
import { readNpzFile } from '@mcp-medsam/io';
import { sharedPath } from '../../../test-utils/shared.js';
import { CachedImageFeatures, OnnxClipVision, OnnxRunError, pixelsPerImage } from '../src/index.js';
import { tinyLinearOnnx } from './helpers/tiny_onnx.js';

const PER = pixelsPerImage(224);

function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  expect(a.length).toBe(b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

/** Run `fn`, expecting it to reject with `type`; returns the error for further checks. */
async function rejection<T extends Error>(
  fn: () => Promise<unknown>,
  type: new (...a: any[]) => T,
): Promise<T> {
  try {
    await fn();
  } catch (e) {
    expect(e).toBeInstanceOf(type);
    return e as T;
  }
  throw new Error(`expected a ${type.name}`);
}

const tmp = mkdtempSync(path.join(tmpdir(), 'prompts-onnx-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

describe('OnnxClipVision on the CLIP stand-in', () => {
  const modelPath = sharedPath('fixtures/clip-standin/vision.onnx');
  let vision: OnnxClipVision;
  let pixels: Float32Array;
  let expected: Float32Array;

  beforeAll(async () => {
    vision = await OnnxClipVision.create(modelPath, { threads: 1 });
    const check = await readNpzFile(sharedPath('fixtures/clip-standin/check.npz'));
    expect(check.pixel_values.shape).toEqual([2, 3, 224, 224]);
    expect(check.image_embeds.shape).toEqual([2, 512]);
    pixels = check.pixel_values.data as Float32Array;
    expected = check.image_embeds.data as Float32Array;
  });
  afterAll(() => vision?.close());

  it('validates the model at load', () => {
    expect(vision.dim).toBe(512);
    expect(vision.imageSize).toBe(224);
    expect(vision.inputName).toBe('pixel_values');
    expect(vision.outputName).toBe('image_embeds');
    expect(vision.file).toBe(modelPath);
  });

  it('reproduces check.npz image_embeds within 2e-6', async () => {
    const got = await vision.embed(pixels, 2);
    expect(got).toBeInstanceOf(Float32Array);
    expect(got.length).toBe(2 * 512);
    const diff = maxAbsDiff(got, expected);
    console.log(`clip-standin vs check.npz: max |diff| = ${diff.toExponential(3)}`);
    expect(diff, `max |diff| = ${diff.toExponential(3)}`).toBeLessThan(2e-6);
  });

  it('gives the same numbers for a batch of 2 and two batches of 1', async () => {
    const both = await vision.embed(pixels, 2);
    const first = await vision.embed(pixels.slice(0, PER), 1);
    const second = await vision.embed(pixels.slice(PER), 1);
    expect(Array.from(first)).toEqual(Array.from(both.subarray(0, 512)));
    expect(Array.from(second)).toEqual(Array.from(both.subarray(512)));
    // The same through batchSize 1 (one run per crop) and an empty batch.
    const single = await OnnxClipVision.create(modelPath, { threads: 1, batchSize: 1 });
    try {
      expect(single.batchSize).toBe(1);
      expect(Array.from(await single.embed(pixels, 2))).toEqual(Array.from(both));
      expect((await single.embed(new Float32Array(0), 0)).length).toBe(0);
    } finally {
      await single.close();
    }
  });

  it('gives the same numbers behind the cache', async () => {
    const cached = new CachedImageFeatures(vision);
    const twice = new Float32Array(4 * PER);
    twice.set(pixels, 0);
    twice.set(pixels, 2 * PER);
    const got = await cached.embed(twice, 4);
    const direct = await vision.embed(pixels, 2);
    expect(Array.from(got.subarray(0, 1024))).toEqual(Array.from(direct));
    expect(Array.from(got.subarray(1024))).toEqual(Array.from(direct));
    expect(cached.stats).toMatchObject({ hits: 2, misses: 2, entries: 2 });
  });

  it('rejects a wrong pixel count, a bad crop count and non-finite pixels, naming the model', async () => {
    for (const [data, n] of [
      [new Float32Array(PER - 1), 1],
      [new Float32Array(2 * PER), 1],
      [new Float32Array(PER), 2],
      [new Float32Array(0), -1],
      [new Float32Array(PER), 0.5],
    ] as const) {
      const err = await rejection(() => vision.embed(data, n), InputError);
      expect(err.file).toBe(modelPath);
      expect(err.message).toContain(modelPath);
    }
    const err = await rejection(
      () => vision.embed(new Float64Array(PER) as unknown as Float32Array, 1),
      InputError,
    );
    expect(err.message).toMatch(/Float32Array/);
    const nan = new Float32Array(2 * PER);
    nan[PER + 7] = Number.NaN;
    const e2 = await rejection(() => vision.embed(nan, 2), InputError);
    expect(e2.message).toMatch(/pixel 7 of crop 1 is NaN/);
    expect(e2.file).toBe(modelPath);
  });

  it('rejects a model whose input name does not match', async () => {
    const err = await rejection(() => OnnxClipVision.create(modelPath, { inputName: 'images' }), FormatError);
    expect(err.file).toBe(modelPath);
    expect(err.message).toMatch(/no input 'images' \(inputs: pixel_values\)/);
  });

  it('rejects a model whose image size does not match', async () => {
    const err = await rejection(() => OnnxClipVision.create(modelPath, { imageSize: 336 }), FormatError);
    expect(err.message).toMatch(/\['batch', 3, 224, 224\], expected \[batch, 3, 336, 336\]/);
  });

  it('refuses to run once closed', async () => {
    const v = await OnnxClipVision.create(modelPath, { threads: 1 });
    await v.close();
    await v.close();
    const err = await rejection(() => v.embed(pixels, 2), OnnxRunError);
    expect(err.file).toBe(modelPath);
  });
});

describe('OnnxClipVision load errors', () => {
  it('a missing file gives an InputError naming it', async () => {
    const file = path.join(tmp, 'does-not-exist.onnx');
    const err = await rejection(() => OnnxClipVision.create(file), InputError);
    expect(err.file).toBe(file);
    expect(err.message).toContain(file);
    expect(err.message).toMatch(/no such file/);
  });

  it('a directory gives an InputError naming it', async () => {
    const err = await rejection(() => OnnxClipVision.create(tmp), InputError);
    expect(err.file).toBe(tmp);
  });

  it('a corrupt file gives a FormatError naming it', async () => {
    const file = path.join(tmp, 'corrupt.onnx');
    writeFileSync(file, randomBytes(37));
    const err = await rejection(() => OnnxClipVision.create(file), FormatError);
    expect(err.file).toBe(file);
    expect(err.message).toContain(file);
    expect(err.message).toMatch(/cannot load ONNX model/);
  });

  it('bad options give InputErrors', async () => {
    const file = sharedPath('fixtures/clip-standin/vision.onnx');
    await rejection(() => OnnxClipVision.create(file, { threads: 0 }), InputError);
    await rejection(() => OnnxClipVision.create(file, { batchSize: 1.5 }), InputError);
  });

  it('an unknown execution provider gives a BackendError naming the file', async () => {
    const file = sharedPath('fixtures/clip-standin/vision.onnx');
    const err = await rejection(
      () => OnnxClipVision.create(file, { executionProviders: ['no-such-provider'] }),
      BackendError,
    );
    expect(err.message).toContain(file);
    expect(err.message).toContain('no-such-provider');
  });
});

describe('OnnxClipVision on hand-built models', () => {
  const S = 2;
  const F = 3 * S * S;
  const D = 4;
  const weight = Float32Array.from({ length: F * D }, (_, i) => ((i * 7) % 11) / 8 - 0.5);
  const crops = Float32Array.from({ length: 5 * F }, (_, i) => ((i * 13) % 17) / 16);
  const reference = new Float32Array(5 * D);
  for (let r = 0; r < 5; r++)
    for (let d = 0; d < D; d++) {
      let s = 0;
      for (let k = 0; k < F; k++) s += crops[r * F + k] * weight[k * D + d];
      reference[r * D + d] = s;
    }

  function model(name: string, o: Partial<Parameters<typeof tinyLinearOnnx>[0]>): string {
    const file = path.join(tmp, name);
    writeFileSync(
      file,
      tinyLinearOnnx({
        inputShape: ['batch', 3, S, S],
        outputShape: ['batch', D],
        weight,
        features: F,
        dim: D,
        ...o,
      }),
    );
    return file;
  }

  it('runs a fixed-batch export by padding the last batch', async () => {
    const file = model('fixed2.onnx', { inputShape: [2, 3, S, S], outputShape: [2, D] });
    const v = await OnnxClipVision.create(file, { imageSize: S, batchSize: 8 });
    try {
      expect(v.batchSize).toBe(2);
      expect(v.dim).toBe(D);
      expect(maxAbsDiff(await v.embed(crops, 5), reference)).toBeLessThan(1e-5);
    } finally {
      await v.close();
    }
  });

  it('finds a symbolic feature width with a probe run', async () => {
    const file = model('symdim.onnx', { outputShape: ['batch', 'dim'] });
    const v = await OnnxClipVision.create(file, { imageSize: S, batchSize: 2 });
    try {
      expect(v.dim).toBe(D);
      expect(maxAbsDiff(await v.embed(crops, 5), reference)).toBeLessThan(1e-5);
    } finally {
      await v.close();
    }
  });

  it('picks the only output whatever its name, and uses a custom input name', async () => {
    const file = model('names.onnx', { inputName: 'x', outputName: 'feats' });
    const v = await OnnxClipVision.create(file, { imageSize: S, inputName: 'x' });
    try {
      expect(v.outputName).toBe('feats');
      expect(maxAbsDiff(await v.embed(crops, 5), reference)).toBeLessThan(1e-5);
    } finally {
      await v.close();
    }
    const err = await rejection(
      () => OnnxClipVision.create(file, { imageSize: S, inputName: 'x', outputName: 'image_embeds' }),
      FormatError,
    );
    expect(err.message).toMatch(/no output 'image_embeds' \(outputs: feats\)/);
  });

  it('rejects an input that is not (batch, 3, S, S) and an output that is not (batch, dim)', async () => {
    const wrongChannels = model('chan.onnx', { inputShape: ['batch', 1, 2 * S, (3 * S) / 2] });
    const e1 = await rejection(() => OnnxClipVision.create(wrongChannels, { imageSize: S }), FormatError);
    expect(e1.file).toBe(wrongChannels);
    expect(e1.message).toMatch(/expected \[batch, 3, 2, 2\]/);
    // A real (batch, 1, dim) output is refused from the metadata, declared or inferred by onnxruntime.
    const rank3 = model('rank3.onnx', { outputShape: ['batch', 1, D], unsqueeze: true });
    const e2 = await rejection(() => OnnxClipVision.create(rank3, { imageSize: S }), FormatError);
    expect(e2.file).toBe(rank3);
    expect(e2.message).toMatch(/'image_embeds' has shape \['batch', 1, 4\], expected \[batch, dim\]/);
    const undeclared = model('rank3-undeclared.onnx', { outputShape: null, unsqueeze: true });
    const e3 = await rejection(() => OnnxClipVision.create(undeclared, { imageSize: S }), FormatError);
    expect(e3.file).toBe(undeclared);
    expect(e3.message).toMatch(/'image_embeds' has shape \['batch', 1, 4\], expected \[batch, dim\]/);
  });

  it('trusts the real output over a declared shape onnxruntime dropped', async () => {
    // The graph makes (batch, 4) but declares (batch, 1, 4): onnxruntime warns, keeps the inferred
    // shape and reports none, so the probe run settles the width and the model works.
    const file = model('declared3.onnx', { outputShape: ['batch', 1, D] });
    const v = await OnnxClipVision.create(file, { imageSize: S });
    try {
      expect(v.dim).toBe(D);
      expect(maxAbsDiff(await v.embed(crops, 5), reference)).toBeLessThan(1e-5);
    } finally {
      await v.close();
    }
  });
});

describe('package loading', () => {
  it('imports onnxruntime-node only lazily (type-only or dynamic imports)', () => {
    const src = fileURLToPath(new URL('../src/', import.meta.url));
    for (const f of readdirSync(src)) {
      const text = readFileSync(path.join(src, f), 'utf8');
      for (const line of text.split('\n')) {
        if (/from 'onnxruntime-node'/.test(line)) expect(line, `${f}: ${line}`).toMatch(/^import type /);
      }
    }
  });
});
