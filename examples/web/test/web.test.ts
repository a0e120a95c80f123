// The web example: its image arithmetic (preprocess.mjs, which the page loads as it is) against
// the library, and the page itself in headless Chromium against the Node runtime. A tiny seeded
// model is exported to a temporary directory with the CLIP stand-in, served by serve.mjs; a box
// is dragged on the canvas and the page's mask must be the runtime's mask for the same image, box
// and modality (up to pixels whose logit is within 1e-3 of the threshold: onnxruntime-web and
// onnxruntime-node round differently in the last bits).
//
// Chromium: /usr/bin/chromium (MCP_MEDSAM_CHROMIUM names another). Without it the browser part
// is skipped with a note, unless MCP_MEDSAM_REQUIRE_BROWSER=1 (CI), which makes it an error.
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Browser, Page } from 'playwright-core';
import { Rng, initBackend, nn } from '@mcp-medsam/core';
import { DECODER_INPUTS, exportOnnx, writeStandinClip } from '@mcp-medsam/exporter';
import {
  cropContentData,
  ndarray,
  postprocessLogits,
  preprocessImageData,
  readImage2dFile,
  scaleBox,
  type Box,
} from '@mcp-medsam/io';
import { McpMedsam, TINY } from '@mcp-medsam/model';
import { OnnxClipVision, TextFeatureTable, type ImageFeatureProvider } from '@mcp-medsam/prompts';
import {
  buildBoxPrompts,
  MedsamPredictor,
  OnnxEngine,
  readManifest,
  type SegmentationEngine,
} from '@mcp-medsam/runtime';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const WEB = path.resolve(HERE, '..');
const IO_DIST = path.resolve(WEB, '..', '..', 'packages', 'io', 'dist', 'preprocess', 'inference.js');
const CHROMIUM = process.env.MCP_MEDSAM_CHROMIUM ?? '/usr/bin/chromium';
const REQUIRE_BROWSER = process.env.MCP_MEDSAM_REQUIRE_BROWSER === '1';
const HAVE_BROWSER = existsSync(CHROMIUM);
if (!HAVE_BROWSER && !REQUIRE_BROWSER)
  console.warn(
    `note: no Chromium at ${CHROMIUM}; skipping the browser test of examples/web ` +
      '(install chromium, or set MCP_MEDSAM_CHROMIUM to its path)',
  );

/** Near-threshold tolerance of the browser/Node comparison. */
const LOGIT_TOL = 1e-3;

type Web = typeof import('../preprocess.mjs');
let web: Web;
let dir: string;
let exportDir: string;
let clipDir: string;

beforeAll(async () => {
  if (!existsSync(IO_DIST))
    throw new Error(
      `${IO_DIST} is missing: the page serves @mcp-medsam/io's build; run \`pnpm build\` first`,
    );
  web = await import('../preprocess.mjs');
  dir = await mkdtemp(path.join(os.tmpdir(), 'mcp-medsam-web-example-'));
  exportDir = path.join(dir, 'onnx');
  clipDir = path.join(dir, 'clip');
  await initBackend({ backend: 'wasm', log: null });
  nn.setInitSeed(3);
  const model = new McpMedsam(TINY);
  exportOnnx(model, { outDir: exportDir });
  model.dispose();
  await writeStandinClip(clipDir);
}, 120_000);

afterAll(async () => {
  if (dir) await rm(dir, { recursive: true, force: true });
});

/** RGB test image: gradients, a disc and noise, values in [lo, hi]. */
function testImage(h: number, w: number, seed: number, lo = 0, hi = 255): Uint8Array {
  const rand = new Rng(seed);
  const r = () => rand.random();
  const out = new Uint8Array(h * w * 3);
  for (let y = 0; y < h; y++)
    for (let x = 0; x < w; x++)
      for (let c = 0; c < 3; c++) {
        const disc = (x - w / 3) ** 2 + (y - h / 2) ** 2 < (Math.min(h, w) / 4) ** 2 ? 0.4 : 0;
        const v = 0.3 * (x / w) + 0.2 * (y / h) * (c + 1) + disc + 0.2 * r();
        out[(y * w + x) * 3 + c] = Math.round(lo + (hi - lo) * Math.min(1, v));
      }
  return out;
}

