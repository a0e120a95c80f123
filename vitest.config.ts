import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vitest/config';

const src = (name: string, file: string) => fileURLToPath(new URL(`./packages/${name}/src/${file}`, import.meta.url));

// Tests import packages by name; point them at the sources so `pnpm test` needs no build.
export default defineConfig({
  resolve: {
    alias: [
      { find: /^@mcp-medsam\/core\/common$/, replacement: src('core', 'common.ts') },
      { find: /^@mcp-medsam\/io\/tensor$/, replacement: src('io', 'tensor.ts') },
      ...['core', 'io', 'model', 'metrics', 'cli'].map((name) => ({
        find: new RegExp(`^@mcp-medsam/${name}$`),
        replacement: src(name, 'index.ts'),
      })),
    ],
  },
  test: {
    include: ['packages/*/test/**/*.test.ts', 'examples/*/test/**/*.test.ts'],
    testTimeout: 120_000,
    hookTimeout: 300_000,
    pool: 'forks',
    maxWorkers: 2,
  },
});
