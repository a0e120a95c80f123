// The page: loads the export and the CLIP files, an image (the bundled sample or a file), lets the
// user drag a box and draws the mask. The image arithmetic is in preprocess.mjs (the library's own
// modules); this file runs the three ONNX graphs with onnxruntime-web and draws.
//
// For tests, `window.__medsam` holds the page's state ('loading' | 'busy' | 'ready' | 'error')
// and the current image, and `window.__lastMask` the last mask with its box and timings.
/* global document, window, location, createImageBitmap, ImageData */
import * as ort from 'onnxruntime-web';
import {
  boxFromDrag,
  boxPrompt,
  CLIP_SIDE,
  CROP_SIDE,
  IMAGE_SIZE,
  maskFromLogits,
  modalityPrompt,
  prepareImage,
  readManifest,
  rgbaToRgb,
} from './preprocess.mjs';

// The wasm build. Threads need SharedArrayBuffer, i.e. a cross-origin isolated page (serve.mjs
// sends the headers); elsewhere onnxruntime-web runs on one thread. ?threads=n overrides.
const threadParam = Number(new URLSearchParams(location.search).get('threads'));
ort.env.wasm.numThreads =
  Number.isSafeInteger(threadParam) && threadParam > 0
    ? threadParam
    : window.crossOriginIsolated
      ? Math.min(4, navigator.hardwareConcurrency || 1)
      : 1;
ort.env.wasm.proxy = false;

const MAX_SIDE = 8192;
const MASK_FILL = [232, 85, 59, 115];
const MASK_EDGE = [255, 214, 64, 255];

const $ = (id) => document.getElementById(id);
const canvas = $('view');
const ctx = canvas.getContext('2d');
const select = $('modality');

const app = {
  /** { manifest, encoder, decoder, vision, visionIn, visionOut, text, urls } */
  models: null,
  /** { name, width, height, rgb, layer (canvas with the picture), pre } */
  image: null,
  /** { models, image, data: Float32Array } */
  embedding: null,
  /** The box of the mask on screen, the box being dragged, the pending request. */
  box: null,
  drag: null,
  request: null,
  /** Canvas with the coloured mask, or null. */
  maskLayer: null,
  busy: 0,
  error: null,
  seq: 0,
};

const status = { state: 'loading', error: null, message: '', image: null, encoded: false };
window.__medsam = status;
window.__lastMask = null;

// ---------------------------------------------------------------------------------------------
// Status

function setMessage(text, isError = false) {
  const el = $('status');
  el.textContent = text;
  el.classList.toggle('error', isError);
  status.message = text;
}

function updateState() {
  const encoded = !!app.embedding && app.embedding.image === app.image && app.embedding.models === app.models;
  status.encoded = encoded;
  status.error = app.error ? String(app.error.message ?? app.error) : null;
  status.state = app.error
    ? 'error'
    : app.busy
      ? 'busy'
      : app.models && app.image && encoded
        ? 'ready'
        : 'loading';
  $('clear').disabled = !app.maskLayer;
}

function fail(e) {
  app.error = e;
  console.error(e);
  setMessage(String(e?.message ?? e), true);
  updateState();
}

function showStats(rows) {
  const dl = $('stats');
  dl.replaceChildren();
  for (const [k, v] of rows) {
    const dt = document.createElement('dt');
    dt.textContent = k;
    const dd = document.createElement('dd');
    dd.textContent = v;
    dl.append(dt, dd);
  }
}

// All onnxruntime work runs one job at a time, in order.
let queue = Promise.resolve();
function serial(fn) {
  const job = queue.then(async () => {
    app.busy++;
    updateState();
    try {
      const r = await fn();
      app.error = null;
      return r;
    } finally {
      app.busy--;
      updateState();
    }
  });
  queue = job.catch(fail);
  return job;
}

// ---------------------------------------------------------------------------------------------
// Loading

async function fetchOk(url) {
  const r = await fetch(url);
  if (!r.ok) {
    const hint =
      r.status === 404
        ? ' (not found: run `pnpm demo` first, or start serve.mjs with --model and --clip; see the README)'
        : '';
    throw new Error(`${url}: HTTP ${r.status}${hint}`);
  }
  return r;
}

async function openSession(url) {
  const bytes = new Uint8Array(await (await fetchOk(url)).arrayBuffer());
  try {
    return await ort.InferenceSession.create(bytes, { executionProviders: ['wasm'] });
  } catch (e) {
    throw new Error(`${url}: onnxruntime-web cannot load it (${e.message})`, { cause: e });
  }
}

