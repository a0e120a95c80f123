#!/usr/bin/env node
import { main } from '../dist/main.js';

main(process.argv).catch((err) => {
  process.stderr.write(`mcp-medsam: ${err?.message ?? err}\n`);
  process.exitCode = process.exitCode || 1;
});
