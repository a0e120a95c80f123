import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vitest/config';

const pkg = (name: string) => fileURLToPath(new URL(`./packages/${name}/src/index.ts`, import.meta.url));

// Tests import packages by name; point them at the sources so `pnpm test` needs no build.
export default defineConfig({
  resolve: {
    alias: {
      '@mcp-medsam/core': pkg('core'),
      '@mcp-medsam/io': pkg('io'),
      '@mcp-medsam/model': pkg('model'),
      '@mcp-medsam/metrics': pkg('metrics'),
      '@mcp-medsam/cli': pkg('cli'),
    },
  },
  test: {
    include: ['packages/*/test/**/*.test.ts', 'examples/*/test/**/*.test.ts'],
    testTimeout: 120_000,
    hookTimeout: 300_000,
    pool: 'forks',
    maxWorkers: 2,
  },
});