const dirUrl = (u) => new URL(u.endsWith('/') ? u : `${u}/`, location.href);

async function loadModels(modelUrl, clipUrl) {
  const base = dirUrl(modelUrl);
  const clipBase = dirUrl(clipUrl);
  setMessage(`Loading the model from ${base.pathname}…`);
  const manifest = readManifest(await (await fetchOk(new URL('manifest.json', base))).json());
  const text = await (await fetchOk(new URL('text-features.json', clipBase))).json();
  if (text?.dim !== manifest.clipDim)
    throw new Error(`text-features.json has dim ${text?.dim}, the model takes ${manifest.clipDim}`);
  const encoder = await openSession(new URL(manifest.encoderFile, base));
  const decoder = await openSession(new URL(manifest.decoderFile, base));
  const vision = await openSession(new URL('vision.onnx', clipBase));
  // As OnnxClipVision picks them: pixel_values in, image_embeds (or the only output) out.
  const visionIn = vision.inputNames.includes('pixel_values') ? 'pixel_values' : vision.inputNames[0];
  const visionOut =
    vision.outputNames.includes('image_embeds') || vision.outputNames.length !== 1
      ? 'image_embeds'
      : vision.outputNames[0];
  const old = app.models;
  app.models = { manifest, encoder, decoder, vision, visionIn, visionOut, text, urls: { base, clipBase } };
  if (old) await Promise.all([old.encoder.release(), old.decoder.release(), old.vision.release()]);

  const previous = select.value;
  select.replaceChildren(
    ...manifest.modalities.map((m) => {
      const o = document.createElement('option');
      o.value = m.name;
      o.textContent = m.name;
      return o;
    }),
  );
  select.value = manifest.modalities.some((m) => m.name === previous)
    ? previous
    : manifest.modalities[0].name;
  select.disabled = false;
  $('model-info').textContent =
    `preset ${manifest.preset}${manifest.quantization ? ` (${manifest.quantization})` : ''}, ` +
    `${manifest.modalities.length} modalities, CLIP ${text.model ?? 'features'} (${text.dim}), ` +
    `${ort.env.wasm.numThreads} thread${ort.env.wasm.numThreads > 1 ? 's' : ''}`;
}

async function loadImage(blob, name, modality) {
  const bitmap = await createImageBitmap(blob, { colorSpaceConversion: 'none', premultiplyAlpha: 'none' });
  const { width, height } = bitmap;
  if (width > MAX_SIDE || height > MAX_SIDE) {
    bitmap.close();
    throw new Error(`${name} is ${width} x ${height}; this page takes images up to ${MAX_SIDE} px a side`);
  }
  const layer = document.createElement('canvas');
  layer.width = width;
  layer.height = height;
  const lctx = layer.getContext('2d', { willReadFrequently: true });
  lctx.drawImage(bitmap, 0, 0);
  bitmap.close();
  const rgb = rgbaToRgb(lctx.getImageData(0, 0, width, height).data, width, height);
  app.image = { name, width, height, rgb, layer, pre: prepareImage(rgb, height, width) };
  app.box = null;
  app.request = null;
  app.maskLayer = null;
  window.__lastMask = null;
  status.image = { name, width, height, rgb };
  if (modality && [...select.options].some((o) => o.value === modality)) select.value = modality;
  canvas.width = width;
  canvas.height = height;
  fitCanvas();
  redraw();
  showStats([['Image', `${name}, ${width} x ${height}`]]);
  updateState();
}

async function loadSample() {
  await loadImage(await (await fetchOk(new URL('./sample.png', location.href))).blob(), 'sample.png', 'CT');
}

// ---------------------------------------------------------------------------------------------
// Inference

async function ensureEmbedding() {
  const { models, image } = app;
  if (!models || !image) return null;
  if (app.embedding?.models === models && app.embedding.image === image) return app.embedding;
  setMessage('Encoding the image…');
  const t0 = performance.now();
  const feeds = { image: new ort.Tensor('float32', image.pre.image, [1, 3, IMAGE_SIZE, IMAGE_SIZE]) };
  const out = await models.encoder.run(feeds);
  const data = out.image_embeddings.data;
  const { embedDim, embeddingSize } = models.manifest;
  if (data.length !== embedDim * embeddingSize ** 2)
    throw new Error(`image_embeddings has ${data.length} values, expected ${embedDim * embeddingSize ** 2}`);
  app.embedding = { models, image, data, ms: performance.now() - t0 };
  updateState();
  setMessage('Drag a box over a structure.');
  return app.embedding;
}

