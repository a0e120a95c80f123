/**
 * Readers and writers of formats/ on the real files of shared/data/raw and on files made here.
 *
 * Pixel values marked "(PIL)" were read independently with Python: `numpy.array(PIL.Image.open(f))`
 * (Pillow 9.4, numpy 1.24); values marked "(numpy)" by gunzipping the NIfTI file and reading the
 * data with `numpy.frombuffer(..., offset=vox_offset).reshape(nz, ny, nx)` (no NIfTI library).
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FormatError, InputError } from '@mcp-medsam/core';
import {
  type NdArray,
  ndarray,
  readDicom,
  readDicomSeries,
  readImage2d,
  readImageFile,
  readNifti,
  readNiftiFile,
  writeNifti,
  writeNiftiFile,
  writePng,
  writePngFile,
} from '../src/index.js';
import { sharedPath } from '../../../test-utils/shared.js';
import { makeDicom } from './formats-dicom-helpers.js';

const raw = (rel: string) => sharedPath(`data/raw/${rel}`);

/** Element at a C-order index tuple. */
function at(a: NdArray, ...idx: number[]): number {
  let off = 0;
  for (let i = 0; i < a.shape.length; i++) off = off * a.shape[i] + (idx[i] ?? 0);
  return Number(a.data[off]);
}
function px(a: NdArray, y: number, x: number): number[] {
  const c = a.shape[2] ?? 1;
  return Array.from({ length: c }, (_, k) => at(a, y, x, k));
}
function range(a: NdArray): [number, number] {
  let lo = Infinity;
  let hi = -Infinity;
  for (const v of a.data as Float64Array) {
    if (v < lo) lo = v;
    if (v > hi) hi = v;
  }
  return [lo, hi];
}

let tmp: string;
beforeAll(async () => {
  tmp = await mkdtemp(path.join(os.tmpdir(), 'io-formats-'));
});
afterAll(async () => {
  await rm(tmp, { recursive: true, force: true });
});

