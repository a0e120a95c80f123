/**
 * `manifest.json` of an export directory (written by `@mcp-medsam/exporter`): which files hold
 * the two graphs and the sizes the runtime needs to feed them.
 */
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { FormatError, InputError } from '@mcp-medsam/core/common';
import { DECODER_INPUTS } from '@mcp-medsam/exporter';

export const MANIFEST_FILE = 'manifest.json';

/** What the runtime reads from a manifest. */
export interface ExportManifest {
  preset: string;
  /** Absolute paths of the two graphs. */
  encoderFile: string;
  decoderFile: string;
  embedDim: number;
  embeddingSize: number;
  clipDim: number;
  /** 'int8' when the weights were quantized, else null. */
  quantization: string | null;
}

function check(ok: boolean, what: string, file: string): void {
  if (!ok) throw new FormatError(`${MANIFEST_FILE}: ${what}`, { file });
}

/** Read and check `<dir>/manifest.json`. */
export async function readManifest(dir: string): Promise<ExportManifest> {
  const file = path.join(dir, MANIFEST_FILE);
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    const why = err.code === 'ENOENT' ? 'no manifest.json: not an export directory' : err.message;
    throw new InputError(`cannot read the export (${why})`, { file, cause: e });
  }
  let m: Record<string, any>;
  try {
    m = JSON.parse(text);
  } catch (e) {
    throw new FormatError(`${MANIFEST_FILE} is not JSON (${(e as Error).message})`, { file, cause: e });
  }
  check(m?.format === 'mcp-medsam-onnx', `format must be 'mcp-medsam-onnx', got ${m?.format}`, file);
  check(m.version === 1, `unsupported version ${m.version}`, file);
  const pre = m.preprocessing ?? {};
  const int = (v: unknown, what: string) => {
    check(Number.isSafeInteger(v) && (v as number) > 0, `${what} must be a positive integer`, file);
    return v as number;
  };
  const graph = (key: string) => {
    const f = m.files?.[key]?.file;
    check(typeof f === 'string' && f.length > 0, `files.${key}.file is missing`, file);
    return path.resolve(dir, f as string);
  };
  const decInputs = (m.files?.prompt_decoder?.inputs ?? []).map((x: { name: string }) => x.name);
  check(
    JSON.stringify(decInputs) === JSON.stringify(DECODER_INPUTS),
    `prompt_decoder inputs are [${decInputs.join(', ')}], expected [${DECODER_INPUTS.join(', ')}]`,
    file,
  );
  return {
    preset: String(m.preset ?? 'unknown'),
    encoderFile: graph('image_encoder'),
    decoderFile: graph('prompt_decoder'),
    embedDim: int(pre.embedDim, 'preprocessing.embedDim'),
    embeddingSize: int(pre.embeddingSize, 'preprocessing.embeddingSize'),
    clipDim: int(pre.clipDim, 'preprocessing.clipDim'),
    quantization: typeof m.quantization === 'string' ? m.quantization : null,
  };
}
