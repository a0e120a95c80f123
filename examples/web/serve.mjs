#!/usr/bin/env node
// A small static server for the web example (node:http only). It serves a slice of the
// repository with the repository's own layout, so the page's relative imports resolve in the
// browser exactly as they do in Node:
//
//   /examples/web/                                  the page (index.html, app.mjs, preprocess.mjs, ...)
//   /examples/web/model/<file>                      the model export (--model)
//   /examples/web/clip/<file>                       the CLIP files (--clip)
//   /examples/web/node_modules/onnxruntime-web/dist/ the onnxruntime-web wasm build
//   /packages/io/dist/, /packages/core/dist/        @mcp-medsam/io's and core's compiled modules
//
// Usage: node examples/web/serve.mjs [--model dir] [--clip dir] [--port 8080] [--host 127.0.0.1]
// (--port 0 picks a free port). It prints the page's URL once it listens.
import { createReadStream, existsSync, realpathSync, statSync } from 'node:fs';
import { createServer } from 'node:http';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const REPO = path.resolve(HERE, '..', '..');
export const PAGE_PATH = '/examples/web/';

const USAGE = `usage: node examples/web/serve.mjs [--model dir] [--clip dir] [--port n] [--host addr]
  --model  export directory with manifest.json, image_encoder.onnx, prompt_decoder.onnx
           (default: demo-output/onnx of the repository, written by \`pnpm demo\`)
  --clip   directory with the CLIP image tower vision.onnx and text-features.json
           (default: demo-output/clip of the repository)
  --port   port to listen on (default 8080; 0 picks a free one)
  --host   address to listen on (default 127.0.0.1)`;

const TYPES = {
  '.html': 'text/html; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json; charset=utf-8',
  '.map': 'application/json; charset=utf-8',
  '.wasm': 'application/wasm',
  '.onnx': 'application/octet-stream',
  '.png': 'image/png',
  '.svg': 'image/svg+xml',
};

/** The files of the page itself (nothing else of examples/web is served). */
const PAGE_FILES = new Set(['index.html', 'app.mjs', 'preprocess.mjs', 'style.css', 'sample.png']);

/** The onnxruntime-web files the page loads: the wasm-only ES module and its runtime. */
const ORT_FILES = new Set([
  'ort.wasm.min.mjs',
  'ort.wasm.min.mjs.map',
  'ort-wasm-simd-threaded.mjs',
  'ort-wasm-simd-threaded.wasm',
]);

/**
 * The URL prefixes and where they are served from. `allow(name)` limits a mount to some files;
 * mounts without it serve every file under their directory (never above it).
 */
export function mounts({ model, clip }) {
  const ortDist = path.join(HERE, 'node_modules', 'onnxruntime-web', 'dist');
  return [
    { prefix: `${PAGE_PATH}model/`, dir: model },
    { prefix: `${PAGE_PATH}clip/`, dir: clip },
    {
      prefix: `${PAGE_PATH}node_modules/onnxruntime-web/dist/`,
      dir: ortDist,
      allow: (f) => ORT_FILES.has(f),
    },
    { prefix: '/packages/io/dist/', dir: path.join(REPO, 'packages', 'io', 'dist'), allow: isModule },
    { prefix: '/packages/core/dist/', dir: path.join(REPO, 'packages', 'core', 'dist'), allow: isModule },
    { prefix: PAGE_PATH, dir: HERE, allow: (f) => PAGE_FILES.has(f) },
  ];
}

function isModule(rel) {
  return rel.endsWith('.js') || rel.endsWith('.js.map');
}

/** The file a URL path names under `mounts`, or null (outside every mount, not allowed, missing). */
export function resolveFile(urlPath, table) {
  let p;
  try {
    p = decodeURIComponent(urlPath);
  } catch {
    return null;
  }
  if (p.includes('\0')) return null;
  if (p === PAGE_PATH) p += 'index.html';
  for (const m of table) {
    if (!p.startsWith(m.prefix)) continue;
    const rel = p.slice(m.prefix.length);
    const parts = rel.split('/');
    if (!rel || parts.some((s) => s === '' || s === '.' || s === '..' || s.includes('\\'))) return null;
    if (m.allow && !m.allow(rel)) return null;
    const file = path.join(m.dir, ...parts);
    try {
      // Symbolic links (pnpm's node_modules) are followed, but the result must stay in the mount.
      const real = realpathSync(file);
      const root = realpathSync(m.dir);
      if (real !== root && !real.startsWith(root + path.sep)) return null;
      return statSync(real).isFile() ? real : null;
    } catch {
      return null;
    }
  }
  return null;
}