const sameBits = (a: ArrayLike<number> & { buffer: ArrayBufferLike }, b: typeof a) =>
  Buffer.compare(
    Buffer.from(a.buffer, (a as Uint8Array).byteOffset, (a as Uint8Array).byteLength),
    Buffer.from(b.buffer, (b as Uint8Array).byteOffset, (b as Uint8Array).byteLength),
  ) === 0;

/** An engine that is never run: MedsamPredictor only needs it for the CLIP width. */
const idleEngine: SegmentationEngine = {
  name: 'idle',
  clipDim: 512,
  encode: () => Promise.reject(new Error('not used')),
  decode: () => Promise.reject(new Error('not used')),
  close: () => Promise.resolve(),
};

describe("preprocess.mjs (the page's image arithmetic) is the library's", () => {
  const images = [
    { h: 320, w: 384, seed: 1 },
    { h: 37, w: 53, seed: 2 },
    { h: 256, w: 256, seed: 3 },
    { h: 90, w: 600, seed: 4, lo: 100, hi: 140 },
    { h: 700, w: 41, seed: 5 },
  ];

  it.each(images)('image $h x $w: model input, boxes, crops and masks', async ({ h, w, seed, lo, hi }) => {
    const rgb = testImage(h, w, seed, lo, hi);
    const ours = web.prepareImage(rgb, h, w);
    const lib = preprocessImageData(rgb, h, w, 3);
    expect([ours.newH, ours.newW, ours.h, ours.w]).toEqual([lib.newH, lib.newW, h, w]);
    expect(sameBits(ours.image, lib.image)).toBe(true);

    // Boxes as the page makes them from drags, the whole image, edges and thin ones.
    const rand = new Rng(seed + 100);
    const r = () => rand.random();
    const boxes: Box[] = [
      [0, 0, w, h],
      [1, 2, Math.min(w, 3), Math.min(h, 5)],
      [w - 2, h - 2, w, h],
    ];
    for (let i = 0; i < 5; i++) {
      const box = web.boxFromDrag({ x: r() * w, y: r() * h }, { x: r() * w, y: r() * h }, w, h, 1);
      if (box) boxes.push(box as Box);
    }
    // The runtime's prompt builder, with a CLIP tower that records the crops it is given.
    let clipPixels = new Float32Array(0);
    const recorder: ImageFeatureProvider = {
      dim: 512,
      imageSize: 224,
      embed: (pixels, n) => {
        clipPixels = pixels.slice();
        return Promise.resolve(new Float32Array(n * 512));
      },
      close: () => Promise.resolve(),
    };
    for (const box of boxes) {
      const p = web.boxPrompt(rgb, h, w, box);
      const box256 = scaleBox(box, h, w, { truncate: true });
      expect([...p.box256]).toEqual(box256);
      const img = { data: rgb, h, w, c: 3 };
      const textFeature = new Float32Array(512);
      const ref = await buildBoxPrompts(img, [{ cropBox: box, box256 }], recorder, {
        textFeature,
        categoryIdx: 0,
      });
      expect(sameBits(p.crop, ref.crops)).toBe(true);
      expect(sameBits(p.clipPixels, clipPixels)).toBe(true);
      expect(sameBits(p.box256, ref.boxes)).toBe(true);
      const [small] = cropContentData(rgb, h, w, 3, box, [64]);
      expect(sameBits(p.crop, small.data)).toBe(true);
    }
    expect(() => web.boxPrompt(rgb, h, w, [5, 5, 5, 9])).toThrow(/selects no pixel/);

    // Logits with exact zeros and values around the threshold.
    const lowRes = Float32Array.from({ length: 256 * 256 }, (_, i) =>
      i % 97 === 0 ? 0 : i % 89 === 0 ? 1e-7 * (r() - 0.5) : 4 * (r() - 0.5) + Math.sin(i / 300),
    );
    const mine = web.maskFromLogits(lowRes, ours, true);
    const theirs = postprocessLogits(lowRes, lib.newH, lib.newW, h, w, { keepLogits: true });
    expect(sameBits(mine.mask, theirs.mask)).toBe(true);
    expect(sameBits(mine.logits!, theirs.logits!)).toBe(true);
  });

  it('boxes from drags', () => {
    expect(web.boxFromDrag({ x: 10.2, y: 20.7 }, { x: 3.9, y: 40 }, 50, 60)).toEqual([3, 20, 11, 40]);
    expect(web.boxFromDrag({ x: -5, y: -5 }, { x: 70, y: 80 }, 50, 60)).toEqual([0, 0, 50, 60]);
    expect(web.boxFromDrag({ x: 10, y: 10 }, { x: 11, y: 30 }, 50, 60)).toBeNull();
  });

  it("manifest and modality prompts as the runtime's", async () => {
    const manifest = web.readManifest(
      JSON.parse(await readFile(path.join(exportDir, 'manifest.json'), 'utf8')),
    );
    const ref = await readManifest(exportDir);
    expect(manifest).toMatchObject({
      preset: ref.preset,
      embedDim: ref.embedDim,
      embeddingSize: ref.embeddingSize,
      clipDim: ref.clipDim,
      quantization: ref.quantization,
    });
    expect(path.join(exportDir, manifest.encoderFile)).toBe(ref.encoderFile);
    expect(path.join(exportDir, manifest.decoderFile)).toBe(ref.decoderFile);
    const textFile = path.join(clipDir, 'text-features.json');
    const textJson = JSON.parse(await readFile(textFile, 'utf8'));
    const predictor = new MedsamPredictor(
      idleEngine,
      { dim: 512, imageSize: 224, embed: () => Promise.reject(new Error('not used')), close: async () => {} },
      await TextFeatureTable.fromFile(textFile),
    );
    expect(manifest.modalities).toHaveLength(11);
    for (const m of manifest.modalities) {
      const ours = web.modalityPrompt(manifest, textJson, m.name);
      const theirs = await predictor.modalityPrompt(m.name);
      expect(ours.categoryIdx).toBe(theirs.categoryIdx);
      expect(sameBits(ours.textFeature, theirs.textFeature)).toBe(true);
    }
    expect(() => web.modalityPrompt(manifest, textJson, 'Ultrasound')).toThrow(/unknown modality/);
    expect(() => web.readManifest({ format: 'other' })).toThrow(/format/);
    // The page's copy of the decoder's input names is the exporter's.
    expect(web.DECODER_INPUTS).toEqual([...DECODER_INPUTS]);
  });
});

