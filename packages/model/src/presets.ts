import { InputError } from '@mcp-medsam/core';
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
 * Our own preset (not the paper's): the same module tree and key names as MCP_MEDSAM, cut down
 * until a training step costs ~0.35 s per sample on one wasm thread (batch 2), so the loop
 * trains it for hundreds of steps in minutes on a CPU. 81,551 trainable parameters.
 *
 * Where the time went, and why each number is what it is:
 * - Stage 0 and the first merge run at the full 256x256 (the patch embedding does not
 *   downsample), so their cost is per pixel: encoder dims [4, 8, 16, 32] and an MBConv
 *   expansion of 2 keep those maps at 2-8 channels.
 * - One head per attention stage (head width = stage width, 8-32) and windows that tile the
 *   map exactly (4 at 128x128, 8 at 64x64: no padded tokens); the score maps grow with the
 *   window area, so stage 1's windows are the smallest. (windowSizes[0] is unused: stage 0 has
 *   no attention.) MLP ratio 2.
 * - embedDim 16: the crop net, the three decoder blocks and the neck are 3x3 (and one 5x5)
 *   convolutions at 64x64 whose cost grows with embedDim²; 16 leaves the upscaled hypernetwork
 *   features 2 channels wide (embedDim / 8). 32 learns a little faster per step but costs 1.7x.
 * - One two-way transformer layer with 2 heads and MLP width 64; IoU and modality heads 16 wide.
 */
export const TINY: McpMedsamConfig = {
  name: 'tiny',
  imageSize: 256,
  encoder: {
    embedDims: [4, 8, 16, 32],
    depths: [1, 1, 1, 1],
    numHeads: [1, 1, 1, 1],
    windowSizes: [4, 4, 8, 8],
    mlpRatio: 2,
    mbconvExpandRatio: 2,
    localConvSize: 3,
  },
  embedDim: 16,
  clipDim: 512,
  numCategories: 11,
  transformer: { depth: 1, numHeads: 2, mlpDim: 64, attentionDownsampleRate: 2 },
  numMultimaskOutputs: 3,
  iouHeadDepth: 3,
  iouHeadHiddenDim: 16,
  categoryHiddenDim: 16,
};

/** Every preset by name. */
export const PRESETS: Readonly<Record<string, McpMedsamConfig>> = {
  'mcp-medsam': MCP_MEDSAM,
  tiny: TINY,
};

export function getPreset(name: string): McpMedsamConfig {
  const p = PRESETS[name];
  if (!p) throw new InputError(`unknown preset '${name}' (known: ${Object.keys(PRESETS).join(', ')})`);
  return p;
}
