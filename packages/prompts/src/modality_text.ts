/**
 * The text of the modality prompt. The original builds `f"{modality} Image"` from the token in the
 * file name, so aliases ("X-Ray", "Mammo", "Microscope") give their own strings and their own
 * CLIP features; the category index, in contrast, uses the canonical modality.
 */
import { MODALITY_ALIASES, parseModality } from '@mcp-medsam/core/common';

/** Suffix the original appends to the modality token. */
const SUFFIX = ' Image';

/** Every string the modality prompt can take: one per known modality token (14). */
export const CLIP_TEXT_STRINGS: readonly string[] = Object.freeze(
  Object.keys(MODALITY_ALIASES).map((token) => token + SUFFIX),
);

/** Options of {@link clipTextFor}. */
export interface ClipTextOptions {
  /**
   * Use the canonical modality name ("XRay Image" for "X-Ray") instead of the token as given.
   * Off by default, as the original keeps the file-name token.
   */
  canonical?: boolean;
}

/**
 * The CLIP text of a modality token, e.g. "CT" → "CT Image". Unknown tokens throw an InputError
 * listing the known ones (`file`, when given, names the input the token came from).
 */
export function clipTextFor(modality: string, options: ClipTextOptions = {}, file?: string): string {
  const canonical = parseModality(modality, file);
  return (options.canonical ? canonical : modality) + SUFFIX;
}
