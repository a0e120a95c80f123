import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FormatError, InputError } from '@mcp-medsam/core';
import { sharedPath } from '../../../test-utils/shared.js';
import {
  DTYPES,
  type NdArray,
  ndarray,
  npyDescr,
  openNpz,
  readNpz,
  readNpzFile,
  readZip,
  toFloat32,
  writeFileAtomic,
  writeNpy,
  writeNpz,
  writeNpzFile,
  writeZip,
} from '../src/index.js';
import { expectFormatError, sampleArray } from './helpers.js';

interface Manifest {
  files: Record<string, { bytes: number; sha256: string; arrays?: Record<string, [number[], string]> }>;
}
const manifest = JSON.parse(readFileSync(sharedPath('fixtures/manifest.json'), 'utf8')) as Manifest;

function sum(a: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i];
  return s;
}
const bytesOf = (a: NdArray) => Buffer.from(a.data.buffer, a.data.byteOffset, a.data.byteLength);
const at = (arr: NdArray, i: number) =>
  (arr.data as ArrayLike<number | bigint>)[i < 0 ? arr.data.length + i : i];

describe('fixtures: forward-a-ct.npz', () => {
  const file = sharedPath('fixtures/model/forward-a-ct.npz');
  let arrays: Record<string, NdArray>;
  beforeAll(async () => {
    arrays = await readNpzFile(file);
  });

  it('has every array of the manifest with its shape and dtype', () => {
    const expected = manifest.files['model/forward-a-ct.npz'].arrays!;
    expect(Object.keys(arrays)).toEqual(Object.keys(expected));
    expect(Object.keys(arrays)).toHaveLength(27);
    for (const [name, [shape, descr]] of Object.entries(expected)) {
      expect(arrays[name].shape, name).toEqual(shape);
      expect(npyDescr(arrays[name].dtype), name).toBe(descr);
    }
  });

  it('holds the values NumPy reads', () => {
    // Expected numbers from np.load(path)[name] with NumPy 2.4 (ravel()[i].tolist(), and
    // float(a.astype(np.float64).sum()) for sums).
    expect(Array.from(arrays.orig_hw.data as BigInt64Array)).toEqual([512n, 512n]);
    expect(Array.from(arrays.new_hw.data as BigInt64Array)).toEqual([256n, 256n]);
    expect(Array.from(arrays.box_orig.data as BigInt64Array)).toEqual([153n, 237n, 221n, 294n]);
    expect(Array.from(arrays.category_idx.data as BigInt64Array)).toEqual([0n]);
    expect(Array.from(arrays.box256.data as Float32Array)).toEqual([76, 118, 110, 147]);
    expect(at(arrays.iou, 0)).toBe(0.1864171177148819);
    expect(at(arrays.iou_f64, 0)).toBe(0.1864168400746471);
    expect(Array.from(arrays.category_logits.data as Float32Array)).toEqual([
      0.40013304352760315, -0.5747058987617493, -0.08468897640705109, 3.4195027351379395, 0.9871629476547241,
      -1.6757712364196777, -1.7793452739715576, -0.9972311854362488, -2.346651315689087, -0.9083229303359985,
      -0.8226104378700256,
    ]);
    expect(Array.from(arrays.category_logits_f64.data as Float64Array)).toEqual([
      0.40013244380585145, -0.574706959059918, -0.08468793098493643, 3.4195007787680014, 0.9871623328700451,
      -1.6757719879590869, -1.7793442547932423, -0.9972307165781807, -2.3466515065758915, -0.9083233949689894,
      -0.822610844548904,
    ]);
    const img = arrays.img_3c;
    expect(img.dtype).toBe('uint8');
    expect(sum(img.data as Uint8Array)).toBe(64140531);
    // img_3c[100, 200] == [82, 82, 82]
    expect(
      Array.from((img.data as Uint8Array).subarray((100 * 512 + 200) * 3, (100 * 512 + 200) * 3 + 3)),
    ).toEqual([82, 82, 82]);
    const picks: [string, number[], number][] = [
      ['image', [0, 0, 0.3388429880142212, 0], 66327.02532056719],
      [
        'keys',
        [-0.8137075304985046, 0.14544032514095306, -0.9908279180526733, 1.1080024242401123],
        -7781.942198147338,
      ],
      [
        'tap_layers_3',
        [-0.4661642014980316, -0.4733898639678955, -1.4994868040084839, -0.08425706624984741],
        -81121.97586211597,
      ],
      [
        'hs',
        [-3.033565044403076, 1.974571704864502, -1.2249706983566284, -0.8340077996253967],
        22.95848175752326,
      ],
      [
        'image_embedding',
        [-1.82094144821167, -0.8662194609642029, 0.2749667763710022, 1.9328609704971313],
        -1369.2917132961738,
      ],
      [
        'low_res_logits_f64',
        [0.39170158543744127, -1.3763747811563198, -0.8665944129898524, -0.23640812749267504],
        29725.315483039674,
      ],
    ];
    for (const [name, values, total] of picks) {
      const a = arrays[name];
      expect([at(a, 0), at(a, 1), at(a, 12345 % a.data.length), at(a, -1)], name).toEqual(values);
      expect(sum(a.data as Float32Array) / total, name).toBeCloseTo(1, 9);
    }
    // keys[0, 1000, 17] (shape 1 x 4096 x 256)
    expect(at(arrays.keys, 1000 * 256 + 17)).toBe(0.19044362008571625);
  });

  it('opens lazily and reads members on demand, identical to readNpz', () => {
    const bytes = new Uint8Array(readFileSync(file));
    const npz = openNpz(bytes, { file });
    expect(npz.names).toEqual(Object.keys(arrays));
    expect(npz.has('iou')).toBe(true);
    expect(npz.has('nope')).toBe(false);
    const lazy = npz.get('dense_pe');
    expect(lazy.shape).toEqual([1, 256, 64, 64]);
    expect(bytesOf(lazy).equals(bytesOf(arrays.dense_pe))).toBe(true);
    expect(() => npz.get('nope')).toThrow(InputError);
    expect(readZip(bytes).get('dense_pe.npy')!.method).toBe('deflate');
  });

  it('refuses it under a tight limit, naming the file and member', () => {
    const msg = expectFormatError(
      () => readNpz(new Uint8Array(readFileSync(file)), { file, limits: { maxEntryBytes: 1 << 20 } }),
      file,
    );
    expect(msg).toMatch(/"image_embedding\.npy": declares 4194432 bytes/);
  });
});

