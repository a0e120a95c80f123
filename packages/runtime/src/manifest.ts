/**
 * `manifest.json` of an export directory (written by `@mcp-medsam/exporter`): which files hold
 * the two graphs and the sizes the runtime needs to feed them.
 */
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { FormatError, InputError } from '@mcp-medsam/core/common';
import { DECODER_INPUTS } from '@mcp-medsam/exporter';

export const MANIFEST_FILE = 'manifest.json';

/** A prompt-extension input of the decoder graph, as the manifest records it. */
export interface ManifestExtraInput {
  /** The extension it belongs to. */
  extension: string;
  name: string;
  dtype: 'float32' | 'int32';
  /** 'batch', symbols such as 'P', or fixed sizes. */
  shape: (number | string)[];
}

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
  /** The decoder's prompt-extension inputs, after the base ones (empty without extensions). */
  extraInputs: ManifestExtraInput[];
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
  const extraInputs = readExtraInputs(m, file);
  const expected = [...DECODER_INPUTS, ...extraInputs.map((x) => x.name)];
  check(
    JSON.stringify(decInputs) === JSON.stringify(expected),
    `prompt_decoder inputs are [${decInputs.join(', ')}], expected [${expected.join(', ')}]` +
      (decInputs.length > DECODER_INPUTS.length && !extraInputs.length
        ? ' (inputs after the base ones need promptExtensions entries)'
        : ''),
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
    extraInputs,
  };
}

/** The `promptExtensions` entries of a manifest, checked, flattened in graph-input order. */
function readExtraInputs(m: Record<string, any>, file: string): ManifestExtraInput[] {
  if (m.promptExtensions === undefined) return [];
  check(Array.isArray(m.promptExtensions), 'promptExtensions must be a list', file);
  const out: ManifestExtraInput[] = [];
  for (const [i, ext] of (m.promptExtensions as any[]).entries()) {
    const where = `promptExtensions[${i}]`;
    check(typeof ext?.name === 'string' && ext.name.length > 0, `${where}.name is missing`, file);
    check(
      Array.isArray(ext.inputs) && ext.inputs.length > 0,
      `${where}.inputs must be a non-empty list`,
      file,
    );
    for (const x of ext.inputs as any[]) {
      check(typeof x?.name === 'string' && x.name.length > 0, `${where}: an input has no name`, file);
      check(
        x.dtype === 'float32' || x.dtype === 'int32',
        `${where}.${x.name}: dtype must be float32 or int32`,
        file,
      );
      const shapeOk =
        Array.isArray(x.shape) &&
        x.shape.length > 0 &&
        x.shape.every(
          (d: unknown) =>
            (typeof d === 'string' && d.length > 0) || (Number.isSafeInteger(d) && (d as number) > 0),
        );
      check(shapeOk, `${where}.${x.name}: shape must list sizes and symbols`, file);
      out.push({ extension: ext.name, name: x.name, dtype: x.dtype, shape: x.shape });
    }
  }
  return out;
}
