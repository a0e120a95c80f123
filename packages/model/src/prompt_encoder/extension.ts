import { InputError, Module, tf } from '@mcp-medsam/core';
import type { Rng } from '@mcp-medsam/core';
import type { TrainingSample } from '@mcp-medsam/io';
import type { McpMedsamConfig } from '../config.js';
import type { PromptEncoder } from './prompt_encoder.js';

/** A size in a declared input shape: fixed, or a symbol ('B' for the batch, 'P'...) read from the inputs. */
export type ExtensionDim = number | string;

/** One named input of a prompt extension. */
export interface ExtensionInputSpec {
  /** Unique across the model's extensions; also the ONNX input name. */
  name: string;
  dtype: 'float32' | 'int32';
  /**
   * Batch first ('B'), then fixed sizes or symbols. A symbol stands for one size within the
   * extension (all inputs using 'P' must agree on it) and is dynamic in the exported graph.
   */
  shape: readonly ExtensionDim[];
  /** What the values mean, for the export manifest and error messages. */
  description?: string;
}

/** Row-major host data of an extension input, with its shape. */
export interface HostArray {
  data: Float32Array | Int32Array;
  shape: number[];
}

/** What `embed` adds: tokens (B, T, C) after the base ones, a map (B, 64, 64, C) NHWC on the dense prompt. */
export interface ExtensionEmbedding {
  sparse?: tf.Tensor;
  dense?: tf.Tensor;
}

/**
 * A new kind of prompt, plugged into the prompt encoder without changing the model's code. It is
 * a Module, so its parameters live in the state dict under `prompt_encoder.extensions.<name>.*`
 * (after every key of the base model: a model without extensions keeps the original's keys).
 *
 * Subclasses declare their named inputs (`inputs`), turn them into tokens (`embed`), and may
 * check values (`checkValues`), derive training inputs from a sample (`sampleInputs`) and give
 * valid example values for tracing the ONNX export (`exampleInputs`).
 */
export abstract class PromptExtension extends Module {
  /** Child name under `prompt_encoder.extensions`: letters, digits and '_'. */
  abstract readonly name: string;
  abstract readonly inputs: readonly ExtensionInputSpec[];

  /**
   * Tokens from the inputs (validated against `inputs` before this is called). Returns the
   * sparse tokens (B, T, C), or `{ sparse?, dense? }`. Must not branch on input values or on
   * symbolic sizes: the ONNX export records the ops of one run.
   */
  abstract embed(inputs: Record<string, tf.Tensor>, encoder: PromptEncoder): tf.Tensor | ExtensionEmbedding;

  /** Checks beyond dtype and shape (value ranges...); throw `this.inputError(...)`. */
  checkValues(_inputs: Record<string, tf.Tensor>): void {}

  /**
   * This extension's inputs for one training sample, without the batch axis; the same shapes for
   * every sample (pad where the count varies). Deterministic given the generator's state.
   */
  sampleInputs?(sample: TrainingSample, rng: Rng): Record<string, HostArray>;

  /**
   * Valid inputs for a batch of `batch`, with `sizes` giving each symbol's value (the export
   * traces the model on them). The default draws floats in [0, 1) and int zeros.
   */
  exampleInputs(batch: number, sizes: Record<string, number>, seed: number): Record<string, tf.Tensor> {
    const out: Record<string, tf.Tensor> = {};
    this.inputs.forEach((spec, i) => {
      const shape = spec.shape.map((d, k) => (k === 0 ? batch : typeof d === 'number' ? d : sizes[d]));
      out[spec.name] =
        spec.dtype === 'int32'
          ? tf.zeros(shape, 'int32')
          : tf.randomUniform(shape, 0, 1, 'float32', seed + 17 * i);
    });
    return out;
  }

  /** An InputError naming this extension and the input. */
  inputError(input: string, message: string): InputError {
    return new InputError(`prompt extension '${this.name}', input '${input}': ${message}`);
  }
}

/** An extension, or a function building one for the model's configuration. */
export type PromptExtensionSpec = PromptExtension | ((config: McpMedsamConfig) => PromptExtension);

/** The prompt decoder's own inputs, in the order an exported graph takes them. */
export const BASE_DECODER_INPUTS = [
  'image_embeddings',
  'boxes',
  'clip_image',
  'clip_text',
  'category_idx',
  'crops',
] as const;

/** The base decoder's input and output names, which extension inputs must not take. */
export const RESERVED_INPUT_NAMES: readonly string[] = [
  'image',
  ...BASE_DECODER_INPUTS,
  'low_res_logits',
  'iou',
];

const IDENT = /^[A-Za-z_][A-Za-z0-9_]*$/;

function shapeStr(shape: readonly (number | string)[]): string {
  return `(${shape.join(',')})`;
}