describe('2D images on real files', () => {
  it('JPEG (Kvasir-SEG image)', async () => {
    const im = await readImageFile(raw('kvasir-seg_medsam-fork/images/cju6us80mv1b50871ebyq2wxa.jpg'));
    expect(im.format).toBe('jpeg');
    expect(im.array.dtype).toBe('uint8');
    expect(im.array.shape).toEqual([530, 562, 3]);
    // (PIL) a[0,0], a[100,200], a[300,400]
    expect(px(im.array, 0, 0)).toEqual([0, 0, 0]);
    expect(px(im.array, 100, 200)).toEqual([150, 74, 50]);
    expect(px(im.array, 300, 400)).toEqual([229, 127, 79]);
  });

  it('BMP 24-bit bottom-up (PH2 image) and top-down (IMD002 mask), 1-bit palette (IMD003 mask)', async () => {
    const im = await readImageFile(raw('ph2_dermoscopy_skincancervariation/images/IMD002.bmp'));
    expect(im.format).toBe('bmp');
    expect(im.array.shape).toEqual([572, 765, 3]);
    // (PIL)
    expect(px(im.array, 0, 0)).toEqual([48, 51, 35]);
    expect(px(im.array, 100, 200)).toEqual([208, 138, 95]);
    expect(px(im.array, 571, 764)).toEqual([255, 255, 255]);

    const m2 = await readImageFile(raw('ph2_dermoscopy_skincancervariation/lesion_masks/IMD002_lesion.bmp'));
    expect(m2.array.shape).toEqual([572, 765, 3]);
    let nz = 0;
    for (let i = 0; i < 572 * 765; i++) if (m2.array.data[i * 3] > 0) nz++;
    expect(nz).toBe(120276); // (PIL) (a[...,0] > 0).sum()
    expect(px(m2.array, 85, 418)).toEqual([255, 255, 255]); // (PIL) first non-zero pixel
    expect(px(m2.array, 85, 417)).toEqual([0, 0, 0]);

    const m3 = await readImageFile(raw('ph2_dermoscopy_skincancervariation/lesion_masks/IMD003_lesion.bmp'));
    expect(m3.array.shape).toEqual([574, 765]); // black/white palette: grey
    let on = 0;
    for (const v of m3.array.data as Uint8Array) if (v) on++;
    expect(on).toBe(49876); // (PIL) mode "1", sum()
    expect(at(m3.array, 287, 382)).toBe(255);
    expect(range(m3.array)).toEqual([0, 255]);
  });

  it('TIFF (DRIVE image) and GIF (DRIVE manual, palette)', async () => {
    const t = await readImageFile(raw('drive_retina-unet-pr64/images/01_test.tif'));
    expect(t.format).toBe('tiff');
    expect(t.array.shape).toEqual([584, 565, 3]);
    expect(px(t.array, 292, 282)).toEqual([145, 83, 42]); // (PIL)
    expect(px(t.array, 300, 100)).toEqual([201, 122, 63]); // (PIL)
    const g = await readImageFile(raw('drive_retina-unet-pr64/1st_manual/01_manual1.gif'));
    expect(g.format).toBe('gif');
    expect(g.array.shape).toEqual([584, 565]);
    let on = 0;
    for (const v of g.array.data as Uint8Array) if (v) on++;
    expect(on).toBe(29440); // (PIL) convert('L') > 0
    expect(range(g.array)).toEqual([0, 255]);
  });

  it('PNG grey (HC18), PNG RGBA (covid mask) and BMP RGB (WBC)', async () => {
    const p = await readImageFile(raw('hc18_fetal-head_suraj7974/000_HC.png'));
    expect(p.format).toBe('png');
    expect(p.array.shape).toEqual([540, 800]);
    expect([at(p.array, 0, 0), at(p.array, 270, 400), at(p.array, 100, 500)]).toEqual([0, 28, 28]); // (PIL)
    expect(range(p.array)).toEqual([0, 243]); // (PIL)
    const r = await readImageFile(
      raw(
        'covid-cxr-seg_generalblockchain/masks/9e01051ce5de50be3b97fa5e526cf076f5510e72_Gu3meS9yCeuDeEzhP.png',
      ),
    );
    expect(r.array.shape).toEqual([255, 71, 4]);
    expect(px(r.array, 0, 0)).toEqual([0, 0, 0, 255]); // (PIL)
    const w = await readImageFile(raw('wbc_zxaoyou/Dataset 1/001.bmp'));
    expect(w.array.shape).toEqual([120, 120, 3]);
    expect(px(w.array, 0, 0)).toEqual([255, 255, 154]); // (PIL)
    expect(px(w.array, 60, 60)).toEqual([129, 47, 92]); // (PIL)
  });

  it('PNG write -> read round trip: grey, RGB, RGBA, uint16, bool', async () => {
    const cases: NdArray[] = [
      ndarray(
        'uint8',
        [5, 7],
        Array.from({ length: 35 }, (_, i) => (i * 37) % 256),
      ),
      ndarray(
        'uint8',
        [4, 3, 3],
        Array.from({ length: 36 }, (_, i) => (i * 53) % 256),
      ),
      ndarray(
        'uint8',
        [2, 3, 4],
        Array.from({ length: 24 }, (_, i) => (i * 91) % 256),
      ),
      ndarray(
        'uint16',
        [3, 4],
        Array.from({ length: 12 }, (_, i) => i * 5000 + 7),
      ),
      ndarray(
        'uint16',
        [2, 2, 3],
        Array.from({ length: 12 }, (_, i) => 65535 - i * 999),
      ),
    ];
    for (const a of cases) {
      const back = (await readImage2d(await writePng(a))).array;
      expect(back.dtype).toBe(a.dtype);
      expect(back.shape).toEqual(a.shape);
      expect(Array.from(back.data as Uint8Array)).toEqual(Array.from(a.data as Uint8Array));
    }
    const b = ndarray('bool', [2, 2], [1, 0, 0, 1]);
    const f = path.join(tmp, 'b.png');
    await writePngFile(f, b);
    expect(Array.from((await readImageFile(f)).array.data as Uint8Array)).toEqual([255, 0, 0, 255]);
    await expect(writePng(ndarray('float32', [2, 2]))).rejects.toBeInstanceOf(InputError);
    await expect(writePng(ndarray('uint8', [2, 2, 2, 2]))).rejects.toBeInstanceOf(InputError);
  });
});

