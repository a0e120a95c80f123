/**
 * A training batch as tensors, in the names of the original's loop body (`image`, `gt2D`,
 * `boxes`, `crops`, `features`, `text_features`, `category_idx`), and the ways to make one:
 * from the loader's samples plus CLIP features, or from an npz written like
 * `fixtures/train/step-a.npz` (how anyone replays one step of the original).
 */
import { InputError, Rng, tf } from '@mcp-medsam/core';
import { readNpzFile, type NdArray, type TrainingSample } from '@mcp-medsam/io';
import { ndarrayToTensor } from '@mcp-medsam/io/tensor';
import type { ForwardInputs, PromptExtension } from '@mcp-medsam/model';

export interface TrainBatch {
  /** (B,3,256,256) float32 preprocessed images. */
  image: tf.Tensor4D;
  /** (B,1,256,256) float32 0/1 ground truth. */
  gt: tf.Tensor4D;
  /** (B,4) float32 box prompts in the 256 frame. */
  boxes: tf.Tensor2D;
  /** (B,3,64,64) float32 content crops. */
  crops: tf.Tensor4D;
  /** (B,512) frozen CLIP image features of the 224 crops. */
  clipImage: tf.Tensor2D;
  /** (B,512) frozen CLIP text features of "<Modality> Image". */
  clipText: tf.Tensor2D;
  /** (B,) int32 modality indices. */
  categoryIdx: tf.Tensor1D;
  /** Inputs of the model's prompt extensions, by name (batch first). */
  extra?: Record<string, tf.Tensor>;
}

/** How a batch built from samples gets its prompt extensions' inputs. */
export interface ExtensionSampling {
  /** The model's extensions (`model.promptExtensions`); each needs `sampleInputs`. */
  extensions: readonly PromptExtension[];
  /** Drawn from in sample order, extension after extension. */
  rng: Rng;
}

/** The array names of a batch file (those of `fixtures/train/step-a.npz`). */
export const BATCH_ARRAYS = [
  'image',
  'gt2D',
  'boxes',
  'crops',
  'features',
  'text_features',
  'category_idx',
] as const;

export function batchSize(b: TrainBatch): number {
  return b.image.shape[0];
}

export function forwardInputs(b: TrainBatch): ForwardInputs {
  const inputs: ForwardInputs = {
    image: b.image,
    boxes: b.boxes,
    crops: b.crops,
    clipImage: b.clipImage,
    clipText: b.clipText,
    categoryIdx: b.categoryIdx,
  };
  if (b.extra) inputs.extra = b.extra;
  return inputs;
}

export function disposeBatch(b: TrainBatch): void {
  const { extra, ...base } = b;
  tf.dispose(Object.values(base));
  if (extra) tf.dispose(Object.values(extra));
}

/**
 * A generator for the extension inputs of one (micro-)batch, from the run seed and the batch's
 * place in the run: a resumed run draws what an uninterrupted one did without saving its state.
 */
export function extensionRng(seed: number, step: number, micro = 0): Rng {
  return new Rng((BigInt(seed) << 32n) ^ (BigInt(step) << 8n) ^ BigInt(micro));
}

/**
 * The extensions' inputs for `samples`: each extension's `sampleInputs` per sample, stacked on a
 * new batch axis. Every sample must give the same shapes (extensions pad variable counts).
 */
