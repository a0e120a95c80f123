/**
 * Architecture settings of MCP-MedSAM. Presets are plain data (see presets.ts); the model
 * classes take one of these and nothing else.
 */
export interface TinyViTConfig {
  /** Channels of the four stages. */
  embedDims: number[];
  /** Blocks per stage (stage 0 is MBConv, stages 1-3 are attention blocks). */
  depths: number[];
  numHeads: number[];
  windowSizes: number[];
  mlpRatio: number;
  mbconvExpandRatio: number;
  localConvSize: number;
}

export interface McpMedsamConfig {
  /** Preset name, stored with checkpoints and exports. */
  name: string;
  /** Input side; fixed at 256 because the encoder reshapes to a 64x64 grid (spec §14 #22). */
  imageSize: 256;
  encoder: TinyViTConfig;
  /** Width of the image embedding, prompt tokens and the two-way transformer (256). */
  embedDim: number;
  /** Width of the frozen CLIP image and text features (512). */
  clipDim: number;
  /** Rows of the learned modality (category) embedding: the 11 challenge modalities. */
  numCategories: number;
  transformer: { depth: number; numHeads: number; mlpDim: number; attentionDownsampleRate: number };
  numMultimaskOutputs: number;
  iouHeadDepth: number;
  iouHeadHiddenDim: number;
  /** Hidden width of the modality classifier (64). */
  categoryHiddenDim: number;
}

/** Side of the image embedding grid. */
export const EMBEDDING_SIZE = 64;
/** Side of the content-prompt crop fed to the crop net. */
export const CROP_SIZE = 64;
