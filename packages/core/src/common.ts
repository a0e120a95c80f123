// The parts of @mcp-medsam/core that need no tensor library: errors, modalities, RNG.
// Packages that only validate or parse data (io, metrics) import this entry so they do not
// load tfjs.
export {
  MedsamError,
  BackendError,
  InputError,
  StateDictError,
  FormatError,
  UnsafeCheckpointError,
} from './errors.js';
export { MODALITIES, MODALITY_ALIASES, parseModality, modalityIndex } from './modality.js';
export type { Modality } from './modality.js';
export { Rng } from './rng.js';
export type { RngState } from './rng.js';
