// Benchmark of the 3D NSD (the challenge's surface Dice at 2 mm) on a 200x512x512 pair.
// Run after `pnpm --filter @mcp-medsam/metrics build`; prints one JSON line per result.
import { scoreCase, surfaceDiceByProbing3d, unionBox } from '../dist/index.js';

const D = 200;
const H = 512;
const W = 512;
const N = D * H * W;

/** Label map of ellipsoids [label, cz, cy, cx, rz, ry, rx], later ones drawn over earlier ones. */
function draw(blobs, shift = [0, 0, 0], grow = 0) {
  const out = new Uint8Array(N);
  for (const [label, cz, cy, cx, rz, ry, rx] of blobs) {
    const z0 = cz + shift[0];
    const y0 = cy + shift[1];
    const x0 = cx + shift[2];
    const a = rz + grow;
    const b = ry + grow;
    const c = rx + grow;
    for (let z = Math.max(0, Math.floor(z0 - a)); z <= Math.min(D - 1, Math.ceil(z0 + a)); z++) {
      const dz = (z - z0) / a;
      for (let y = Math.max(0, Math.floor(y0 - b)); y <= Math.min(H - 1, Math.ceil(y0 + b)); y++) {
        const dy = (y - y0) / b;
        const r = 1 - dz * dz - dy * dy;
        if (r < 0) continue;
        const half = c * Math.sqrt(r);
        const xa = Math.max(0, Math.ceil(x0 - half));
        const xb = Math.min(W - 1, Math.floor(x0 + half));
        const row = (z * H + y) * W;
        for (let x = xa; x <= xb; x++) out[row + x] = label;
      }
    }
  }
  return out;
}

// A CT-like scene: a body-sized ellipsoid with organs inside (liver, kidneys, spleen, a lesion).
const blobs = [
  [1, 100, 256, 256, 95, 230, 240],
  [2, 90, 230, 170, 45, 90, 80],
  [3, 110, 300, 350, 30, 35, 30],
  [4, 110, 300, 160, 30, 35, 30],
  [5, 80, 200, 360, 35, 45, 40],
  [6, 120, 260, 250, 8, 10, 9],
];
const gt = draw(blobs);
const seg = draw(blobs, [1, 2, -2], 1);
const spacing = [0.8, 0.8, 2.5];

function time(fn, reps = 3) {
  let best = Infinity;
  let result;
  for (let r = 0; r < reps; r++) {
    const t0 = performance.now();
    result = fn();
    best = Math.min(best, performance.now() - t0);
  }
  return { ms: best, result };
}

function report(name, voxels, ms, extra = {}) {
  console.log(
    JSON.stringify({
      name,
      voxels,
      ms: +ms.toFixed(1),
      voxelsPerSecond: Math.round(voxels / (ms / 1000)),
      ...extra,
    }),
  );
}

// The case NSD the challenge computes (all 6 labels, each inside its own union box).
{
  const arr = (data) => ({ dtype: 'uint8', shape: [D, H, W], data });
  const { ms, result } = time(() => scoreCase(arr(gt), arr(seg), { spacing, hausdorffPercent: false }));
  report('metrics.nsd3d', N, ms, { labels: result.labels.length, dsc: result.dsc, nsd: result.nsd });
}

// Worst case: one binary mask pair whose union box is (nearly) the whole volume.
{
  const a = new Uint8Array(N);
  const b = new Uint8Array(N);
  for (let i = 0; i < N; i++) {
    a[i] = gt[i] === 1 || gt[i] > 1 ? 1 : 0;
    b[i] = seg[i] !== 0 ? 1 : 0;
  }
  const box = unionBox(a, b, [D, H, W]);
  const { ms, result } = time(() => surfaceDiceByProbing3d(a, b, [D, H, W], 1, box, spacing, 2));
  report('metrics.nsd3d.fullbox', N, ms, { nsd: result });
}

// With the robust Hausdorff distance: every surfel's exact distance (distance-transform path).
{
  const arr = (data) => ({ dtype: 'uint8', shape: [D, H, W], data });
  const { ms, result } = time(() => scoreCase(arr(gt), arr(seg), { spacing }), 1);
  report('metrics.surface3d.hd95', N, ms, { nsd: result.nsd, hd95: result.hd95 });
}
