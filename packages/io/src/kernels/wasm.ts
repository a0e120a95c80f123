/**
 * The switch and the loader shared by io's WebAssembly kernels (the .wat modules in
 * packages/io/wasm, assembled by scripts/build-wasm-kernels.mjs). Each kernel gives the same
 * bits as the JS code it replaces, so the switch only trades speed. Every thread (the loader's
 * workers included) instantiates its own modules, synchronously, on first use; a module that
 * cannot be instantiated (no WebAssembly, or no SIMD) leaves the JS path in place.
 */
import { InputError } from '@mcp-medsam/core/common';

/** `auto`: the kernels where they can be instantiated (the default); `wasm`: required; `js`: never. */
export type WasmKernelMode = 'auto' | 'wasm' | 'js';

let mode: WasmKernelMode = 'auto';
// Per module: its instance, or null once instantiation failed (with the reason).
const loaded = new Map<string, { exports: WebAssembly.Exports | null; error?: unknown }>();

/**
 * Choose between io's WebAssembly kernels and the JS code for this thread (`auto` by default;
 * `MCP_MEDSAM_IO_WASM=0` in the environment makes `auto` mean `js`, e.g. for worker threads).
 * Setting a mode forgets earlier failed instantiations, which are retried on next use.
 */
export function setWasmKernels(m: WasmKernelMode): void {
  if (m !== 'auto' && m !== 'wasm' && m !== 'js')
    throw new InputError(`setWasmKernels: expected 'auto', 'wasm' or 'js', got ${String(m)}`);
  mode = m;
  for (const [k, v] of loaded) if (!v.exports) loaded.delete(k);
}

/** The current mode. */
export function wasmKernelMode(): WasmKernelMode {
  return mode;
}

/**
 * The exports of a kernel module, or null when the JS path is to run (mode `js`, the
 * environment switch, or a failed instantiation in mode `auto`). Throws in mode `wasm` when the
 * module cannot be instantiated.
 */
export function kernelExports(name: string, base64: string): WebAssembly.Exports | null {
  if (mode === 'js') return null;
  if (mode === 'auto' && globalThis.process?.env?.MCP_MEDSAM_IO_WASM === '0') return null;
  let entry = loaded.get(name);
  if (!entry) {
    try {
      const bytes = Uint8Array.from(atob(base64), (ch) => ch.charCodeAt(0));
      entry = { exports: new WebAssembly.Instance(new WebAssembly.Module(bytes), {}).exports };
    } catch (error) {
      entry = { exports: null, error };
    }
    loaded.set(name, entry);
  }
  if (!entry.exports && mode === 'wasm') {
    const why = entry.error instanceof Error ? entry.error.message : String(entry.error);
    throw new InputError(`the WebAssembly kernel ${name} cannot be instantiated here: ${why}`);
  }
  return entry.exports;
}

/** A module's own memory with views that follow its growth. */
export class WasmHeap {
  private buf: ArrayBuffer;
  private bytes: Uint8Array;

  constructor(private readonly memory: WebAssembly.Memory) {
    this.buf = memory.buffer;
    this.bytes = new Uint8Array(this.buf);
  }

  /** Grow to at least `size` bytes; false if the engine refuses (the caller falls back to JS). */
  reserve(size: number): boolean {
    const have = this.memory.buffer.byteLength;
    if (have < size) {
      try {
        this.memory.grow(Math.ceil((size - have) / 65536));
      } catch {
        return false;
      }
    }
    return true;
  }

  /** The memory's current buffer (a grow replaces it). */
  get buffer(): ArrayBuffer {
    if (this.buf !== this.memory.buffer) {
      this.buf = this.memory.buffer;
      this.bytes = new Uint8Array(this.buf);
    }
    return this.buf;
  }

  get u8(): Uint8Array {
    void this.buffer;
    return this.bytes;
  }
}

/** Round a byte offset up to a multiple of 16 (v128 alignment). */
export const align16 = (n: number): number => (n + 15) & ~15;
