/**
 * Precomputed CLIP text features. The text tower is frozen and the modality prompt only ever sees
 * a few fixed strings, so their features are computed once in Python (docs/clip-export.md) and
 * shipped as a small JSON table; no text model runs in TypeScript.
 */
import { readFile, stat } from 'node:fs/promises';
import { FormatError, InputError } from '@mcp-medsam/core/common';
import { clipTextFor, type ClipTextOptions } from './modality_text.js';
import type { TextFeatureProvider } from './provider.js';

/** The on-disk layout of a text-feature table. */
export interface TextFeatureTableJSON {
  /** Which CLIP produced the features ("pubmed-clip-vit-base-patch32", "standin", ...). */
  model?: string;
  /** Feature width; every vector must have exactly this many values. */
  dim: number;
  /** One vector per string. Values are float32 written with enough digits to round-trip. */
  features: Record<string, number[]>;
  /** Other fields (e.g. `seed` of the stand-in) are kept but not interpreted. */
  [extra: string]: unknown;
}

/**
 * Text tables are a few hundred kilobytes; anything far larger is almost certainly the wrong file
 * and would only be parsed to fail later.
 */
const MAX_TABLE_BYTES = 256 * 1024 * 1024;

/** A JSON value's kind, for error messages. */
function kind(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'an array';
  return typeof v === 'object' ? 'an object' : `a ${typeof v}`;
}

/**
 * CLIP text features by string, stored as float32 exactly as the export wrote them.
 * `get` is synchronous because the table is in memory; `embed` makes it a {@link TextFeatureProvider}.
 */
export class TextFeatureTable implements TextFeatureProvider {
  readonly dim: number;
  /** The `model` field of the table, when it had one. */
  readonly model: string | undefined;
  /** The file the table came from, when it came from a file (named in errors). */
  readonly file: string | undefined;
  // A Map, not an object: table keys come from a file and must not touch Object.prototype.
  readonly #vectors: Map<string, Float32Array>;

  private constructor(
    dim: number,
    model: string | undefined,
    vectors: Map<string, Float32Array>,
    file?: string,
  ) {
    this.dim = dim;
    this.model = model;
    this.#vectors = vectors;
    this.file = file;
  }

  /**
   * Read and validate a table file. A missing file gives an InputError, a file that is not valid
   * JSON or not a valid table a FormatError; both name the file.
   */
  static async fromFile(file: string): Promise<TextFeatureTable> {
    let text: string;
    try {
      const info = await stat(file);
      if (info.isDirectory())
        throw new InputError('cannot read text-feature table (is a directory)', { file });
      if (info.size > MAX_TABLE_BYTES) {
        throw new FormatError(
          `text-feature table is ${info.size} bytes, more than the ${MAX_TABLE_BYTES} allowed`,
          { file },
        );
      }
      text = await readFile(file, 'utf8');
    } catch (e) {
      if (e instanceof InputError || e instanceof FormatError) throw e;
      const err = e as NodeJS.ErrnoException;
      const why = err.code === 'ENOENT' ? 'no such file' : err.message;
      throw new InputError(`cannot read text-feature table (${why})`, { file, cause: e });
    }
    let obj: unknown;
    try {
      obj = JSON.parse(text);
    } catch (e) {
      throw new FormatError(`text-feature table is not valid JSON (${(e as Error).message})`, {
        file,
        cause: e,
      });
    }
    return TextFeatureTable.fromJSON(obj, file);
  }

  /**
   * Validate a parsed table: `dim` a positive integer, `features` a non-empty object whose values
   * are arrays of exactly `dim` numbers that are finite in float32. Throws a FormatError (naming
   * `file` when given) otherwise.
   */
  static fromJSON(obj: unknown, file?: string): TextFeatureTable {
    const fail = (message: string): never => {
      throw new FormatError(`text-feature table: ${message}`, file ? { file } : {});
    };
    if (obj === null || typeof obj !== 'object' || Array.isArray(obj))
      fail(`expected an object, got ${kind(obj)}`);
    const o = obj as Record<string, unknown>;
    const { dim, features, model } = o;
    if (typeof dim !== 'number' || !Number.isSafeInteger(dim) || dim <= 0) {
      fail(`'dim' must be a positive integer, got ${JSON.stringify(dim) ?? 'nothing'}`);
    }
    if (model !== undefined && typeof model !== 'string')
      fail(`'model' must be a string, got ${kind(model)}`);
    if (features === undefined) fail(`'features' is missing`);
    if (features === null || typeof features !== 'object' || Array.isArray(features)) {
      fail(`'features' must be an object mapping strings to vectors, got ${kind(features)}`);
    }
    const d = dim as number;
    const vectors = new Map<string, Float32Array>();
    for (const [text, values] of Object.entries(features as Record<string, unknown>)) {
      if (!Array.isArray(values))
        fail(`features['${text}'] must be an array of ${d} numbers, got ${kind(values)}`);
      const arr = values as unknown[];
      if (arr.length !== d) fail(`features['${text}'] has ${arr.length} values, expected dim = ${d}`);
      const v = new Float32Array(d);
      for (let i = 0; i < d; i++) {
        const x = arr[i];
        if (typeof x !== 'number') fail(`features['${text}'][${i}] is ${kind(x)}, not a number`);
        v[i] = x as number;
        // Checked after the float32 conversion: 1e39 is finite as a double but not as a float32.
        if (!Number.isFinite(v[i])) fail(`features['${text}'][${i}] = ${String(x)} is not finite in float32`);
      }
      vectors.set(text, v);
    }
    if (vectors.size === 0) fail(`'features' holds no strings`);
    return new TextFeatureTable(d, model as string | undefined, vectors, file);
  }

  /** The strings the table knows, in file order. */
  get texts(): string[] {
    return [...this.#vectors.keys()];
  }

  /** Number of strings in the table. */
  get size(): number {
    return this.#vectors.size;
  }

  /** Whether the table has a vector for `text`. */
  has(text: string): boolean {
    return this.#vectors.has(text);
  }

  /**
   * The feature vector of `text` (a fresh copy, so callers may modify it). A string the table
   * lacks throws an InputError that lists the known strings.
   */
  get(text: string): Float32Array {
    return this.#lookup(text).slice();
  }

  /**
   * The features of several strings as one row-major `texts.length * dim` array, the layout a
   * batch of modality prompts needs.
   */
  getMany(texts: readonly string[]): Float32Array {
    const out = new Float32Array(texts.length * this.dim);
    texts.forEach((t, i) => out.set(this.#lookup(t), i * this.dim));
    return out;
  }

  /**
   * The features of a modality's prompt text: `forModality('CT')` is `get('CT Image')`. Aliases
   * keep their own string unless `canonical` is set (see {@link clipTextFor}).
   */
  forModality(modality: string, options: ClipTextOptions = {}): Float32Array {
    return this.get(clipTextFor(modality, options));
  }

  /** {@link TextFeatureProvider} form of {@link getMany}. */
  async embed(texts: readonly string[]): Promise<Float32Array> {
    return this.getMany(texts);
  }

  #lookup(text: string): Float32Array {
    const v = this.#vectors.get(text);
    if (!v) {
      const known = this.texts.map((t) => `'${t}'`).join(', ');
      throw new InputError(
        `no CLIP text feature for '${text}' (the table knows ${this.size}: ${known})`,
        this.file ? { file: this.file } : {},
      );
    }
    return v;
  }
}
