/**
 * Neighbourhood-code tables of the DeepMind surface-distance method.
 *
 * A "corner" of the voxel grid sees the 2x2x2 voxels around it. Their 8 bits form a code
 * (the challenge's kernel [[[128,64],[32,16]],[[8,4],[2,1]]] applied by correlation, so bit 1 is the
 * voxel (z,y,x), bit 2 (z,y,x-1), bit 4 (z,y-1,x), bit 8 (z,y-1,x-1), and bits 16..128 the same four
 * on slice z-1). Marching cubes turns each code into up to 4 triangles; the table below holds, for
 * every code, the absolute components of their normals times 8 (the normal length is the
 * triangle area for unit spacing). The area only depends on the absolute values, and the table is
 * symmetric under complement (code c and 255-c give the same normals), so 128 entries suffice.
 */

// One string per code 0..127; each group of 3 digits is |n0|*8, |n1|*8, |n2|*8 of one normal.
const NORMALS_X8_HALF: readonly string[] = [
  '000',
  '111',
  '111',
  '220 220',
  '111',
  '202 202',
  '111 111',
  '400 222 111',
  '111',
  '111 111',
  '202 202',
  '400 222 111',
  '220 220',
  '400 222 111',
  '400 222 111',
  '400 400',
  '111',
  '022 022',
  '111 111',
  '040 222 111',
  '111 111',
  '004 222 111',
  '111 111 111',
  '111 222 222 111',
  '111 111',
  '022 022 111',
  '202 202 111',
  '111 333 022 202',
  '111 220 220',
  '333 022 111 220',
  '400 111 222 111',
  '400 111 222',
  '111',
  '111 111',
  '022 022',
  '040 111 222',
  '111 111',
  '111 202 202',
  '022 022 111',
  '333 022 111 202',
  '111 111',
  '111 111 111',
  '004 222 111',
  '222 222 111 111',
  '111 220 220',
  '400 222 111 111',
  '022 333 111 220',
  '400 222 111',
  '220 220',
  '040 222 111',
  '040 111 222',
  '040 040',
  '220 220 111',
  '333 202 111 220',
  '111 040 222 111',
  '040 222 111',
  '111 220 220',
  '040 222 111 111',
  '333 220 111 202',
  '040 222 111',
  '220 220 220 220',
  '220 220 111',
  '111 220 220',
  '220 220',
  '111',
  '111 111',
  '111 111',
  '111 220 220',
  '022 022',
  '004 222 111',
  '022 022 111',
  '333 022 111 220',
  '111 111',
  '111 111 111',
  '111 202 202',
  '400 222 111 111',
  '040 222 111',
  '222 222 111 111',
  '202 333 022 111',
  '400 222 111',
  '202 202',
  '004 222 111',
  '111 202 202',
  '202 333 220 111',
  '004 222 111',
  '004 004',
  '111 111 222 004',
  '111 222 004',
  '202 202 111',
  '004 222 111 111',
  '202 202 202 202',
  '111 202 202',
  '202 333 220 111',
  '004 222 111',
  '111 202 202',
  '202 202',
  '111 111',
  '111 111 111',
  '111 022 022',
  '040 111 222 111',
  '022 022 111',
  '004 222 111 111',
  '022 022 022 022',
  '022 022 111',
  '111 111 111',
  '111 111 111 111',
  '004 222 111 111',
  '111 111 111',
  '040 222 111 111',
  '111 111 111',
  '022 022 111',
  '111 111',
  '400 222 111',
  '222 111 222 111',
  '333 022 111 202',
  '040 222 111',
  '333 220 022 111',
  '111 222 004',
  '111 022 022',
  '022 022',
  '400 222 111 111',
  '111 111 111',
  '202 202 111',
  '111 111',
  '220 220 111',
  '111 111',
  '111 111',
  '111',
];

/** Absolute normal components (times 8) of every code 0..255, 3 numbers per normal. */
function normalsOf(code: number): number[] {
  const s = NORMALS_X8_HALF[code < 128 ? code : 255 - code];
  const out: number[] = [];
  for (const g of s.split(' ')) out.push(+g[0], +g[1], +g[2]);
  return out;
}

const NORMALS: readonly number[][] = Array.from({ length: 256 }, (_, c) => normalsOf(c));

/**
 * Surfel area of each of the 256 codes for a voxel spacing (s0, s1, s2) along the array axes:
 * the sum over the code's normals n of |(n0*s1*s2, n1*s0*s2, n2*s0*s1)|.
 */
export function surfaceAreaTable3d(spacing: readonly [number, number, number]): Float64Array {
  const [s0, s1, s2] = spacing;
  const table = new Float64Array(256);
  for (let code = 0; code < 256; code++) {
    const n = NORMALS[code];
    let sum = 0;
    for (let k = 0; k < n.length; k += 3) {
      const a = (n[k] / 8) * s1 * s2;
      const b = (n[k + 1] / 8) * s0 * s2;
      const c = (n[k + 2] / 8) * s0 * s1;
      sum += Math.sqrt(a * a + b * b + c * c);
    }
    table[code] = sum;
  }
  return table;
}

/**
 * Contour length of each 2x2 code (bit 8 = (y-1,x-1), 4 = (y-1,x), 2 = (y,x-1), 1 = (y,x)) for a
 * pixel spacing (s0, s1): the textbook 2D variant of the method (not what the challenge uses).
 */
export function contourLengthTable2d(spacing: readonly [number, number]): Float64Array {
  const [vertical, horizontal] = spacing;
  const diag = 0.5 * Math.sqrt(vertical * vertical + horizontal * horizontal);
  const t = new Float64Array(16);
  t[0b0001] = diag;
  t[0b0010] = diag;
  t[0b0011] = horizontal;
  t[0b0100] = diag;
  t[0b0101] = vertical;
  t[0b0110] = 2 * diag;
  t[0b0111] = diag;
  t[0b1000] = diag;
  t[0b1001] = 2 * diag;
  t[0b1010] = vertical;
  t[0b1011] = diag;
  t[0b1100] = horizontal;
  t[0b1101] = diag;
  t[0b1110] = diag;
  return t;
}

/**
 * The challenge's 2D surfels: a 2D mask is scored as an (H, W, 1) slab, so the 2x2 code q of a
 * corner appears on two corner planes of the slab, once as the 3D code with q's bits on the
 * "current" slice (bits 64, 16, 4, 1) and once on the "previous" slice (twice that). The weight of
 * the corner is the sum of both surfel areas; every code other than 0 is a border (a slab is never
 * full on both sides).
 */
export function slabAreaTable2d(spacing: readonly [number, number, number]): Float64Array {
  const area = surfaceAreaTable3d(spacing);
  const t = new Float64Array(16);
  for (let q = 0; q < 16; q++) {
    const c0 = (q & 8 ? 64 : 0) | (q & 4 ? 16 : 0) | (q & 2 ? 4 : 0) | (q & 1 ? 1 : 0);
    t[q] = area[c0] + area[c0 * 2];
  }
  return t;
}