/** Starts `node serve.mjs` on a free port; resolves to the child and the page's URL. */
async function startServe(args: string[]): Promise<{ child: ChildProcess; url: string }> {
  const child = spawn(process.execPath, [path.join(WEB, 'serve.mjs'), ...args, '--port', '0'], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`serve.mjs did not start:\n${out}`)), 20_000);
    const onData = (b: Buffer) => {
      out += b.toString();
      const m = /serving (http:\/\/\S+)/.exec(out);
      if (m) {
        clearTimeout(timer);
        resolve(m[1]);
      }
    };
    child.stdout!.on('data', onData);
    child.stderr!.on('data', (b: Buffer) => (out += b.toString()));
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`serve.mjs exited with ${code}:\n${out}`));
    });
  });
  return { child, url };
}

interface PageMask {
  seq: number;
  width: number;
  height: number;
  box: Box;
  box256: number[];
  modality: string;
  categoryIdx: number;
  iou: number;
  foreground: number;
  data: string;
  lowResLogits: string;
}

describe.skipIf(!HAVE_BROWSER && !REQUIRE_BROWSER)('the page in Chromium', () => {
  let server: ChildProcess | undefined;
  let browser: Browser | undefined;
  let page: Page;
  let url: string;
  const problems: string[] = [];

  beforeAll(async () => {
    if (!existsSync(CHROMIUM))
      throw new Error(`MCP_MEDSAM_REQUIRE_BROWSER=1 but there is no Chromium at ${CHROMIUM}`);
    ({ child: server, url } = await startServe(['--model', exportDir, '--clip', clipDir]));
    const { chromium } = await import('playwright-core');
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: [
        '--headless',
        '--no-sandbox',
        '--disable-gpu',
        '--disable-quic',
        '--no-first-run',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
      ],
    });
    page = await browser.newPage({ viewport: { width: 1000, height: 900 } });
    page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
    page.on('console', (m) => {
      if (m.type() === 'error') problems.push(`console error: ${m.text()}`);
    });
  }, 60_000);

  afterAll(async () => {
    await browser?.close();
    server?.kill();
  });

  it('segments a dragged box exactly as the Node runtime does', async () => {
    await page.goto(url);
    await page.waitForFunction(() => ['ready', 'error'].includes((window as any).__medsam?.state), null, {
      timeout: 30_000,
    });
    const state = await page.evaluate(() => (window as any).__medsam);
    expect(state.error, state.message).toBeNull();
    expect(state.state).toBe('ready');

    // Drag over the liver of the bundled sample (image pixels 60,80 → 200,200).
    const rect = (await page.locator('#view').boundingBox())!;
    const k = rect.width / state.image.width;
    await page.mouse.move(rect.x + 60.5 * k, rect.y + 80.5 * k);
    await page.mouse.down();
    await page.mouse.move(rect.x + 130 * k, rect.y + 140 * k, { steps: 4 });
    await page.mouse.move(rect.x + 199.5 * k, rect.y + 199.5 * k, { steps: 4 });
    await page.mouse.up();
    await page.waitForFunction(() => (window as any).__lastMask?.seq >= 1, null, { timeout: 30_000 });
    const got = await page.evaluate(() => {
      const w = window as any;
      const b64 = (a: Uint8Array) => {
        let s = '';
        for (let i = 0; i < a.length; i += 0x8000) s += String.fromCharCode(...a.subarray(i, i + 0x8000));
        return btoa(s);
      };
      return {
        mask: {
          ...w.__lastMask,
          data: b64(w.__lastMask.data),
          lowResLogits: b64(new Uint8Array(w.__lastMask.lowResLogits.buffer)),
          times: undefined,
        },
        image: {
          width: w.__medsam.image.width,
          height: w.__medsam.image.height,
          rgb: b64(w.__medsam.image.rgb),
        },
      };
    });
    const m = got.mask as PageMask;
    const { width: w, height: h } = got.image;
    const rgb = new Uint8Array(Buffer.from(got.image.rgb, 'base64'));
    const pageMask = new Uint8Array(Buffer.from(m.data, 'base64'));
    expect([m.width, m.height]).toEqual([w, h]);
    expect(pageMask.length).toBe(w * h);
    // The drag became the intended box (to a pixel: the canvas is scaled on screen).
    m.box.forEach((v, i) => expect(Math.abs(v - [60, 80, 200, 200][i])).toBeLessThanOrEqual(1));
    expect(m.modality).toBe('CT');

    // The page decoded sample.png to the same pixels as the library's reader.
    const sample = (await readImage2dFile(path.join(WEB, 'sample.png'))).array;
    expect(sample.shape).toEqual([h, w]);
    const grey = sample.data as Uint8Array;
    expect(rgb.every((v, i) => v === grey[Math.floor(i / 3)])).toBe(true);

    // The Node runtime on the page's pixels, box and modality, with the same files.
    const engine = await OnnxEngine.load(exportDir, { threads: 1 });
    const vision = await OnnxClipVision.create(path.join(clipDir, 'vision.onnx'), { threads: 1 });
    const text = await TextFeatureTable.fromFile(path.join(clipDir, 'text-features.json'));
    const predictor = new MedsamPredictor(engine, vision, text);
    let res;
    try {
      res = await predictor.segment(
        {
          imgs: ndarray('uint8', [h, w, 3], rgb),
          boxes: ndarray('int32', [1, 4], m.box),
          modality: m.modality,
          dims: 2,
        },
        { keepLogits: true },
      );
    } finally {
      await predictor.close();
    }
    expect(res.calls[0].box256).toEqual(m.box256);
    // The decoder's outputs: onnxruntime-web against onnxruntime-node, same inputs.
    const pageLogits = new Float32Array(new Uint8Array(Buffer.from(m.lowResLogits, 'base64')).buffer);
    const nodeLogits = res.lowResLogits![0];
    expect(pageLogits.length).toBe(nodeLogits.length);
    let maxDiff = 0;
    let maxAbs = 0;
    for (let i = 0; i < nodeLogits.length; i++) {
      maxDiff = Math.max(maxDiff, Math.abs(pageLogits[i] - nodeLogits[i]));
      maxAbs = Math.max(maxAbs, Math.abs(nodeLogits[i]));
    }
    expect(maxDiff).toBeLessThan(1e-4 * Math.max(1, maxAbs));
    expect(Math.abs(res.calls[0].iou - m.iou)).toBeLessThan(1e-3);
    const pre = preprocessImageData(rgb, h, w, 3);
    const logits = postprocessLogits(res.lowResLogits![0], pre.newH, pre.newW, h, w, {
      keepLogits: true,
    }).logits!;
    const nodeMask = res.segs.data as Uint8Array;
    let differ = 0;
    let differFar = 0;
    let nearThreshold = 0;
    let fg = 0;
    for (let i = 0; i < w * h; i++) {
      const near = Math.abs(logits[i]) < LOGIT_TOL;
      if (near) nearThreshold++;
      if (nodeMask[i]) fg++;
      if ((nodeMask[i] ? 1 : 0) !== pageMask[i]) {
        differ++;
        if (!near) differFar++;
      }
    }
    // A mask with both classes, so the comparison means something.
    expect(fg).toBeGreaterThan(100);
    expect(fg).toBeLessThan(w * h - 100);
    expect(m.foreground).toBe(pageMask.reduce((s, v) => s + v, 0));
    expect(differFar, `${differ} pixels differ, ${differFar} with |logit| >= ${LOGIT_TOL}`).toBe(0);
    expect(differ).toBeLessThanOrEqual(Math.max(5, nearThreshold));
    expect(differ).toBeLessThanOrEqual(20);

    const shot = path.join(dir, 'page.png');
    await page.screenshot({ path: shot, fullPage: true });
    const png = await readFile(shot);
    expect((await stat(shot)).size).toBeGreaterThan(1000);
    expect([...png.subarray(0, 8)]).toEqual([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
    expect(png.readUInt32BE(16)).toBeGreaterThan(0); // IHDR width
    expect(problems).toEqual([]);
  }, 60_000);

  it('serves nothing outside the page, the model and the library builds', async () => {
    const origin = new URL(url).origin;
    const codes = async (p: string) => (await fetch(origin + p)).status;
    expect(await codes('/examples/web/model/manifest.json')).toBe(200);
    expect(await codes('/examples/web/clip/vision.onnx')).toBe(200);
    expect(await codes('/packages/io/dist/preprocess/inference.js')).toBe(200);
    expect(await codes('/examples/web/node_modules/onnxruntime-web/dist/ort-wasm-simd-threaded.wasm')).toBe(
      200,
    );
    expect(await codes('/examples/web/serve.mjs')).toBe(404);
    expect(await codes('/examples/web/model/../../../package.json')).toBe(404);
    expect(await codes('/examples/web/model/%2e%2e/%2e%2e/package.json')).toBe(404);
    expect(await codes('/packages/io/src/index.ts')).toBe(404);
    expect(await codes('/package.json')).toBe(404);
  });
});
