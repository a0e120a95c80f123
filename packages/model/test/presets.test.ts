import { expect, test } from 'vitest';
import { InputError } from '@mcp-medsam/core';
import { MCP_MEDSAM, TINY, getPreset } from '@mcp-medsam/model';

test('presets by name; an unknown name is an InputError listing the known ones', () => {
  expect(getPreset('tiny')).toBe(TINY);
  expect(getPreset('mcp-medsam')).toBe(MCP_MEDSAM);
  expect(() => getPreset('huge')).toThrow(InputError);
  expect(() => getPreset('huge')).toThrow("unknown preset 'huge' (known: mcp-medsam, tiny)");
});
