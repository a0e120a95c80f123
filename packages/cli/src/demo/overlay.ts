/**
 * Overlay pictures for the demo report: the image (the middle slice of the first box for 3D),
 * the predicted labels tinted, the ground truth's outline in white and the box prompts in yellow.
 */
import { ndarray, toFloat64, writePngFile, type NdArray } from '@mcp-medsam/io';

const PALETTE: [number, number, number][] = [
  [230, 25, 75],
  [60, 180, 75],
  [0, 130, 200],
  [245, 130, 48],
  [145, 30, 180],
  [70, 240, 240],
  [240, 50, 230],
  [210, 245, 60],
];
const ALPHA = 0.45;
const BOX = [255, 225, 25];
const OUTLINE = [255, 255, 255];

export interface OverlayInput {
  imgs: NdArray;
  dims: 2 | 3;
  boxes: NdArray;
  /** Predicted label map, same spatial shape as the image. */
  segs: NdArray;
  gts?: NdArray;
}

/** The slice an overlay shows: 0 for 2D, the middle of the first box's z range for 3D. */
export function overlaySlice(input: OverlayInput): number {
  if (input.dims === 2) return 0;
  const b = toFloat64(input.boxes);
  return b.length >= 6 ? Math.round((b[2] + b[5]) / 2) : Math.floor(input.imgs.shape[0] / 2);
}

/** Renders the overlay as an (H, W, 3) uint8 image. */
export function renderOverlay(input: OverlayInput): NdArray<'uint8'> {
  const { imgs, dims } = input;
  const [H, W] = dims === 2 ? imgs.shape.slice(0, 2) : imgs.shape.slice(1, 3);
  const z = overlaySlice(input);
  const plane = H * W;
  const pix = toFloat64(imgs);
  const rgb = dims === 2 && imgs.shape.length === 3;
  const seg = toFloat64(input.segs).subarray(z * plane, (z + 1) * plane);
  const gt = input.gts ? toFloat64(input.gts).subarray(z * plane, (z + 1) * plane) : null;
  const out = ndarray('uint8', [H, W, 3]);
  const o = out.data;
  for (let i = 0; i < plane; i++) {
    const label = seg[i];
    for (let c = 0; c < 3; c++) {
      const v = rgb ? pix[i * 3 + c] : pix[z * plane + i];
      o[i * 3 + c] =
        label > 0 ? Math.round((1 - ALPHA) * v + ALPHA * PALETTE[(label - 1) % PALETTE.length][c]) : v;
    }
  }
  if (gt)
    for (let y = 0; y < H; y++)
      for (let x = 0; x < W; x++) {
        const i = y * W + x;
        const l = gt[i];
        if (l === 0) continue;
        const edge =
          x === 0 ||
          y === 0 ||
          x === W - 1 ||
          y === H - 1 ||
          gt[i - 1] !== l ||
          gt[i + 1] !== l ||
          gt[i - W] !== l ||
          gt[i + W] !== l;
        if (edge) o.set(OUTLINE, i * 3);
      }
  const b = toFloat64(input.boxes);
  const k = dims === 2 ? 4 : 6;
  for (let r = 0; r < b.length / k; r++) {
    const row = b.subarray(r * k, (r + 1) * k);
    const [x0, y0, x1, y1] = dims === 2 ? row : [row[0], row[1], row[3], row[4]];
    if (dims === 3 && (z < row[2] || z > row[5])) continue;
    const clampX = (x: number) => Math.max(0, Math.min(W - 1, x));
    const clampY = (y: number) => Math.max(0, Math.min(H - 1, y));
    for (let x = clampX(x0); x <= clampX(x1); x++) {
      o.set(BOX, (clampY(y0) * W + x) * 3);
      o.set(BOX, (clampY(y1) * W + x) * 3);
    }
    for (let y = clampY(y0); y <= clampY(y1); y++) {
      o.set(BOX, (y * W + clampX(x0)) * 3);
      o.set(BOX, (y * W + clampX(x1)) * 3);
    }
  }
  return out;
}

export async function writeOverlay(file: string, input: OverlayInput): Promise<void> {
  await writePngFile(file, renderOverlay(input));
}