async function segment(req) {
  const { models, image } = app;
  if (!models || !image || req.image !== image) return;
  const times = {};
  let t = performance.now();
  const lap = (k) => {
    const now = performance.now();
    times[k] = now - t;
    t = now;
  };
  const emb = await ensureEmbedding();
  t = performance.now();
  setMessage('Segmenting…');
  const { manifest } = models;
  const mod = modalityPrompt(manifest, models.text, req.modality);
  const p = boxPrompt(image.rgb, image.height, image.width, req.box);
  lap('prompts');
  const clip = await models.vision.run({
    [models.visionIn]: new ort.Tensor('float32', p.clipPixels, [1, 3, CLIP_SIDE, CLIP_SIDE]),
  });
  const clipImage = clip[models.visionOut].data;
  if (clipImage.length !== manifest.clipDim)
    throw new Error(`vision.onnx gives ${clipImage.length} features, the model takes ${manifest.clipDim}`);
  lap('clip');
  const e = manifest.embeddingSize;
  const out = await models.decoder.run({
    image_embeddings: new ort.Tensor('float32', emb.data, [1, manifest.embedDim, e, e]),
    boxes: new ort.Tensor('float32', p.box256, [1, 4]),
    clip_image: new ort.Tensor('float32', clipImage, [1, manifest.clipDim]),
    clip_text: new ort.Tensor('float32', mod.textFeature, [1, manifest.clipDim]),
    category_idx: new ort.Tensor('int64', BigInt64Array.of(BigInt(mod.categoryIdx)), [1]),
    crops: new ort.Tensor('float32', p.crop, [1, 3, CROP_SIDE, CROP_SIDE]),
  });
  lap('decode');
  const lowRes = out.low_res_logits.data;
  const { mask } = maskFromLogits(lowRes, image.pre);
  const iou = out.iou.data[0];
  let foreground = 0;
  for (let i = 0; i < mask.length; i++) foreground += mask[i];
  app.maskLayer = maskLayer(mask, image.width, image.height);
  app.box = req.box;
  lap('postprocess');
  redraw();
  const seq = ++app.seq;
  window.__lastMask = {
    seq,
    width: image.width,
    height: image.height,
    data: mask,
    lowResLogits: lowRes,
    box: [...req.box],
    box256: [...p.box256],
    modality: req.modality,
    categoryIdx: mod.categoryIdx,
    iou,
    foreground,
    times,
  };
  const ms = (v) => `${v.toFixed(0)} ms`;
  showStats([
    ['Image', `${image.name}, ${image.width} x ${image.height}`],
    ['Box', `[${req.box.join(', ')}] (256 frame: [${[...p.box256].join(', ')}])`],
    ['Modality', `${req.modality} (category ${mod.categoryIdx}, text “${mod.text}”)`],
    ['Mask', `${foreground} px (${((100 * foreground) / mask.length).toFixed(1)} % of the image)`],
    ['Predicted IoU', iou.toFixed(3)],
    [
      'Time',
      `encode ${ms(emb.ms)} (once per image), prompts ${ms(times.prompts)}, CLIP ${ms(times.clip)}, ` +
        `decode ${ms(times.decode)}, upsample ${ms(times.postprocess)}`,
    ],
  ]);
  setMessage(foreground ? 'Done. Drag another box, or change the modality.' : 'Done: the mask is empty.');
}

/** Ask for a mask of `box`; boxes drawn while one is being decoded replace each other. */
function requestSegment(box) {
  if (!app.image) return;
  app.request = { box, modality: select.value, image: app.image };
  serial(async () => {
    const req = app.request;
    app.request = null;
    if (req) await segment(req);
  });
}

// ---------------------------------------------------------------------------------------------
// Drawing

function maskLayer(mask, w, h) {
  const img = new ImageData(w, h);
  const px = img.data;
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      const i = y * w + x;
      if (!mask[i]) continue;
      const edge =
        x === 0 ||
        y === 0 ||
        x === w - 1 ||
        y === h - 1 ||
        !mask[i - 1] ||
        !mask[i + 1] ||
        !mask[i - w] ||
        !mask[i + w];
      px.set(edge ? MASK_EDGE : MASK_FILL, 4 * i);
    }
  }
  const layer = document.createElement('canvas');
  layer.width = w;
  layer.height = h;
  layer.getContext('2d').putImageData(img, 0, 0);
  return layer;
}

