/**
 * Test helper: a minimal DICOM Part 10 writer (explicit or implicit VR little endian, or explicit
 * VR big endian), enough to make CT-like series for the reader tests. Not part of the package.
 */

interface El {
  group: number;
  element: number;
  vr: string;
  value: Uint8Array;
}

const LONG_VRS = new Set(['OB', 'OW', 'OF', 'SQ', 'UT', 'UN']);

function str(s: string): Uint8Array {
  const b = Buffer.from(s.length % 2 ? s + ' ' : s, 'latin1');
  return new Uint8Array(b);
}
function uidStr(s: string): Uint8Array {
  const b = Buffer.from(s.length % 2 ? s + '\0' : s, 'latin1');
  return new Uint8Array(b);
}
function us(v: number, little = true): Uint8Array {
  const b = new Uint8Array(2);
  new DataView(b.buffer).setUint16(0, v, little);
  return b;
}
function ul(v: number, little = true): Uint8Array {
  const b = new Uint8Array(4);
  new DataView(b.buffer).setUint32(0, v, little);
  return b;
}

function encode(els: El[], explicit: boolean, little: boolean): Uint8Array {
  const parts: Uint8Array[] = [];
  for (const e of els.sort((a, b) => a.group - b.group || a.element - b.element)) {
    const head: number[] = [];
    const h = new Uint8Array(12);
    const v = new DataView(h.buffer);
    v.setUint16(0, e.group, little);
    v.setUint16(2, e.element, little);
    let n: number;
    if (explicit) {
      h[4] = e.vr.charCodeAt(0);
      h[5] = e.vr.charCodeAt(1);
      if (LONG_VRS.has(e.vr)) {
        v.setUint32(8, e.value.length, little);
        n = 12;
      } else {
        v.setUint16(6, e.value.length, little);
        n = 8;
      }
    } else {
      v.setUint32(4, e.value.length, little);
      n = 8;
    }
    void head;
    parts.push(h.subarray(0, n), e.value);
  }
  return Buffer.concat(parts);
}

export interface DicomSpec {
  rows: number;
  cols: number;
  /** Stored values, rows*cols (*frames*samples). */
  pixels: Int16Array | Uint16Array | Uint8Array;
  signed?: boolean;
  samplesPerPixel?: number;
  frames?: number;
  slope?: number;
  intercept?: number;
  pixelSpacing?: [number, number]; // row, column
  sliceThickness?: number;
  ipp?: [number, number, number];
  iop?: [number, number, number, number, number, number];
  instanceNumber?: number;
  seriesUid?: string;
  transferSyntax?: 'explicit-le' | 'implicit-le' | 'explicit-be' | 'jpeg-baseline';
}

const TS_UID = {
  'explicit-le': '1.2.840.10008.1.2.1',
  'implicit-le': '1.2.840.10008.1.2',
  'explicit-be': '1.2.840.10008.1.2.2',
  'jpeg-baseline': '1.2.840.10008.1.2.4.50',
};

export function makeDicom(spec: DicomSpec): Uint8Array {
  const ts = spec.transferSyntax ?? 'explicit-le';
  const little = ts !== 'explicit-be';
  const explicit = ts !== 'implicit-le';
  const bits = spec.pixels.BYTES_PER_ELEMENT * 8;
  const meta: El[] = [
    { group: 2, element: 1, vr: 'OB', value: new Uint8Array([0, 1]) },
    { group: 2, element: 2, vr: 'UI', value: uidStr('1.2.840.10008.5.1.4.1.1.2') },
    { group: 2, element: 3, vr: 'UI', value: uidStr('1.2.3.4.5.6.7') },
    { group: 2, element: 0x10, vr: 'UI', value: uidStr(TS_UID[ts]) },
  ];
  const metaBody = encode(meta, true, true);
  const groupLen = encode([{ group: 2, element: 0, vr: 'UL', value: ul(metaBody.length) }], true, true);
  const pix = new Uint8Array(spec.pixels.byteLength);
  const pv = new DataView(pix.buffer);
  for (let i = 0; i < spec.pixels.length; i++) {
    if (bits === 8) pix[i] = spec.pixels[i];
    else if (spec.signed) pv.setInt16(2 * i, spec.pixels[i], little);
    else pv.setUint16(2 * i, spec.pixels[i], little);
  }
  const els: El[] = [
    { group: 8, element: 0x60, vr: 'CS', value: str('CT') },
    { group: 0x20, element: 0x0e, vr: 'UI', value: uidStr(spec.seriesUid ?? '1.2.3.4') },
    { group: 0x28, element: 0x02, vr: 'US', value: us(spec.samplesPerPixel ?? 1, little) },
    {
      group: 0x28,
      element: 0x04,
      vr: 'CS',
      value: str((spec.samplesPerPixel ?? 1) === 3 ? 'RGB' : 'MONOCHROME2'),
    },
    { group: 0x28, element: 0x10, vr: 'US', value: us(spec.rows, little) },
    { group: 0x28, element: 0x11, vr: 'US', value: us(spec.cols, little) },
    { group: 0x28, element: 0x100, vr: 'US', value: us(bits, little) },
    { group: 0x28, element: 0x101, vr: 'US', value: us(bits, little) },
    { group: 0x28, element: 0x102, vr: 'US', value: us(bits - 1, little) },
    { group: 0x28, element: 0x103, vr: 'US', value: us(spec.signed ? 1 : 0, little) },
    { group: 0x7fe0, element: 0x10, vr: bits === 8 ? 'OB' : 'OW', value: pix },
  ];
  if (spec.frames) els.push({ group: 0x28, element: 0x08, vr: 'IS', value: str(String(spec.frames)) });
  if (spec.slope !== undefined)
    els.push({ group: 0x28, element: 0x1053, vr: 'DS', value: str(String(spec.slope)) });
  if (spec.intercept !== undefined)
    els.push({ group: 0x28, element: 0x1052, vr: 'DS', value: str(String(spec.intercept)) });
  if (spec.pixelSpacing)
    els.push({ group: 0x28, element: 0x30, vr: 'DS', value: str(spec.pixelSpacing.join('\\')) });
  if (spec.sliceThickness !== undefined)
    els.push({ group: 0x18, element: 0x50, vr: 'DS', value: str(String(spec.sliceThickness)) });
  if (spec.ipp) els.push({ group: 0x20, element: 0x32, vr: 'DS', value: str(spec.ipp.join('\\')) });
  if (spec.iop) els.push({ group: 0x20, element: 0x37, vr: 'DS', value: str(spec.iop.join('\\')) });
  if (spec.instanceNumber !== undefined)
    els.push({ group: 0x20, element: 0x13, vr: 'IS', value: str(String(spec.instanceNumber)) });
  const body = encode(els, explicit, little);
  const pre = new Uint8Array(132);
  pre.set([0x44, 0x49, 0x43, 0x4d], 128);
  return Buffer.concat([pre, groupLen, metaBody, body]);
}
