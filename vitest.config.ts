import { existsSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vitest/config';
import { SHARED } from './test-utils/shared.js';

const src = (name: string, file: string) =>
  fileURLToPath(new URL(`./packages/${name}/src/${file}`, import.meta.url));

const root = fileURLToPath(new URL('.', import.meta.url));

/**
 * Test files that read ../shared (fixtures and data). Users who cloned the repository alone do
 * not have it: their run skips these files with a note instead of failing; CI requires them.
 */
function filesNeedingShared(): string[] {
  const out: string[] = [];
  for (const top of ['packages', 'examples']) {
    const dir = path.join(root, top);
    if (!existsSync(dir)) continue;
    for (const pkg of readdirSync(dir)) {
      const testDir = path.join(dir, pkg, 'test');
      if (!existsSync(testDir)) continue;
      for (const f of readdirSync(testDir, { recursive: true }) as string[]) {
        if (f.endsWith('.test.ts') && readFileSync(path.join(testDir, f), 'utf8').includes('sharedPath'))
          out.push(`${top}/${pkg}/test/${f}`);
      }
    }
  }
  return out;
}

const skipShared = !existsSync(SHARED) && !process.env.MCP_MEDSAM_REQUIRE_SHARED ? filesNeedingShared() : [];
if (skipShared.length)
  console.warn(
    `note: ${SHARED} not found; skipping ${skipShared.length} test files that need the shared fixtures`,
  );

// Tests import packages by name; point them at the sources so `pnpm test` needs no build.
export default defineConfig({
  resolve: {
    alias: [
      { find: /^@mcp-medsam\/core\/common$/, replacement: src('core', 'common.ts') },
      { find: /^@mcp-medsam\/io\/tensor$/, replacement: src('io', 'tensor.ts') },
      ...[
        'core',
        'io',
        'model',
        'metrics',
        'cli',
        'samplers',
        'prompts',
        'trainer',
        'exporter',
        'runtime',
      ].map((name) => ({
        find: new RegExp(`^@mcp-medsam/${name}$`),
        replacement: src(name, 'index.ts'),
      })),
    ],
  },
  test: {
    include: ['packages/*/test/**/*.test.ts', 'examples/*/test/**/*.test.ts'],
    exclude: ['**/node_modules/**', ...skipShared],
    globalSetup: ['./test-utils/global-setup.ts'],
    setupFiles: ['./test-utils/fast-check-setup.ts'],
    testTimeout: 120_000,
    hookTimeout: 300_000,
    pool: 'forks',
    maxWorkers: 2,
  },
});