export function extensionInputs(
  samples: readonly TrainingSample[],
  sampling: ExtensionSampling,
): Record<string, tf.Tensor> {
  const out: Record<string, tf.Tensor> = {};
  try {
    for (const ext of sampling.extensions) {
      if (!ext.sampleInputs)
        throw new InputError(
          `prompt extension '${ext.name}' has no sampleInputs: it cannot take its inputs from training samples`,
        );
      const perSample = samples.map((s) => ext.sampleInputs!(s, sampling.rng));
      for (const spec of ext.inputs) {
        const first = perSample[0][spec.name];
        if (!first) throw ext.inputError(spec.name, 'sampleInputs did not give it');
        const len = first.shape.reduce((x, d) => x * d, 1);
        const data =
          spec.dtype === 'int32'
            ? new Int32Array(len * samples.length)
            : new Float32Array(len * samples.length);
        perSample.forEach((r, i) => {
          const a = r[spec.name];
          const same =
            a && a.shape.length === first.shape.length && a.shape.every((d, k) => d === first.shape[k]);
          if (!same)
            throw ext.inputError(
              spec.name,
              `sampleInputs gave shape (${a?.shape ?? 'none'}) for sample ${i} and (${first.shape}) for sample 0: pad to one shape`,
            );
          if (a.data.length !== len)
            throw ext.inputError(
              spec.name,
              `sample ${i}: ${a.data.length} values do not fit shape (${a.shape})`,
            );
          data.set(a.data, i * len);
        });
        out[spec.name] = tf.tensor(data, [samples.length, ...first.shape], spec.dtype);
      }
    }
  } catch (e) {
    tf.dispose(Object.values(out));
    throw e;
  }
  return out;
}

/** Checks every array's shape against B and the model's fixed sizes; names the file on error. */
export function validateBatch(b: TrainBatch, file?: string): TrainBatch {
  const n = b.image.shape[0];
  const want: [Exclude<keyof TrainBatch, 'extra'>, number[]][] = [
    ['image', [n, 3, 256, 256]],
    ['gt', [n, 1, 256, 256]],
    ['boxes', [n, 4]],
    ['crops', [n, 3, 64, 64]],
    ['clipImage', [n, 512]],
    ['clipText', [n, 512]],
    ['categoryIdx', [n]],
  ];
  if (n < 1) throw new InputError('a batch needs at least one sample', { file });
  for (const [k, shape] of want) {
    const s = b[k].shape;
    if (s.length !== shape.length || s.some((d, i) => d !== shape[i]))
      throw new InputError(`batch ${k}: expected shape (${shape.join(',')}), got (${s.join(',')})`, { file });
  }
  return b;
}

function squeezeTo(t: tf.Tensor, shape: number[], name: string, file?: string): tf.Tensor {
  if (t.size !== shape.reduce((a, d) => a * d, 1))
    throw new InputError(`${name}: ${t.size} values do not fit shape (${shape.join(',')})`, { file });
  return tf.reshape(t, shape);
}

/**
 * A batch from arrays named as in step-a.npz: `image` (B,3,256,256), `gt2D` (B,1,256,256),
 * `boxes` (B,1,1,4) or (B,4), `crops` (B,3,64,64), `features` and `text_features` (B,1,512) or
 * (B,512), `category_idx` (B,) int64; with `extensions`, also their inputs under the declared
 * names (checked when the model runs).
 */
export function batchFromArrays(
  arrays: Record<string, NdArray>,
  file?: string,
  extensions: readonly PromptExtension[] = [],
): TrainBatch {
  const specs = extensions.flatMap((e) => e.inputs);
  const missing = [...BATCH_ARRAYS, ...specs.map((s) => s.name)].filter((k) => !arrays[k]);
  if (missing.length) throw new InputError(`batch file lacks ${missing.join(', ')}`, { file });
  const n = arrays.image.shape[0];
  return tf.tidy((): tf.TensorContainerObject => {
    const t = (k: (typeof BATCH_ARRAYS)[number]) => ndarrayToTensor(arrays[k], k);
    const f32 = (x: tf.Tensor) => (x.dtype === 'float32' ? x : tf.cast(x, 'float32'));
    const b: TrainBatch = {
      image: f32(t('image')) as tf.Tensor4D,
      gt: f32(t('gt2D')) as tf.Tensor4D,
      boxes: squeezeTo(f32(t('boxes')), [n, 4], 'boxes', file) as tf.Tensor2D,
      crops: f32(t('crops')) as tf.Tensor4D,
      clipImage: squeezeTo(f32(t('features')), [n, 512], 'features', file) as tf.Tensor2D,
      clipText: squeezeTo(f32(t('text_features')), [n, 512], 'text_features', file) as tf.Tensor2D,
      categoryIdx: tf.cast(t('category_idx'), 'int32') as tf.Tensor1D,
    };
    if (specs.length) {
      b.extra = {};
      for (const spec of specs) {
        const x = ndarrayToTensor(arrays[spec.name], spec.name);
        b.extra[spec.name] = x.dtype === spec.dtype ? x : tf.cast(x, spec.dtype);
      }
    }
    return validateBatch(b, file) as unknown as tf.TensorContainerObject;
  }) as unknown as TrainBatch;
}

