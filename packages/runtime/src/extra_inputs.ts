/** Checks of the prompt-extension inputs an engine is given (see `DecodePrompts.extra`). */
import { InputError } from '@mcp-medsam/core/common';
import type { ExtraInput } from './engine.js';
import type { ManifestExtraInput } from './manifest.js';

function dtypeOf(a: ExtraInput): string {
  if (a.data instanceof Float32Array) return 'float32';
  if (a.data instanceof Int32Array) return 'int32';
  return Object.prototype.toString.call(a.data).slice(8, -1);
}

/** Whether the data holds exactly the shape's values (an InputError naming the input if not). */
export function checkExtraData(name: string, a: ExtraInput, label = `prompt input '${name}'`): void {
  const ok = Array.isArray(a?.shape) && a.shape.every((d) => Number.isSafeInteger(d) && d >= 0);
  const count = ok ? a.shape.reduce((x, y) => x * y, 1) : -1;
  if (!ok || !a.data || count !== a.data.length)
    throw new InputError(
      `${label}: ${a?.data?.length ?? 'no'} values do not fit shape (${a?.shape?.join(',') ?? '?'})`,
    );
}

/**
 * Checks `extra` against an export's extension inputs for a batch of `n`: no unknown or missing
 * names, dtypes, ranks, fixed sizes, the batch, and each symbol consistent within its extension.
 */
export function checkExtraInputs(
  specs: readonly ManifestExtraInput[],
  extra: Readonly<Record<string, ExtraInput>> | undefined,
  n: number,
): void {
  const given = extra ?? {};
  for (const key of Object.keys(given))
    if (!specs.some((s) => s.name === key))
      throw new InputError(
        `unknown prompt input '${key}' (${
          specs.length
            ? `the export takes ${specs.map((s) => `${s.extension}: ${s.name}`).join(', ')}`
            : 'the export has no prompt extensions'
        })`,
      );
  const sizes = new Map<string, [number, string]>();
  for (const s of specs) {
    const label = `prompt extension '${s.extension}', input '${s.name}'`;
    const a = given[s.name];
    const want = `(${s.shape.join(',')})`;
    if (!a) throw new InputError(`${label}: missing (${s.dtype} ${want})`);
    checkExtraData(s.name, a, label);
    if (dtypeOf(a) !== s.dtype) throw new InputError(`${label}: must be ${s.dtype}, got ${dtypeOf(a)}`);
    const bad = (why = '') =>
      new InputError(`${label}: must have shape ${want}, got (${a.shape.join(',')})${why}`);
    if (a.shape.length !== s.shape.length) throw bad();
    s.shape.forEach((d, k) => {
      const got = a.shape[k];
      if (k === 0) {
        if (got !== n) throw bad(` (the batch is ${n})`);
      } else if (typeof d === 'number') {
        if (got !== d) throw bad();
      } else {
        const key = `${s.extension}\u0000${d}`;
        const seen = sizes.get(key);
        if (seen && seen[0] !== got) throw bad(` (${d} = ${seen[0]} from '${seen[1]}')`);
        if (got < 1) throw bad(` (${d} must be at least 1)`);
        sizes.set(key, [got, s.name]);
      }
    });
  }
}