describe('fixtures: every npz in the manifest', () => {
  it('reads with the manifest shapes and dtypes', async () => {
    let count = 0;
    for (const [rel, entry] of Object.entries(manifest.files)) {
      if (!entry.arrays || rel === 'model/forward-a-ct.npz') continue; // that one is checked above
      const arrays = await readNpzFile(sharedPath(`fixtures/${rel}`));
      expect(Object.keys(arrays).sort(), rel).toEqual(Object.keys(entry.arrays).sort());
      for (const [name, [shape, descr]] of Object.entries(entry.arrays)) {
        expect(arrays[name].shape, `${rel} ${name}`).toEqual(shape);
        expect(npyDescr(arrays[name].dtype), `${rel} ${name}`).toBe(descr);
        expect(arrays[name].data.length).toBe(shape.reduce((a, b) => a * b, 1));
        count++;
      }
    }
    expect(count).toBeGreaterThan(40);
  });
});

describe('writeNpz / readNpz', () => {
  const all = () => {
    const arrays: Record<string, NdArray> = {};
    for (const d of DTYPES) {
      arrays[d] = sampleArray(d, [3, 4, 5], 11);
      arrays[`${d}_0d`] = sampleArray(d, [], 12);
      arrays[`${d}_empty`] = sampleArray(d, [2, 0], 13);
    }
    arrays['nested/name with spaces'] = ndarray('int32', [2], [1, 2]);
    arrays.__proto__ = ndarray('uint8', [1], [9]);
    return arrays;
  };

  for (const compress of [false, true]) {
    it(`round-trips every dtype, 0-d and empty arrays (${compress ? 'compressed' : 'stored'})`, () => {
      const arrays = all();
      const bytes = writeNpz(arrays, { compress });
      const zip = readZip(bytes);
      for (const e of zip.values()) {
        expect(e.method).toBe(compress ? 'deflate' : 'stored');
        if (!compress) expect(e.dataOffset % 64).toBe(0);
      }
      const back = readNpz(bytes);
      expect(Object.keys(back)).toEqual(Object.keys(arrays));
      for (const [name, a] of Object.entries(arrays)) {
        expect(back[name].dtype).toBe(a.dtype);
        expect(back[name].shape).toEqual(a.shape);
        expect(back[name].data).toEqual(a.data);
      }
      expect(Object.getPrototypeOf(back)).toBe(Object.prototype);
    });
  }

  it('arrays own exactly their buffer (stored members are not views of the archive)', () => {
    for (const compress of [false, true]) {
      const bytes = writeNpz({ a: sampleArray('float32', [10]) }, { compress });
      const back = readNpz(bytes);
      expect(back.a.data.buffer).not.toBe(bytes.buffer);
      expect(back.a.data.byteOffset).toBe(0);
      expect(back.a.data.buffer.byteLength).toBe(40);
    }
  });

  it('round-trips a large array through both forms', () => {
    const big = sampleArray('float32', [512, 1024], 5);
    for (const compress of [false, true]) {
      const back = readNpz(writeNpz({ big }, { compress })).big;
      expect(back.shape).toEqual([512, 1024]);
      expect(bytesOf(back).equals(bytesOf(big))).toBe(true);
    }
  });

  it('ignores members that are not .npy; names keep their folders', () => {
    const bytes = writeZip([
      { name: 'a.npy', data: writeNpy(ndarray('int8', [2], [1, -1])) },
      { name: 'readme.txt', data: new TextEncoder().encode('hi') },
      { name: 'sub/b.npy', data: writeNpy(ndarray('int8', [1], [5])), compress: true },
    ]);
    const back = readNpz(bytes);
    expect(Object.keys(back)).toEqual(['a', 'sub/b']);
    expect(Array.from(back['sub/b'].data as Int8Array)).toEqual([5]);
  });

  it('a corrupt member gives a FormatError naming the file and the member', () => {
    const bytes = writeZip([{ name: 'bad.npy', data: new TextEncoder().encode('not numpy') }]);
    expect(expectFormatError(() => readNpz(bytes, { file: 'm.npz' }), 'm.npz')).toMatch(
      /member "bad\.npy": not an npy/,
    );
  });

  it('refuses invalid arrays when writing', () => {
    expect(() => writeNpz({ a: { dtype: 'int8', shape: [3], data: new Int8Array(2) } })).toThrow(InputError);
  });
});

