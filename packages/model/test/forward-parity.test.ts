/**
 * The whole network against the original PyTorch model: checkpoint-a.pth and the eval-mode
 * forward passes in forward-a-{ct,endo}.npz (fixtures README), on the wasm backend.
 */
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { initBackend, tf } from '@mcp-medsam/core';
import { readNpzFile, toFloat32, type NdArray } from '@mcp-medsam/io';
import { ndarrayToTensor } from '@mcp-medsam/io/tensor';
import {
  McpMedsam,
  MCP_MEDSAM,
  loadWeights,
  readCheckpointFile,
  type ForwardOutputs,
} from '@mcp-medsam/model';
import { maxAbsDiff } from '../../../test-utils/reference.js';
import { sharedPath } from '../../../test-utils/shared.js';

// Tolerances suggested by the fixtures README (fp32 port vs fp32 original; fp32 vs fp64 differ by ~1e-5).
const ATOL: Record<string, number> = {
  image_embedding: 1e-4,
  sparse: 2e-5,
  dense: 1e-4,
  dense_pe: 1e-4,
  hs: 2e-5,
  keys: 1e-4,
  low_res_logits: 1e-4,
  iou: 2e-5,
  category_logits: 2e-5,
  clip_vec: 2e-5,
  img_vec: 2e-5,
  tap_layers_1: 1e-4,
  tap_layers_2: 1e-4,
  tap_layers_3: 1e-4,
};

let model: McpMedsam;

beforeAll(async () => {
  await initBackend({ backend: 'wasm', log: null });
  model = new McpMedsam(MCP_MEDSAM);
  const r = await loadWeights(model, sharedPath('fixtures/model/checkpoint-a.pth'));
  expect(r.kind).toBe('full');
  model.eval();
});

afterAll(() => model?.dispose());

test('our state dict has the checkpoint keys in the same order', async () => {
  const ck = await readCheckpointFile(sharedPath('fixtures/model/checkpoint-a.pth'));
  expect(model.stateDictTensors().map(([k]) => k)).toEqual([...ck.stateDict.keys()]);
  expect(model.numParameters()).toBe(19_586_051);
});

function runCase(fx: Record<string, NdArray>, taps: boolean): ForwardOutputs {
  const t = (n: string) => ndarrayToTensor(fx[n], n);
  const inputs = {
    image: t('image'),
    boxes: t('box256'),
    clipImage: t('clip_img'),
    clipText: t('clip_txt'),
    categoryIdx: t('category_idx'),
    crops: t('crop64'),
  };
  try {
    return model.forward(inputs, { taps });
  } finally {
    Object.values(inputs).forEach((x) => x.dispose());
  }
}

describe.each([
  ['ct', true],
  ['endo', false],
])('forward-a-%s.npz', (name, withTaps) => {
  let fx: Record<string, NdArray>;
  let out: ForwardOutputs;
  beforeAll(async () => {
    fx = await readNpzFile(sharedPath(`fixtures/model/forward-a-${name}.npz`));
    out = runCase(fx, withTaps);
  });
  afterAll(() => Object.values(out ?? {}).forEach((t) => t?.dispose()));

  const names = Object.keys(ATOL).filter((k) => withTaps || !k.startsWith('tap_'));
  test.each(names)('%s matches the original', (key) => {
    const expected = fx[key];
    if (!expected) {
      // dense_pe is stored in the CT case only (it depends on the weights alone).
      expect(key).toBe('dense_pe');
      return;
    }
    const got = (out as unknown as Record<string, tf.Tensor>)[key];
    expect(got.shape).toEqual(expected.shape);
    const diff = maxAbsDiff(got.dataSync() as Float32Array, toFloat32(expected));
    expect(diff).toBeLessThan(ATOL[key]);
  });
});
