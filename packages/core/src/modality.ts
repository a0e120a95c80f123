import { InputError } from './errors.js';

/**
 * The 11 modalities of MCP-MedSAM in category-index order (spec §3.4). The index is the row of
 * `prompt_encoder.categories.weight`; the name is the canonical one the inference script uses
 * for the CLIP text "<name> Image".
 */
export const MODALITIES = [
  'CT',
  'MR',
  'Endoscopy',
  'XRay',
  'PET',
  'Dermoscopy',
  'Mammography',
  'US',
  'OCT',
  'Fundus',
  'Microscopy',
] as const;

export type Modality = (typeof MODALITIES)[number];

/** File-name tokens the original accepts, mapped to the canonical modality. */
export const MODALITY_ALIASES: Readonly<Record<string, Modality>> = {
  CT: 'CT',
  MR: 'MR',
  Endoscopy: 'Endoscopy',
  XRay: 'XRay',
  'X-Ray': 'XRay',
  PET: 'PET',
  Dermoscopy: 'Dermoscopy',
  Mammography: 'Mammography',
  Mammo: 'Mammography',
  US: 'US',
  OCT: 'OCT',
  Fundus: 'Fundus',
  Microscopy: 'Microscopy',
  Microscope: 'Microscopy',
};

/** Canonical modality of a name or alias; throws an InputError naming the known ones. */
export function parseModality(name: string, file?: string): Modality {
  const m = MODALITY_ALIASES[name];
  if (!m) {
    throw new InputError(
      `unknown modality '${name}' (known: ${Object.keys(MODALITY_ALIASES).join(', ')})`,
      file ? { file } : {},
    );
  }
  return m;
}

/** Category index of a modality (or alias), as used by the category embedding. */
export function modalityIndex(name: string, file?: string): number {
  return MODALITIES.indexOf(parseModality(name, file));
}
