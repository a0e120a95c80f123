// Small wasm SIMD kernels that work in tfjs-backend-wasm's own memory (no copies): each .wat
// module in packages/core/wasm imports the backend's memory and is instantiated once per memory.
import type { KernelFunc, TensorInfo } from '@tensorflow/tfjs-core';
import { tf } from '../tf.js';

export interface WasmBackendLike {
  wasm: { asm?: { memory?: WebAssembly.Memory } };
  dataIdMap: { get(dataId: object): { memoryOffset: number } };
  makeOutput(shape: number[], dtype: 'float32'): TensorInfo;
  disposeData(dataId: object, force?: boolean): boolean;
}

const cache = new Map<string, WeakMap<WebAssembly.Memory, WebAssembly.Exports | null>>();

/** The module's exports bound to the backend's memory, or null where that is not possible. */
export function wasmExports(backend: WasmBackendLike, base64: string): WebAssembly.Exports | null {
  const memory = backend.wasm.asm?.memory;
  if (!memory) return null;
  let perMemory = cache.get(base64);
  if (!perMemory) cache.set(base64, (perMemory = new WeakMap()));
  if (!perMemory.has(memory)) {
    try {
      const bytes = Uint8Array.from(atob(base64), (ch) => ch.charCodeAt(0));
      perMemory.set(
        memory,
        new WebAssembly.Instance(new WebAssembly.Module(bytes), { env: { memory } }).exports,
      );
    } catch {
      perMemory.set(memory, null); // no wasm SIMD here: callers keep tfjs's kernels
    }
  }
  return perMemory.get(memory) ?? null;
}

/** Byte offset of a tensor's data in the backend's memory (unsigned: offsets can pass 2 GiB). */
export function offsetOf(backend: WasmBackendLike, t: TensorInfo): number {
  return backend.dataIdMap.get(t.dataId).memoryOffset >>> 0;
}

/**
 * Registers the kernels of one .wat module for wasm when the wasm backend is active and the module
 * can be instantiated on its memory (missing wasm SIMD: tfjs's own kernels stay). Idempotent.
 */
export function registerModuleKernels(base64: string, kernels: Record<string, KernelFunc>): void {
  if (tf.getBackend() !== 'wasm') return;
  if (!wasmExports(tf.backend() as unknown as WasmBackendLike, base64)) return;
  for (const [kernelName, kernelFunc] of Object.entries(kernels))
    if (!tf.getKernel(kernelName, 'wasm')) tf.registerKernel({ kernelName, backendName: 'wasm', kernelFunc });
}

/** Whether every named kernel is registered for the active backend. */
export function kernelsRegistered(...names: string[]): boolean {
  const backend = tf.getBackend();
  return names.every((n) => !!tf.getKernel(n, backend));
}
