import type { McpMedsamConfig } from './config.js';

/** The paper's configuration (19,586,051 trainable parameters). */
export const MCP_MEDSAM: McpMedsamConfig = {
  name: 'mcp-medsam',
  imageSize: 256,
  encoder: {
    embedDims: [64, 128, 160, 320],
    depths: [2, 2, 6, 2],
    numHeads: [2, 4, 5, 10],
    windowSizes: [7, 7, 14, 7],
    mlpRatio: 4,
    mbconvExpandRatio: 4,
    localConvSize: 3,
  },
  embedDim: 256,
  clipDim: 512,
  numCategories: 11,
  transformer: { depth: 2, numHeads: 8, mlpDim: 2048, attentionDownsampleRate: 2 },
  numMultimaskOutputs: 3,
  iouHeadDepth: 3,
  iouHeadHiddenDim: 256,
  categoryHiddenDim: 64,
};

/**
 * A narrow model with the same structure, small enough to train for minutes on 2 CPU cores:
 * encoder dims [16, 32, 32, 64] with one block per stage and 32-wide heads, a 32-wide prompt
 * and decoder path, one two-way transformer layer with 4 heads and MLP width 128.
 */
export const TINY: McpMedsamConfig = {
  name: 'tiny',
  imageSize: 256,
  encoder: {
    embedDims: [16, 32, 32, 64],
    depths: [1, 1, 1, 1],
    numHeads: [1, 1, 1, 2],
    windowSizes: [7, 7, 14, 7],
    mlpRatio: 4,
    mbconvExpandRatio: 4,
    localConvSize: 3,
  },
  embedDim: 32,
  clipDim: 512,
  numCategories: 11,
  transformer: { depth: 1, numHeads: 4, mlpDim: 128, attentionDownsampleRate: 2 },
  numMultimaskOutputs: 3,
  iouHeadDepth: 3,
  iouHeadHiddenDim: 32,
  categoryHiddenDim: 16,
};

/** Every preset by name. */
export const PRESETS: Readonly<Record<string, McpMedsamConfig>> = {
  'mcp-medsam': MCP_MEDSAM,
  tiny: TINY,
};

export function getPreset(name: string): McpMedsamConfig {
  const p = PRESETS[name];
  if (!p) throw new Error(`unknown preset '${name}' (known: ${Object.keys(PRESETS).join(', ')})`);
  return p;
}