/** Checks an extension's declaration against those already registered (thrown before any use). */
export function checkExtensionDeclaration(
  ext: PromptExtension,
  registered: readonly PromptExtension[],
): void {
  const label = `prompt extension '${String(ext.name)}'`;
  if (typeof ext.name !== 'string' || !IDENT.test(ext.name))
    throw new InputError(`${label}: the name must be letters, digits and '_' (it is a state-dict key)`);
  if (registered.some((e) => e.name === ext.name))
    throw new InputError(`${label} is registered twice (names must be unique)`);
  if (!Array.isArray(ext.inputs) || ext.inputs.length === 0)
    throw new InputError(`${label} declares no inputs`);
  const taken = new Map<string, string>();
  for (const e of registered) for (const s of e.inputs) taken.set(s.name, e.name);
  for (const spec of ext.inputs) {
    const what = `${label}, input '${spec.name}'`;
    if (typeof spec.name !== 'string' || !IDENT.test(spec.name))
      throw new InputError(`${what}: the name must be letters, digits and '_'`);
    if (RESERVED_INPUT_NAMES.includes(spec.name))
      throw new InputError(`${what}: the name is taken by the base decoder`);
    if (taken.has(spec.name))
      throw new InputError(`${what}: the name is taken by prompt extension '${taken.get(spec.name)}'`);
    taken.set(spec.name, ext.name);
    if (spec.dtype !== 'float32' && spec.dtype !== 'int32')
      throw new InputError(`${what}: dtype must be float32 or int32, got ${String(spec.dtype)}`);
    const s = spec.shape;
    if (!Array.isArray(s) || s[0] !== 'B')
      throw new InputError(`${what}: the shape must start with the batch 'B', got ${shapeStr(s ?? [])}`);
    for (const d of s.slice(1)) {
      const ok =
        typeof d === 'number' ? Number.isSafeInteger(d) && d > 0 : typeof d === 'string' && IDENT.test(d);
      if (!ok || d === 'B')
        throw new InputError(
          `${what}: dims after the batch must be positive integers or symbols other than 'B', got ${shapeStr(s)}`,
        );
    }
  }
}

function assertFinite(ext: PromptExtension, name: string, t: tf.Tensor): void {
  if (t.dtype !== 'float32') return;
  const bad = tf.tidy(() => tf.any(tf.logicalNot(tf.isFinite(t))).dataSync()[0]);
  if (bad) throw ext.inputError(name, 'contains NaN or infinite values');
}

/**
 * Validates `extra` against the extensions' declarations for a batch of `batch`: unknown and
 * missing names, dtypes, shapes (symbols consistent within each extension, at least 1), finite
 * values, then each extension's own checks.
 */
export function validateExtensionInputs(
  extensions: readonly PromptExtension[],
  extra: Readonly<Record<string, tf.Tensor>> | undefined,
  batch: number,
): void {
  const given = extra ?? {};
  const declared = new Set(extensions.flatMap((e) => e.inputs.map((s) => s.name)));
  for (const key of Object.keys(given)) {
    if (declared.has(key)) continue;
    const known = extensions.map((e) => `${e.name}: ${e.inputs.map((s) => s.name).join(', ')}`).join('; ');
    throw new InputError(
      `unknown prompt input '${key}' (${known ? `the prompt extensions take ${known}` : 'the model has no prompt extensions'})`,
    );
  }
  for (const ext of extensions) {
    const sizes = new Map<string, [number, string]>([['B', [batch, 'the prompt batch']]]);
    const inputs: Record<string, tf.Tensor> = {};
    for (const spec of ext.inputs) {
      const t = given[spec.name];
      if (!(t instanceof tf.Tensor))
        throw ext.inputError(spec.name, `missing (${spec.dtype} ${shapeStr(spec.shape)})`);
      if (t.dtype !== spec.dtype) throw ext.inputError(spec.name, `must be ${spec.dtype}, got ${t.dtype}`);
      const bad = (why: string) =>
        ext.inputError(spec.name, `must have shape ${shapeStr(spec.shape)}, got ${shapeStr(t.shape)}${why}`);
      if (t.rank !== spec.shape.length) throw bad('');
      spec.shape.forEach((d, k) => {
        const got = t.shape[k];
        if (typeof d === 'number') {
          if (got !== d) throw bad('');
          return;
        }
        const seen = sizes.get(d);
        if (seen && seen[0] !== got) throw bad(` (${d} = ${seen[0]} from ${seen[1]})`);
        if (got < 1) throw bad(` (${d} must be at least 1)`);
        if (!seen) sizes.set(d, [got, `'${spec.name}'`]);
      });
      assertFinite(ext, spec.name, t);
      inputs[spec.name] = t;
    }
    ext.checkValues(inputs);
  }
}