/** Warnings about missing inputs (the page then shows the error too). */
function checkInputs({ model, clip }) {
  const notes = [];
  const need = (dir, files, hint) => {
    const missing = files.filter((f) => !existsSync(path.join(dir, f)));
    if (missing.length) notes.push(`${dir}: missing ${missing.join(', ')} (${hint})`);
  };
  need(
    model,
    ['manifest.json'],
    'run `pnpm demo`, or `mcp-medsam export --weights ckpt --out dir` and pass --model dir',
  );
  need(
    clip,
    ['vision.onnx', 'text-features.json'],
    'run `pnpm demo`, or see docs/clip-export.md and pass --clip dir',
  );
  if (!existsSync(path.join(REPO, 'packages', 'io', 'dist', 'preprocess', 'inference.js')))
    notes.push('packages/io/dist is missing: run `pnpm build` at the repository root');
  return notes;
}

/** Start the server; resolves to `{ server, url }` once it listens. */
export async function startServer(options = {}) {
  const dirs = {
    model: path.resolve(options.model ?? path.join(REPO, 'demo-output', 'onnx')),
    clip: path.resolve(options.clip ?? path.join(REPO, 'demo-output', 'clip')),
  };
  const table = mounts(dirs);
  const log = options.log ?? (() => {});
  const server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://localhost');
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { allow: 'GET, HEAD' }).end();
      return;
    }
    if (url.pathname === '/' || url.pathname === PAGE_PATH.slice(0, -1)) {
      res.writeHead(302, { location: PAGE_PATH + url.search }).end();
      return;
    }
    const file = resolveFile(url.pathname, table);
    if (!file) {
      log(`404 ${url.pathname}`);
      res.writeHead(404, { 'content-type': 'text/plain; charset=utf-8' }).end(`not found: ${url.pathname}\n`);
      return;
    }
    const size = statSync(file).size;
    res.writeHead(200, {
      'content-type': TYPES[path.extname(file)] ?? 'application/octet-stream',
      'content-length': size,
      // A development server: always the files as they are now.
      'cache-control': 'no-store',
      'x-content-type-options': 'nosniff',
      // Cross-origin isolation: lets onnxruntime-web use SharedArrayBuffer, i.e. threads.
      'cross-origin-opener-policy': 'same-origin',
      'cross-origin-embedder-policy': 'require-corp',
    });
    if (req.method === 'HEAD') {
      res.end();
      return;
    }
    createReadStream(file)
      .on('error', () => res.destroy())
      .pipe(res);
  });
  await new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 8080, options.host ?? '127.0.0.1', () => resolve());
  });
  const addr = server.address();
  const host = addr.family === 'IPv6' ? `[${addr.address}]` : addr.address;
  return { server, url: `http://${host}:${addr.port}${PAGE_PATH}`, dirs, notes: checkInputs(dirs) };
}

async function main() {
  let values;
  try {
    ({ values } = parseArgs({
      options: {
        model: { type: 'string' },
        clip: { type: 'string' },
        port: { type: 'string', default: '8080' },
        host: { type: 'string', default: '127.0.0.1' },
        verbose: { type: 'boolean', default: false },
        help: { type: 'boolean', short: 'h', default: false },
      },
    }));
  } catch (e) {
    console.error(`${e.message}\n${USAGE}`);
    process.exit(2);
  }
  if (values.help) {
    console.log(USAGE);
    return;
  }
  const port = Number(values.port);
  if (!Number.isSafeInteger(port) || port < 0 || port > 65535) {
    console.error(`--port must be an integer in 0..65535, got ${values.port}\n${USAGE}`);
    process.exit(2);
  }
  const { server, url, dirs, notes } = await startServer({
    model: values.model,
    clip: values.clip,
    port,
    host: values.host,
    log: values.verbose ? (line) => console.log(line) : undefined,
  });
  console.log(`model: ${dirs.model}\nclip:  ${dirs.clip}`);
  for (const n of notes) console.warn(`warning: ${n}`);
  // The test reads this line to find the port.
  console.log(`serving ${url}`);
  const stop = () => {
    server.close(() => process.exit(0));
    server.closeAllConnections();
  };
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  main().catch((e) => {
    console.error(e.message);
    process.exit(1);
  });
}
