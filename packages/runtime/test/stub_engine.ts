// The stand-in network of ../shared/fixtures/README.md (e2e/stub-model): the "encoder" returns the
// preprocessed image, the "decoder" a box-shaped window of it. It makes the pipeline's own logic
// (boxes, margins, crops, 3D fallbacks) visible in the masks.
import type { DecodePrompts, DecodeResult, SegmentationEngine } from '../src/index.js';

export class StubEngine implements SegmentationEngine {
  readonly name = 'stub';
  readonly clipDim = 512;
  encodeCalls = 0;
  decodeBatches: number[] = [];

  async encode(images: Float32Array, n: number): Promise<Float32Array[]> {
    this.encodeCalls += n;
    const per = images.length / n;
    return Array.from({ length: n }, (_, i) => images.slice(i * per, (i + 1) * per));
  }

  async decode(image: Float32Array, p: DecodePrompts, n: number): Promise<DecodeResult> {
    this.decodeBatches.push(n);
    const out = new Float32Array(n * 65536).fill(-1);
    for (let b = 0; b < n; b++) {
      const [x0, y0, x1, y1] = p.boxes.subarray(4 * b, 4 * b + 4);
      if (x1 - x0 < 24 || y1 - y0 < 24) continue;
      const [rx0, rx1] = [x0 + 0.2 * (x1 - x0), x1 - 0.2 * (x1 - x0)];
      const [ry0, ry1] = [y0 + 0.2 * (y1 - y0), y1 - 0.2 * (y1 - y0)];
      for (let i = 0; i < 256; i++)
        for (let j = 0; j < 256; j++)
          if (rx0 <= j + 0.5 && j + 0.5 <= rx1 && ry0 <= i + 0.5 && i + 0.5 <= ry1)
            out[b * 65536 + i * 256 + j] = Math.fround(image[i * 256 + j] - 0.45);
    }
    return { lowResLogits: out, iou: new Float32Array(n) };
  }

  async close(): Promise<void> {}
}
