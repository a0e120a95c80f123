import { describe, expect, test } from 'vitest';
import { InputError } from '@mcp-medsam/core';

describe('evaluate flags', () => {
  test('a bad --tolerance is an InputError before any file is read', async () => {
    const { buildProgram } = await import('../src/main.js');
    const program = buildProgram().exitOverride();
    const err = await program
      .parseAsync([
        'node',
        'mcp-medsam',
        'evaluate',
        '--pred',
        '/nonexistent',
        '--gt',
        '/nonexistent',
        '--tolerance',
        '-1',
      ])
      .catch((e) => e);
    expect(err).toBeInstanceOf(InputError);
    expect(err.message).toMatch(/--tolerance must be a number >= 0, got -1/);
  });
});
