#!/usr/bin/env node
// Runs every packages/*/bench/*.bench.mjs in its own Node process (one at a time, so they do
// not compete for the 2 cores) and passes their JSON lines through. Arguments filter by file
// name: `pnpm bench model metrics`.
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(fileURLToPath(new URL('.', import.meta.url)), '..');
const filters = process.argv.slice(2);
const files = [];
for (const pkg of readdirSync(path.join(root, 'packages')).sort()) {
  const dir = path.join(root, 'packages', pkg, 'bench');
  if (!existsSync(dir)) continue;
  for (const f of readdirSync(dir).sort())
    if (f.endsWith('.bench.mjs') && (filters.length === 0 || filters.some((x) => `${pkg}/${f}`.includes(x))))
      files.push(path.join(dir, f));
}
let failed = 0;
for (const file of files) {
  process.stderr.write(`# ${path.relative(root, file)}\n`);
  const r = spawnSync(process.execPath, ['--expose-gc', file], {
    stdio: ['ignore', 'inherit', 'inherit'],
    cwd: path.dirname(file),
  });
  if (r.status !== 0) {
    failed++;
    process.stderr.write(`# ${path.relative(root, file)} failed (exit ${r.status})\n`);
  }
}
process.exitCode = failed ? 1 : 0;