describe('npz files', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'medsam-io-'));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('writes atomically and reads back', async () => {
    const file = path.join(dir, 'out.npz');
    await writeFile(file, 'old contents');
    const arrays = { x: sampleArray('float64', [4, 4]), m: sampleArray('bool', [4]) };
    await writeNpzFile(file, arrays, { compress: true });
    const back = await readNpzFile(file);
    expect(back.x.data).toEqual(arrays.x.data);
    expect(back.m.data).toEqual(arrays.m.data);
    expect(await readdir(dir)).toEqual(['out.npz']); // no temporary file left behind
  });

  it('writeFileAtomic replaces the file and fails cleanly in a missing folder', async () => {
    const file = path.join(dir, 'bytes.bin');
    await writeFileAtomic(file, new Uint8Array([1, 2, 3]));
    await writeFileAtomic(file, new Uint8Array([4, 5]));
    expect(new Uint8Array(await readFile(file))).toEqual(new Uint8Array([4, 5]));
    const missing = path.join(dir, 'no-such-dir', 'x.bin');
    await expect(writeFileAtomic(missing, new Uint8Array(1))).rejects.toThrow(InputError);
    await expect(writeFileAtomic(missing, new Uint8Array(1))).rejects.toThrow(missing);
  });

  it('the README example works', async () => {
    const input = path.join(dir, 'case.npz');
    await writeFile(input, await readFile(sharedPath('fixtures/e2e/input/2D_XRay_cxr-pneumonia-day0.npz')));
    const out = path.join(dir, 'readme-out.npz');
    // --- as in README.md
    const arrays = await readNpzFile(input);
    const imgs = arrays.imgs;
    const values = toFloat32(imgs);
    const mean = values.reduce((s, v) => s + v, 0) / values.length;
    await writeNpzFile(
      out,
      { segs: ndarray('uint8', imgs.shape.slice(0, 2)), mean: ndarray('float64', [], [mean]) },
      { compress: true },
    );
    // ---
    // NumPy: imgs.shape == (389, 450, 3); imgs.astype(np.float64).mean() == 159.42419308768922
    expect(imgs.shape).toEqual([389, 450, 3]);
    expect(Object.keys(arrays)).toEqual(['imgs', 'boxes']);
    const back = await readNpzFile(out);
    expect(back.segs.shape).toEqual([389, 450]);
    expect(back.mean.shape).toEqual([]);
    expect(back.mean.data[0]).toBeCloseTo(159.42419308768922, 10);
  });

  it('a missing path gives an InputError naming it; a corrupt file a FormatError naming it', async () => {
    const missing = path.join(dir, 'missing.npz');
    await expect(readNpzFile(missing)).rejects.toThrow(InputError);
    await expect(readNpzFile(missing)).rejects.toThrow(`${missing}: cannot read file (no such file)`);
    await expect(readNpzFile(dir)).rejects.toThrow(InputError);
    const corrupt = path.join(dir, 'corrupt.npz');
    await writeFile(corrupt, 'this is not a zip archive at all');
    await expect(readNpzFile(corrupt)).rejects.toThrow(FormatError);
    await expect(readNpzFile(corrupt)).rejects.toThrow(`${corrupt}: not a zip archive`);
  });
});
