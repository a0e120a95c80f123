/** Types shared by the synthetic generators. */
import type { NdArray } from '../dtype.js';

/** The kinds of synthetic case; each is a modality token `modalityFromFileName` accepts. */
export type SyntheticKind = 'CT' | 'MR' | 'US' | 'Endoscopy' | 'Dermoscopy' | 'Microscopy';

/** Every kind, in a fixed order. */
export const SYNTHETIC_KINDS: readonly SyntheticKind[] = [
  'CT',
  'MR',
  'US',
  'Endoscopy',
  'Dermoscopy',
  'Microscopy',
];

/** Whether a kind makes volumes (D,H,W) rather than 2D (H,W,3) images. */
export const SYNTHETIC_DIMS: Readonly<Record<SyntheticKind, 2 | 3>> = {
  CT: 2,
  MR: 3,
  US: 2,
  Endoscopy: 2,
  Dermoscopy: 2,
  Microscopy: 2,
};

/** Fewest pixels of a target (in each slice it appears in, for volumes). */
export const MIN_TARGET_PIXELS = 150;

/** Image size of one case; a generator is given all three (depth is 1 for 2D kinds). */
export interface CaseSize {
  depth: number;
  height: number;
  width: number;
}

/**
 * What a modality generator returns: the image, the label map (labels 1..n in the order of
 * `structures`) and, for volumes, the voxel spacing (x, y, z). `null` means the draw could not
 * place its targets and the case is drawn again.
 */
export interface GeneratedImage {
  imgs: NdArray<'uint8'>;
  gts: Uint8Array;
  /** Name of the structure of each label (index 0 is label 1). */
  structures: string[];
  spacing?: [number, number, number];
}