describe('NIfTI', () => {
  it('reads the TotalSegmentator CT (int16, sform, extensions in the label file)', async () => {
    const ct = await readNiftiFile(raw('totalsegmentator_tests/example_ct_sm.nii.gz'));
    expect(ct.array.dtype).toBe('int16');
    expect(ct.array.shape).toEqual([30, 101, 122]); // (z, y, x); dims in the header are 122 x 101 x 30
    expect(ct.spacing).toEqual([3, 3, 3]);
    // (numpy) a[0,0,0], a[15,50,60], a[29,100,121]; min, max
    expect([at(ct.array, 0, 0, 0), at(ct.array, 15, 50, 60), at(ct.array, 29, 100, 121)]).toEqual([
      -1024, -17, -997,
    ]);
    expect(range(ct.array)).toEqual([-1100, 1207]);
    expect(ct.affine![0]).toEqual([3, 0, 0, Math.fround(-177.95633) /* (numpy) srow_x[3], a float32 */]);
    expect(ct.origin![0]).toBeCloseTo(177.95633, 4); // LPS: x negated
    expect(ct.direction).toEqual([-1, 0, 0, 0, -1, 0, 0, 0, 1]);

    const seg = await readImageFile(raw('totalsegmentator_tests/example_seg.nii.gz'));
    expect(seg.format).toBe('nifti');
    expect(seg.array.dtype).toBe('uint8');
    expect([at(seg.array, 15, 50, 60), at(seg.array, 10, 40, 30)]).toEqual([0, 3]); // (numpy)
    expect(range(seg.array)).toEqual([0, 117]);
  });

  it('reads the BraTS FLAIR (float32) and the TotalSegmentator MR', async () => {
    const f = await readImageFile(
      raw('brats2013-mr_deepmedic/brats_2013_pat0001_1/Flair_subtrMeanDivStd.nii.gz'),
    );
    expect(f.array.dtype).toBe('float32');
    expect(f.array.shape).toEqual([155, 240, 240]);
    expect(at(f.array, 77, 120, 120)).toBe(Math.fround(0.1203179880976677)); // (numpy)
    expect(at(f.array, 0, 0, 0)).toBe(Math.fround(-3.624394416809082)); // (numpy)
    expect(f.spacing).toEqual([1, 1, 1]);
    const mr = await readImageFile(raw('totalsegmentator_tests/example_mr_sm.nii.gz'));
    expect(mr.array.shape).toEqual([20, 91, 117]);
    expect(at(mr.array, 10, 45, 58)).toBe(303); // (numpy)
    expect(range(mr.array)).toEqual([-47, 833]);
  });

  it('write -> read round trip keeps data, spacing and affine (plain and gzipped, oblique, flipped)', async () => {
    const a = ndarray(
      'int16',
      [3, 4, 5],
      Array.from({ length: 60 }, (_, i) => i * 97 - 3000),
    );
    const c = Math.cos(0.3);
    const s = Math.sin(0.3);
    const affine = [
      [-0.8 * c, -0.7 * s, 0, 12.5],
      [-0.8 * s, 0.7 * c, 0, -40],
      [0, 0, 2.5, 7],
      [0, 0, 0, 1],
    ];
    for (const gzip of [false, true]) {
      const back = readNifti(writeNifti(a, { affine, gzip }));
      expect(back.array.dtype).toBe('int16');
      expect(back.array.shape).toEqual([3, 4, 5]);
      expect(Array.from(back.array.data as Int16Array)).toEqual(Array.from(a.data as Int16Array));
      expect(back.spacing![0]).toBeCloseTo(0.8, 6);
      expect(back.spacing![1]).toBeCloseTo(0.7, 6);
      expect(back.spacing![2]).toBeCloseTo(2.5, 6);
      for (let r = 0; r < 4; r++)
        for (let k = 0; k < 4; k++) expect(back.affine![r][k]).toBeCloseTo(affine[r][k], 5);
    }
    // From LPS origin/direction + spacing, through a file.
    const f = path.join(tmp, 'v.nii.gz');
    const b = ndarray(
      'float32',
      [2, 3, 4],
      Array.from({ length: 24 }, (_, i) => i / 7),
    );
    await writeNiftiFile(f, b, {
      spacing: [0.5, 0.6, 3],
      origin: [10, 20, 30],
      direction: [1, 0, 0, 0, 1, 0, 0, 0, 1],
    });
    const bb = await readImageFile(f);
    expect(Array.from(bb.array.data as Float32Array)).toEqual(Array.from(b.data as Float32Array));
    expect(bb.spacing!.map((v) => +v.toFixed(6))).toEqual([0.5, 0.6, 3]);
    expect(bb.origin!.map((v) => +v.toFixed(5))).toEqual([10, 20, 30]);
    expect(bb.direction!.map((v) => Math.round(v))).toEqual([1, 0, 0, 0, 1, 0, 0, 0, 1]);
    // A real volume survives a round trip with its affine.
    const ct = await readNiftiFile(raw('totalsegmentator_tests/example_mr_sm.nii.gz'));
    const ct2 = readNifti(writeNifti(ct.array, { affine: ct.affine }));
    expect(ct2.array.data).toEqual(ct.array.data);
    expect(ct2.affine).toEqual(ct.affine);
  });

  it('applies scl_slope/scl_inter and refuses bad headers with FormatError', () => {
    const bytes = writeNifti(ndarray('int16', [1, 2, 2], [1, 2, 3, 4]));
    const v = new DataView(bytes.buffer);
    v.setFloat32(112, 2, true);
    v.setFloat32(116, -1, true);
    const scaled = readNifti(bytes);
    expect(scaled.array.dtype).toBe('float32');
    expect(Array.from(scaled.array.data as Float32Array)).toEqual([1, 3, 5, 7]);
    expect(readNifti(bytes, { scale: false }).array.dtype).toBe('int16');
    const bad = bytes.slice();
    new DataView(bad.buffer).setInt16(70, 2048, true); // unknown datatype
    expect(() => readNifti(bad, { file: 'x.nii' })).toThrow(FormatError);
    expect(() => readNifti(bytes.subarray(0, 355), { file: 'x.nii' })).toThrow(/truncated NIfTI data/);
    expect(() => readNifti(new Uint8Array(400), { file: 'x.nii' })).toThrow(/not a NIfTI/);
  });
});

