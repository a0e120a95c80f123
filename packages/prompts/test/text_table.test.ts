import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FormatError, InputError, MODALITY_ALIASES } from '@mcp-medsam/core/common';
import { sharedPath } from '../../../test-utils/shared.js';
import { CLIP_TEXT_STRINGS, TextFeatureTable, clipTextFor } from '../src/index.js';

const tmp = mkdtempSync(path.join(tmpdir(), 'prompts-text-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

function expectError<T extends Error>(fn: () => unknown, type: new (...a: any[]) => T): T {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(type);
    return e as T;
  }
  throw new Error(`expected a ${type.name}`);
}

describe('clipTextFor', () => {
  it('builds "<token> Image", keeping aliases unless canonical', () => {
    expect(clipTextFor('CT')).toBe('CT Image');
    expect(clipTextFor('X-Ray')).toBe('X-Ray Image');
    expect(clipTextFor('X-Ray', { canonical: true })).toBe('XRay Image');
    expect(clipTextFor('Mammo', { canonical: true })).toBe('Mammography Image');
    expect(clipTextFor('Microscope')).toBe('Microscope Image');
  });

  it('rejects unknown tokens, listing the known ones', () => {
    const err = expectError(() => clipTextFor('Ultrasound', {}, 'case.npz'), InputError);
    expect(err.file).toBe('case.npz');
    expect(err.message).toMatch(/unknown modality 'Ultrasound'.*CT, MR/);
  });

  it('lists the 14 strings the modality prompt can take', () => {
    expect(CLIP_TEXT_STRINGS).toHaveLength(14);
    expect(CLIP_TEXT_STRINGS).toEqual(Object.keys(MODALITY_ALIASES).map((t) => `${t} Image`));
  });
});

describe('TextFeatureTable on the stand-in table', () => {
  const file = sharedPath('fixtures/clip-standin/text-features.json');
  const raw = JSON.parse(readFileSync(file, 'utf8')) as { dim: number; features: Record<string, number[]> };
  let table: TextFeatureTable;
  beforeAll(async () => {
    table = await TextFeatureTable.fromFile(file);
  });

  it('knows exactly the 14 strings, with dim 512', () => {
    expect(table.dim).toBe(512);
    expect(table.model).toBe('standin');
    expect(table.file).toBe(file);
    expect(table.size).toBe(14);
    expect([...table.texts].sort()).toEqual([...CLIP_TEXT_STRINGS].sort());
  });

  it('reproduces every vector exactly as float32', () => {
    for (const text of CLIP_TEXT_STRINGS) {
      const v = table.get(text);
      expect(v).toBeInstanceOf(Float32Array);
      expect(v.length).toBe(512);
      const json = raw.features[text];
      // Exact float32 round trip: the stored value is Math.fround of the JSON number, and the
      // JSON was written with enough digits that the number is that float32 already.
      expect(Array.from(v)).toEqual(json.map(Math.fround));
      expect(Array.from(v)).toEqual(json);
    }
  });

  it('get returns a copy; getMany and embed stack rows in order', async () => {
    const a = table.get('CT Image');
    a[0] = 12345;
    expect(table.get('CT Image')[0]).toBe(Math.fround(raw.features['CT Image'][0]));
    const texts = ['MR Image', 'CT Image', 'MR Image'];
    const many = table.getMany(texts);
    expect(many.length).toBe(3 * 512);
    texts.forEach((t, i) =>
      expect(Array.from(many.subarray(i * 512, (i + 1) * 512))).toEqual(raw.features[t]),
    );
    expect(Array.from(await table.embed(texts))).toEqual(Array.from(many));
    expect((await table.embed([])).length).toBe(0);
  });

  it('forModality maps tokens to their strings', () => {
    expect(Array.from(table.forModality('CT'))).toEqual(raw.features['CT Image']);
    expect(Array.from(table.forModality('X-Ray'))).toEqual(raw.features['X-Ray Image']);
    expect(Array.from(table.forModality('X-Ray', { canonical: true }))).toEqual(raw.features['XRay Image']);
    expect(raw.features['X-Ray Image']).not.toEqual(raw.features['XRay Image']);
  });

  it('a missing string throws an InputError listing the known strings and naming the file', () => {
    expect(table.has('Ultrasound Image')).toBe(false);
    const err = expectError(() => table.get('Ultrasound Image'), InputError);
    expect(err.file).toBe(file);
    expect(err.message).toContain("'Ultrasound Image'");
    for (const t of CLIP_TEXT_STRINGS) expect(err.message).toContain(`'${t}'`);
    expectError(() => table.getMany(['CT Image', 'ct image']), InputError);
  });
});

describe('TextFeatureTable validation', () => {
  const good = () => ({
    model: 'test',
    dim: 3,
    features: { 'CT Image': [0.5, -1, 2], 'MR Image': [1, 2, 3] },
  });

  /** Write `content` to a temp file and expect fromFile to reject with `type`, naming the file. */
  async function badFile(
    name: string,
    content: string,
    type: typeof FormatError | typeof InputError,
    re: RegExp,
  ) {
    const file = path.join(tmp, name);
    writeFileSync(file, content);
    let caught: unknown;
    try {
      await TextFeatureTable.fromFile(file);
    } catch (e) {
      caught = e;
    }
    expect(caught).toBeInstanceOf(type);
    const err = caught as FormatError;
    expect(err.file).toBe(file);
    expect(err.message).toContain(file);
    expect(err.message).toMatch(re);
  }

  it('accepts a small valid table', () => {
    const t = TextFeatureTable.fromJSON(good());
    expect(t.dim).toBe(3);
    expect(t.file).toBeUndefined();
    expect(Array.from(t.get('CT Image'))).toEqual([0.5, -1, 2]);
  });

  it('rejects a wrong dim', async () => {
    await badFile(
      'wrong-dim.json',
      JSON.stringify({ ...good(), dim: 4 }),
      FormatError,
      /has 3 values, expected dim = 4/,
    );
    await badFile(
      'zero-dim.json',
      JSON.stringify({ ...good(), dim: 0 }),
      FormatError,
      /'dim' must be a positive/,
    );
    await badFile(
      'str-dim.json',
      JSON.stringify({ ...good(), dim: '3' }),
      FormatError,
      /'dim' must be a positive/,
    );
    await badFile(
      'no-dim.json',
      JSON.stringify({ features: good().features }),
      FormatError,
      /'dim'.*nothing/,
    );
  });

  it('rejects NaN and values that are not finite in float32', async () => {
    // Python's json.dump writes NaN as a bare token, which is not JSON.
    await badFile('nan.json', '{"dim": 1, "features": {"CT Image": [NaN]}}', FormatError, /not valid JSON/);
    const e1 = expectError(
      () => TextFeatureTable.fromJSON({ dim: 2, features: { 'CT Image': [1, Number.NaN] } }, 'x.json'),
      FormatError,
    );
    expect(e1.file).toBe('x.json');
    expect(e1.message).toMatch(/features\['CT Image'\]\[1\] = NaN is not finite/);
    await badFile(
      'overflow.json',
      '{"dim": 1, "features": {"CT Image": [1e39]}}',
      FormatError,
      /not finite in float32/,
    );
    await badFile(
      'string-value.json',
      '{"dim": 1, "features": {"CT Image": ["1"]}}',
      FormatError,
      /a string, not a number/,
    );
  });

  it('rejects non-arrays and a missing or malformed features field', async () => {
    await badFile(
      'non-array.json',
      '{"dim": 2, "features": {"CT Image": {"0": 1}}}',
      FormatError,
      /must be an array/,
    );
    await badFile('no-features.json', '{"dim": 2}', FormatError, /'features' is missing/);
    await badFile(
      'array-features.json',
      '{"dim": 2, "features": [[1, 2]]}',
      FormatError,
      /'features' must be an object/,
    );
    await badFile('empty-features.json', '{"dim": 2, "features": {}}', FormatError, /holds no strings/);
    await badFile('top-array.json', '[1, 2]', FormatError, /expected an object, got an array/);
    await badFile(
      'bad-model.json',
      JSON.stringify({ ...good(), model: 5 }),
      FormatError,
      /'model' must be a string/,
    );
    await badFile('truncated.json', JSON.stringify(good()).slice(0, 30), FormatError, /not valid JSON/);
  });

  it('a missing file or a directory gives an InputError naming it', async () => {
    const file = path.join(tmp, 'nope.json');
    await expect(TextFeatureTable.fromFile(file)).rejects.toSatisfy(
      (e: unknown) => e instanceof InputError && e.file === file && /no such file/.test(e.message),
    );
    await expect(TextFeatureTable.fromFile(tmp)).rejects.toBeInstanceOf(InputError);
  });

  it('keeps odd keys out of the prototype', () => {
    const t = TextFeatureTable.fromJSON(
      JSON.parse('{"dim": 1, "features": {"__proto__": [1], "CT Image": [2]}}'),
    );
    expect(t.texts).toEqual(['__proto__', 'CT Image']);
    expect(t.has('toString')).toBe(false);
    expectError(() => t.get('constructor'), InputError);
  });
});