/**
 * The canvas's size on screen: the image's aspect ratio, as wide as the page allows and at most
 * 70 % of the window's height; small images are enlarged (to 720 px) so boxes are easy to draw.
 */
function fitCanvas() {
  const { width: w, height: h } = canvas;
  const avail = canvas.closest('main').clientWidth - 2;
  const scale = Math.min(avail / w, (0.7 * window.innerHeight) / h, Math.max(1, 720 / Math.max(w, h)));
  canvas.style.width = `${Math.max(1, Math.floor(w * scale))}px`;
  canvas.style.height = `${Math.max(1, Math.floor(h * scale))}px`;
}

/** Canvas pixels per CSS pixel, so lines keep their on-screen width at any zoom. */
function pixelRatio() {
  const r = canvas.getBoundingClientRect();
  return r.width > 0 ? canvas.width / r.width : 1;
}

function strokeBox(box, colour, dashed) {
  const k = pixelRatio();
  ctx.save();
  ctx.lineWidth = 2 * k;
  ctx.strokeStyle = colour;
  if (dashed) ctx.setLineDash([6 * k, 4 * k]);
  const [x0, y0, x1, y1] = box;
  ctx.strokeRect(x0, y0, x1 - x0, y1 - y0);
  ctx.restore();
}

function redraw() {
  ctx.clearRect(0, 0, canvas.width, canvas.height);
  if (!app.image) return;
  ctx.drawImage(app.image.layer, 0, 0);
  if (app.maskLayer) ctx.drawImage(app.maskLayer, 0, 0);
  if (app.box && !app.drag) strokeBox(app.box, '#4fc3f7', false);
  if (app.drag) {
    const { a, b } = app.drag;
    strokeBox([Math.min(a.x, b.x), Math.min(a.y, b.y), Math.max(a.x, b.x), Math.max(a.y, b.y)], '#fff', true);
  }
}

function toImage(e) {
  const r = canvas.getBoundingClientRect();
  const x = ((e.clientX - r.left) * canvas.width) / r.width;
  const y = ((e.clientY - r.top) * canvas.height) / r.height;
  return { x: Math.max(0, Math.min(canvas.width, x)), y: Math.max(0, Math.min(canvas.height, y)) };
}

// ---------------------------------------------------------------------------------------------
// Events

canvas.addEventListener('pointerdown', (e) => {
  if (!app.image || e.button !== 0) return;
  canvas.setPointerCapture(e.pointerId);
  const p = toImage(e);
  app.drag = { a: p, b: p };
  redraw();
});
canvas.addEventListener('pointermove', (e) => {
  if (!app.drag) return;
  app.drag.b = toImage(e);
  redraw();
});
canvas.addEventListener('pointerup', (e) => {
  if (!app.drag) return;
  app.drag.b = toImage(e);
  const box = boxFromDrag(app.drag.a, app.drag.b, app.image.width, app.image.height);
  app.drag = null;
  redraw();
  if (!box) {
    setMessage('That box is too small: drag over the structure.');
    return;
  }
  app.box = box;
  redraw();
  requestSegment(box);
});
canvas.addEventListener('pointercancel', () => {
  app.drag = null;
  redraw();
});

window.addEventListener('resize', () => {
  fitCanvas();
  redraw();
});

select.addEventListener('change', () => {
  if (app.box) requestSegment(app.box);
});

$('clear').addEventListener('click', () => {
  app.box = null;
  app.maskLayer = null;
  redraw();
  updateState();
  showStats(app.image ? [['Image', `${app.image.name}, ${app.image.width} x ${app.image.height}`]] : []);
});

$('sample').addEventListener('click', () => {
  serial(async () => {
    await loadSample();
    await ensureEmbedding();
  });
});

$('file').addEventListener('change', (e) => {
  const f = e.target.files?.[0];
  if (!f) return;
  serial(async () => {
    await loadImage(f, f.name);
    await ensureEmbedding();
  });
});

$('model-form').addEventListener('submit', (e) => {
  e.preventDefault();
  serial(async () => {
    await loadModels($('model-url').value, $('clip-url').value);
    await ensureEmbedding();
  });
});

// ---------------------------------------------------------------------------------------------
// Start: ?model=…&clip=… override the default URLs.

const params = new URLSearchParams(location.search);
if (params.get('model')) $('model-url').value = params.get('model');
if (params.get('clip')) $('clip-url').value = params.get('clip');
serial(async () => {
  await loadSample();
  await loadModels($('model-url').value, $('clip-url').value);
  await ensureEmbedding();
});
