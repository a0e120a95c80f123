/**
 * Opening an onnxruntime-node session with the project's error conventions, shared by every ONNX
 * model the project runs (the CLIP image tower here, the exported MCP-MedSAM graphs in the
 * runtime): a missing file is an InputError, a file onnxruntime cannot parse a FormatError, an
 * execution provider that cannot be loaded a BackendError, each naming the file.
 */
import { stat } from 'node:fs/promises';
import type * as Ort from 'onnxruntime-node';
import { BackendError, FormatError, InputError } from '@mcp-medsam/core/common';

/** An onnxruntime execution provider: a name ('cpu', 'cuda', ...) or a name with its options. */
export type OnnxExecutionProvider =
  | 'cpu'
  | 'cuda'
  | (string & {})
  | { readonly name: string; readonly [option: string]: unknown };

export type OrtModule = typeof Ort;

/** Options of {@link openOrtSession}. */
export interface OrtSessionOptions {
  /** Threads inside one operator (`intraOpNumThreads`); onnxruntime's default uses every core. */
  threads?: number;
  /**
   * Execution providers in order of preference; default `['cpu']`. 'cuda' needs onnxruntime's CUDA
   * libraries, which the CPU install does not download.
   */
  executionProviders?: readonly OnnxExecutionProvider[];
}

/**
 * Load onnxruntime-node on first use only: the native library is large and packages that only
 * need the text table (or a cached provider fed by something else) should not pay for it.
 */
export async function loadOrt(): Promise<OrtModule> {
  try {
    return await import('onnxruntime-node');
  } catch (e) {
    throw new BackendError(`cannot load onnxruntime-node (${(e as Error).message})`);
  }
}

/** Where a failed session creation comes from: the requested provider, or the file itself. */
function isProviderFailure(message: string): boolean {
  return /ExecutionProvider|backend not found|no available backend/i.test(message);
}

/** Open `file` in onnxruntime-node; see the module comment for the errors. */
export async function openOrtSession(
  file: string,
  options: OrtSessionOptions = {},
): Promise<{ ort: OrtModule; session: Ort.InferenceSession }> {
  const { threads } = options;
  if (threads !== undefined && (!Number.isSafeInteger(threads) || threads <= 0)) {
    throw new InputError(`threads must be a positive integer, got ${threads}`, { file });
  }
  try {
    const info = await stat(file);
    if (!info.isFile()) throw new InputError('cannot read ONNX model (not a regular file)', { file });
  } catch (e) {
    if (e instanceof InputError) throw e;
    const err = e as NodeJS.ErrnoException;
    const why = err.code === 'ENOENT' ? 'no such file' : err.message;
    throw new InputError(`cannot read ONNX model (${why})`, { file, cause: e });
  }
  const ort = await loadOrt();
  const providers = options.executionProviders ?? ['cpu'];
  const sessionOptions: Ort.InferenceSession.SessionOptions = {
    executionProviders: providers as Ort.InferenceSession.ExecutionProviderConfig[],
    ...(threads !== undefined ? { intraOpNumThreads: threads, interOpNumThreads: 1 } : {}),
  };
  try {
    return { ort, session: await ort.InferenceSession.create(file, sessionOptions) };
  } catch (e) {
    const msg = (e as Error).message;
    if (isProviderFailure(msg)) {
      const names = providers.map((p) => (typeof p === 'string' ? p : p.name)).join(', ');
      throw new BackendError(`${file}: cannot run on execution providers [${names}] (${msg})`);
    }
    throw new FormatError(`cannot load ONNX model (${msg})`, { file, cause: e });
  }
}
