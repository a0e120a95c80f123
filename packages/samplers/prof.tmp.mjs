import { buildCaseIndex, runBuildJob } from '/work/main/packages/samplers/dist/index.js';
import { openNpzFile } from '@mcp-medsam/io';
const idx = await buildCaseIndex('/work/shared/data/npz');
const e2 = idx.entries.filter(e => e.dims === 2);
let tr = 0, tb = 0;
for (const e of e2.slice(0, 40)) {
  let t = performance.now(); const npz = await openNpzFile(e.file); npz.get('imgs'); npz.get('gts'); tr += performance.now() - t;
  t = performance.now(); const r = await runBuildJob({ draw: 0, caseIndex: 0, slice: 0, file: e.file, dims: 2, seed: '1', options: {} }); tb += performance.now() - t;
  if (!r.ok) console.log(r.error.message);
}
console.log('read ms/sample', tr / 40, 'read+build', tb / 40);
const r2 = []; for (const e of e2.slice(0,40)) { const t = performance.now(); await runBuildJob({ draw: 0, caseIndex: 0, slice: 0, file: e.file, dims: 2, seed: '1', options: {crop224:false} }); r2.push(performance.now()-t);} console.log('no crop224', r2.reduce((a,b)=>a+b)/40);
