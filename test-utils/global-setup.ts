import { existsSync } from 'node:fs';
import { SHARED } from './shared.js';

/** Fails early in CI when the shared fixtures are missing; elsewhere the config skips them. */
export default function setup(): void {
  if (!existsSync(SHARED) && process.env.MCP_MEDSAM_REQUIRE_SHARED) {
    throw new Error(`shared fixtures not found at ${SHARED} (MCP_MEDSAM_REQUIRE_SHARED is set)`);
  }
}
