/**
 * The loss curve as a PNG (the original writes `log.png` each epoch): step losses in grey,
 * epoch means in blue, on a light grid; drawn into an RGB raster with no plotting dependency.
 */
import { writePngFile } from '@mcp-medsam/io';

const W = 640;
const H = 360;
const M = 24; // margin

function line(img: Uint8Array, x0: number, y0: number, x1: number, y1: number, rgb: number[]): void {
  const n = Math.max(1, Math.ceil(Math.max(Math.abs(x1 - x0), Math.abs(y1 - y0))));
  for (let i = 0; i <= n; i++) {
    const x = Math.round(x0 + ((x1 - x0) * i) / n);
    const y = Math.round(y0 + ((y1 - y0) * i) / n);
    if (x < 0 || y < 0 || x >= W || y >= H) continue;
    img.set(rgb, (y * W + x) * 3);
  }
}

/** Renders the curve; `epochMeans[i]` is drawn at the step where epoch i ended (`epochEnds[i]`). */
export function renderLossCurve(stepLosses: number[], epochMeans: number[], epochEnds: number[]): Uint8Array {
  const img = new Uint8Array(W * H * 3).fill(255);
  const all = [...stepLosses, ...epochMeans].filter(Number.isFinite);
  const lo = all.length ? Math.min(...all) : 0;
  const hi = all.length ? Math.max(...all) : 1;
  const span = hi > lo ? hi - lo : 1;
  const n = Math.max(stepLosses.length, 2);
  const px = (s: number) => M + ((W - 2 * M) * s) / (n - 1);
  const py = (v: number) => H - M - ((H - 2 * M) * (v - lo)) / span;
  for (let k = 0; k <= 4; k++) {
    const y = Math.round(M + ((H - 2 * M) * k) / 4);
    line(img, M, y, W - M, y, [230, 230, 230]);
  }
  line(img, M, H - M, W - M, H - M, [0, 0, 0]);
  line(img, M, M, M, H - M, [0, 0, 0]);
  for (let s = 1; s < stepLosses.length; s++) {
    if (!Number.isFinite(stepLosses[s - 1]) || !Number.isFinite(stepLosses[s])) continue;
    line(img, px(s - 1), py(stepLosses[s - 1]), px(s), py(stepLosses[s]), [170, 170, 170]);
  }
  for (let e = 0; e < epochMeans.length; e++) {
    const x = px(epochEnds[e] - 1);
    const y = py(epochMeans[e]);
    if (e > 0) line(img, px(epochEnds[e - 1] - 1), py(epochMeans[e - 1]), x, y, [30, 90, 200]);
    for (let d = -2; d <= 2; d++) line(img, x - 2, y + d, x + 2, y + d, [30, 90, 200]);
  }
  return img;
}

export async function writeLossCurve(
  file: string,
  stepLosses: number[],
  epochMeans: number[],
  epochEnds: number[],
): Promise<void> {
  const data = renderLossCurve(stepLosses, epochMeans, epochEnds);
  await writePngFile(file, { dtype: 'uint8', shape: [H, W, 3], data });
}
