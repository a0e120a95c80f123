import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import path from 'node:path';

/** The repository root. */
export const REPO_ROOT = fileURLToPath(new URL('..', import.meta.url));

/**
 * The read-only `shared/` folder beside the checkout (fixtures and test data).
 * `MCP_MEDSAM_SHARED` points elsewhere.
 */
export const SHARED = process.env.MCP_MEDSAM_SHARED ?? path.resolve(REPO_ROOT, '..', 'shared');

/** Absolute path of a file under shared/, e.g. `sharedPath('fixtures/model/checkpoint-a.pth')`. */
export function sharedPath(rel: string): string {
  const p = path.join(SHARED, rel);
  if (!existsSync(p))
    throw new Error(`test fixture not found: ${p} (set MCP_MEDSAM_SHARED to the shared/ folder)`);
  return p;
}