describe('DICOM', () => {
  const rows = 4;
  const cols = 3;
  const slice = (z: number) => Int16Array.from({ length: rows * cols }, (_, i) => z * 100 + i - 1000);

  it('reads one file with rescale, spacing and position (explicit LE, implicit LE, explicit BE)', () => {
    for (const ts of ['explicit-le', 'implicit-le', 'explicit-be'] as const) {
      const im = readDicom(
        makeDicom({
          rows,
          cols,
          pixels: slice(2),
          signed: true,
          slope: 1,
          intercept: -24,
          pixelSpacing: [0.7, 0.6],
          ipp: [-100, -50, 30],
          iop: [1, 0, 0, 0, 1, 0],
          transferSyntax: ts,
        }),
        { file: 'a.dcm' },
      );
      expect(im.array.dtype).toBe('int16');
      expect(im.array.shape).toEqual([4, 3]);
      expect(Array.from(im.array.data as Int16Array)).toEqual(Array.from(slice(2), (v) => v - 24));
      expect(im.spacing).toEqual([0.6, 0.7]);
      expect(im.origin).toEqual([-100, -50, 30]);
    }
    const f = readDicom(makeDicom({ rows: 2, cols: 2, pixels: new Uint16Array([0, 1, 2, 3]), slope: 0.5 }));
    expect(f.array.dtype).toBe('float32');
    expect(Array.from(f.array.data as Float32Array)).toEqual([0, 0.5, 1, 1.5]);
  });

  it('stacks a shuffled series along the slice normal, with z spacing from the positions', async () => {
    const dir = path.join(tmp, 'series');
    await import('node:fs/promises').then((fs) => fs.mkdir(dir));
    const order = [3, 0, 4, 1, 2];
    for (const [k, z] of order.entries()) {
      await writeFile(
        path.join(dir, `f${k}.dcm`),
        makeDicom({
          rows,
          cols,
          pixels: slice(z),
          signed: true,
          pixelSpacing: [0.8, 0.9],
          sliceThickness: 5,
          ipp: [0, 0, -20 + 2.5 * z],
          iop: [1, 0, 0, 0, 1, 0],
          instanceNumber: 10 - z, // misleading on purpose: positions win
        }),
      );
    }
    await writeFile(path.join(dir, 'README.txt'), 'not dicom');
    const vol = await readImageFile(dir);
    expect(vol.format).toBe('dicom');
    expect(vol.array.shape).toEqual([5, 4, 3]);
    for (let z = 0; z < 5; z++) expect(at(vol.array, z, 0, 0)).toBe(z * 100 - 1000);
    expect(vol.spacing).toEqual([0.9, 0.8, 2.5]);
    expect(vol.origin).toEqual([0, 0, -20]);

    await writeFile(
      path.join(dir, 'other.dcm'),
      makeDicom({
        rows,
        cols,
        pixels: slice(0),
        signed: true,
        seriesUid: '9.9',
        ipp: [0, 0, 0],
        iop: [1, 0, 0, 0, 1, 0],
      }),
    );
    await expect(readDicomSeries(dir)).rejects.toBeInstanceOf(InputError);
    const one = await readDicomSeries(dir, { seriesInstanceUid: '1.2.3.4' });
    expect(one.array.shape).toEqual([5, 4, 3]);
  });

  it('refuses compressed transfer syntaxes with a FormatError that says so', () => {
    const b = makeDicom({ rows: 2, cols: 2, pixels: new Uint16Array(4), transferSyntax: 'jpeg-baseline' });
    expect(() => readDicom(b, { file: 'c.dcm' })).toThrow(
      /compressed DICOM transfer syntax 1\.2\.840\.10008\.1\.2\.4\.50/,
    );
  });
});

describe('format detection', () => {
  it('gives a FormatError for unknown content and an InputError for a missing file', async () => {
    const f = path.join(tmp, 'x.nii');
    await writeFile(f, 'hello world, not an image');
    await expect(readImageFile(f)).rejects.toBeInstanceOf(FormatError);
    await expect(readImageFile(path.join(tmp, 'missing.png'))).rejects.toBeInstanceOf(InputError);
  });
});