export async function readBatchFile(
  file: string,
  extensions: readonly PromptExtension[] = [],
): Promise<TrainBatch> {
  return batchFromArrays(await readNpzFile(file), file, extensions);
}

/**
 * A batch from the loader's samples and their CLIP features (`clipImage`: B·512 values, one row
 * per sample, from the 224 crops; `clipText`: likewise, from "<Modality> Image"); with
 * `sampling`, the prompt extensions' inputs derived from the samples.
 */
export function batchFromSamples(
  samples: readonly TrainingSample[],
  clipImage: Float32Array,
  clipText: Float32Array,
  sampling?: ExtensionSampling,
): TrainBatch {
  const n = samples.length;
  if (n === 0) throw new InputError('a batch needs at least one sample');
  if (clipImage.length !== n * 512 || clipText.length !== n * 512)
    throw new InputError(
      `CLIP features: expected ${n * 512} values each, got ${clipImage.length} and ${clipText.length}`,
    );
  const plane = 256 * 256;
  const image = new Float32Array(n * 3 * plane);
  const gt = new Float32Array(n * plane);
  const boxes = new Float32Array(n * 4);
  const crops = new Float32Array(n * 3 * 64 * 64);
  const cat = new Int32Array(n);
  samples.forEach((s, i) => {
    image.set(s.image, i * 3 * plane);
    for (let p = 0; p < plane; p++) gt[i * plane + p] = s.gt2D[p];
    boxes.set(s.box, i * 4);
    crops.set(s.crop64, i * 3 * 64 * 64);
    cat[i] = s.categoryIdx;
  });
  const extra = sampling?.extensions.length ? extensionInputs(samples, sampling) : undefined;
  return {
    image: tf.tensor4d(image, [n, 3, 256, 256]),
    gt: tf.tensor4d(gt, [n, 1, 256, 256]),
    boxes: tf.tensor2d(boxes, [n, 4]),
    crops: tf.tensor4d(crops, [n, 3, 64, 64]),
    clipImage: tf.tensor2d(clipImage, [n, 512]),
    clipText: tf.tensor2d(clipText, [n, 512]),
    categoryIdx: tf.tensor1d(cat, 'int32'),
    ...(extra ? { extra } : {}),
  };
}

/** Where a batch's frozen CLIP features come from: the image tower and the text table. */
export interface ClipProviders {
  vision: { embed(pixels: Float32Array, n: number): Promise<Float32Array> };
  text: { get(text: string): Float32Array };
}

/**
 * A batch from samples, with their CLIP features computed: each sample's 224² crop through the
 * image tower (one call for the batch), its "<Modality> Image" text from the table.
 */
export async function batchWithClip(
  samples: readonly TrainingSample[],
  clip: ClipProviders,
  sampling?: ExtensionSampling,
): Promise<TrainBatch> {
  const n = samples.length;
  const per = 3 * 224 * 224;
  const pixels = new Float32Array(n * per);
  samples.forEach((s, i) => {
    if (!s.crop224) throw new InputError('the samples were built without the 224 crop (crop224: false)');
    pixels.set(s.crop224, i * per);
  });
  const image = await clip.vision.embed(pixels, n);
  const text = new Float32Array(n * 512);
  samples.forEach((s, i) => text.set(clip.text.get(s.text), i * 512));
  return batchFromSamples(samples, image, text, sampling);
}
