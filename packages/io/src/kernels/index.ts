import { antialiasWasm } from './antialias.js';
import { areaWasm } from './area.js';
import { normalizeWasm } from './normalize.js';

export { setWasmKernels, wasmKernelMode } from './wasm.js';
export type { WasmKernelMode } from './wasm.js';

/** Which implementation one of io's kernels uses. */
export type KernelImpl = 'wasm' | 'js';

/**
 * Which implementation each of io's kernels uses in this thread under the current mode
 * (instantiating the modules if needed): `antialias` is `resizeAntialiasRegionU8` (the content
 * crops), `normalize` the normalisation and padding of a training image, `area` the general
 * shrink of `resizeArea` / `resizeAreaU8` (1 and 3 channels).
 */
export function wasmKernelStatus(): { antialias: KernelImpl; normalize: KernelImpl; area: KernelImpl } {
  const impl = (k: unknown): KernelImpl => (k ? 'wasm' : 'js');
  return { antialias: impl(antialiasWasm()), normalize: impl(normalizeWasm()), area: impl(areaWasm()) };
}
