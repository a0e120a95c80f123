// The short demo, as CI runs it: every step of `pnpm demo` on a small synthetic set.
import { mkdtemp, readFile, readdir, rm, stat } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, expect, test } from 'vitest';
import { ndarray, readChallengeCase, readNpzFile, readImage2dFile } from '@mcp-medsam/io';
import { evaluateDirs, scoreCase } from '@mcp-medsam/metrics';
import { boxBaselineSegs, runDemo } from '../src/demo/index.js';

const dirs: string[] = [];
afterAll(async () => {
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});

test('the short demo trains, exports, segments, scores and reports', { timeout: 600_000 }, async () => {
  const out = await mkdtemp(path.join(os.tmpdir(), 'demo-'));
  dirs.push(out);
  const lines: string[] = [];
  const r = await runDemo({ out, short: true, log: (l) => lines.push(l) });

  // The report on disk is the one returned, with the fields the README promises.
  const saved = JSON.parse(await readFile(path.join(out, 'report.json'), 'utf8'));
  expect(saved).toEqual(JSON.parse(JSON.stringify(r)));
  for (const k of ['dsc', 'nsd', 'boxBaselineDsc', 'seconds']) expect(saved).toHaveProperty(k);
  expect(r.training.steps).toBe(20);
  // It starts from the bundled checkpoint, scored on the same test cases before training.
  expect(r.start.checkpoint).toBe('tiny-synthetic.safetensors');
  // Its score is the one of the predictions it made before training, kept in before/segs.
  const before = await evaluateDirs({
    predDir: path.join(out, 'before', 'segs'),
    gtDir: path.join(out, 'data', 'test'),
  });
  expect(before.failures).toEqual([]);
  expect(r.start.dsc).toBe(before.overall.dsc);
  expect(r.data).toEqual({ source: 'synthetic', trainCases: 12, testCases: 6 });
  expect(r.failures).toEqual([]);
  expect(r.cases).toHaveLength(6);
  for (const k of ['data', 'before', 'train', 'segment', 'evaluate', 'total'])
    expect(r.seconds[k]).toBeGreaterThan(0);
  expect(Number.isFinite(r.training.lossStart) && Number.isFinite(r.training.lossEnd)).toBe(true);

  // Every number of the report is recomputed here from the files it names.
  const testDir = path.join(out, 'data', 'test');
  const names = (await readdir(testDir)).filter((f) => f.endsWith('.npz')).sort();
  expect(r.cases.map((c) => c.case)).toEqual(names);
  for (const c of r.cases) {
    const gt = await readChallengeCase(path.join(testDir, c.case));
    const segs = (await readNpzFile(path.join(out, 'segs', c.case))).segs;
    const spacing = gt.dims === 3 ? { spacing: gt.spacing } : {};
    expect(scoreCase(gt.gts!, segs, spacing).dsc).toBeCloseTo(c.dsc, 12);
    const spatial = gt.dims === 2 ? gt.imgs.shape.slice(0, 2) : gt.imgs.shape;
    const box = boxBaselineSegs(gt.imgs.shape, gt.boxes!, gt.dims);
    const boxScore = scoreCase(gt.gts!, ndarray('uint16', spatial, box), spacing);
    expect(boxScore.dsc).toBeCloseTo(c.boxDsc, 12);
    // The overlay is a picture of the case's slice size.
    const png = await readImage2dFile(path.join(out, 'overlays', c.case.replace(/\.npz$/, '.png')));
    const [H, W] = gt.dims === 2 ? gt.imgs.shape : gt.imgs.shape.slice(1);
    expect(png.array.shape.slice(0, 2)).toEqual([H, W]);
  }
  for (const f of [
    'report.md',
    'loss-curve.png',
    'model.safetensors',
    'onnx/manifest.json',
    'clip/vision.onnx',
  ])
    expect((await stat(path.join(out, f))).size).toBeGreaterThan(0);
  const md = await readFile(path.join(out, 'report.md'), 'utf8');
  expect(md).toContain(`| MCP-MedSAM (tiny) | ${r.dsc.toFixed(4)} |`);
  expect(md).toContain(`| box baseline | ${r.boxBaselineDsc.toFixed(4)} |`);
  expect(md).toContain(`| the starting checkpoint, before this run | ${r.start.dsc!.toFixed(4)} |`);
  // The terminal says where to look.
  expect(lines.join('\n')).toMatch(/Look at: .*report\.md/);
});
