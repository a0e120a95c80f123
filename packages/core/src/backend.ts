import { createRequire } from 'node:module';
import { tf } from './tf.js';
import { registerWasmGradientKernels } from './grad/index.js';
import { registerWasmKernels } from './kernels/index.js';
import { BackendError } from './errors.js';

/** The tensor backends in order of preference. */
export type BackendName = 'tensorflow-gpu' | 'tensorflow' | 'wasm' | 'cpu';

export interface BackendInfo {
  /** What was asked for ('auto' when nothing was forced). */
  requested: BackendName | 'auto';
  /** The tfjs backend that runs the ops. */
  name: BackendName;
  /** The tfjs registry name ('tensorflow' for both native builds). */
  tfName: string;
}

export interface InitBackendOptions {
  /** Force a backend; defaults to `MCP_MEDSAM_BACKEND` or automatic choice. */
  backend?: BackendName | 'auto';
  /** Where log lines go; `null` silences them. Defaults to stderr. */
  log?: ((line: string) => void) | null;
}

const require = createRequire(import.meta.url);
let current: BackendInfo | undefined;

function parseBackendName(value: string, source: string): BackendName | 'auto' {
  const names = ['auto', 'tensorflow-gpu', 'tensorflow', 'wasm', 'cpu'];
  if (!names.includes(value)) {
    throw new BackendError(`${source}: unknown backend '${value}' (expected one of ${names.join(', ')})`);
  }
  return value as BackendName | 'auto';
}

/** Loads a native tfjs binding if it is installed; it registers the 'tensorflow' backend. */
function tryNative(pkg: '@tensorflow/tfjs-node-gpu' | '@tensorflow/tfjs-node'): boolean {
  try {
    require.resolve(pkg);
  } catch {
    return false;
  }
  try {
    require(pkg);
    return tf.findBackend('tensorflow') !== null || tf.findBackendFactory('tensorflow') !== null;
  } catch {
    return false;
  }
}

async function activate(name: BackendName): Promise<boolean> {
  if (name === 'tensorflow-gpu' || name === 'tensorflow') {
    if (!tryNative(name === 'tensorflow-gpu' ? '@tensorflow/tfjs-node-gpu' : '@tensorflow/tfjs-node'))
      return false;
    return tf.setBackend('tensorflow');
  }
  try {
    return await tf.setBackend(name);
  } catch {
    return false;
  }
}

/**
 * Chooses and initialises the tensor backend: tfjs-node-gpu, then tfjs-node when installed,
 * else wasm, else cpu. `MCP_MEDSAM_BACKEND` (or `options.backend`) forces one. Safe to call
 * repeatedly; later calls return the active choice unless a different backend is forced.
 */
export async function initBackend(options: InitBackendOptions = {}): Promise<BackendInfo> {
  const log = options.log === undefined ? (line: string) => process.stderr.write(line + '\n') : options.log;
  const env = process.env.MCP_MEDSAM_BACKEND;
  const requested =
    options.backend ?? (env ? parseBackendName(env, 'MCP_MEDSAM_BACKEND') : ('auto' as const));
  if (options.backend) parseBackendName(options.backend, 'initBackend');
  if (current && (requested === 'auto' || requested === current.name)) return current;

  const order: BackendName[] =
    requested === 'auto' ? ['tensorflow-gpu', 'tensorflow', 'wasm', 'cpu'] : [requested];
  for (const name of order) {
    if (await activate(name)) {
      await tf.ready();
      registerWasmGradientKernels();
      registerWasmKernels();
      current = { requested, name, tfName: tf.getBackend() };
      log?.(`[mcp-medsam] tensor backend: ${name}${requested === 'auto' ? '' : ' (forced)'}`);
      return current;
    }
  }
  throw new BackendError(
    requested === 'auto'
      ? 'no tensor backend could be initialised (tried tensorflow-gpu, tensorflow, wasm, cpu)'
      : `backend '${requested}' is not available${
          requested.startsWith('tensorflow')
            ? ' (install @tensorflow/tfjs-node or @tensorflow/tfjs-node-gpu)'
            : ''
        }`,
  );
}

/** The backend chosen by the last `initBackend` call, if any. */
export function activeBackend(): BackendInfo | undefined {
  return current;
}
