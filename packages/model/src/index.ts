export type { McpMedsamConfig, TinyViTConfig } from './config.js';
export { EMBEDDING_SIZE, CROP_SIZE } from './config.js';
export { MCP_MEDSAM, TINY, PRESETS, getPreset } from './presets.js';
export { McpMedsam } from './mcp_medsam.js';
export type { ForwardInputs, ForwardOutputs, McpMedsamOptions } from './mcp_medsam.js';
export { TinyViT } from './image_encoder/tiny_vit.js';
export type { EncoderTaps } from './image_encoder/tiny_vit.js';
export { PromptEncoder, BASE_SPARSE_TOKENS } from './prompt_encoder/prompt_encoder.js';
export type { PromptInputs, PromptOutputs } from './prompt_encoder/prompt_encoder.js';
export {
  PromptExtension,
  RESERVED_INPUT_NAMES,
  BASE_DECODER_INPUTS,
  checkExtensionDeclaration,
  validateExtensionInputs,
} from './prompt_encoder/extension.js';
export type {
  ExtensionDim,
  ExtensionInputSpec,
  ExtensionEmbedding,
  HostArray,
  PromptExtensionSpec,
} from './prompt_encoder/extension.js';
export { PositionEmbeddingRandom } from './prompt_encoder/position_embedding_random.js';
export { MaskDecoder } from './mask_decoder/mask_decoder.js';
export type { MaskDecoderOutputs } from './mask_decoder/mask_decoder.js';
export { TwoWayTransformer } from './mask_decoder/transformer.js';
export { loadWeights, loadStateDict, saveWeights, stateDictArrays, isBareTinyViT } from './weights.js';
export type { WeightsKind, LoadWeightsResult } from './weights.js';
export * from './checkpoint/index.js';
export { stepGradients } from './gradients.js';
export type { StepGradients } from './gradients.js';
