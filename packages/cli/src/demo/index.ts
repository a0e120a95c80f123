export { runDemo } from './run_demo.js';
export type { DemoOptions } from './run_demo.js';
export type { DemoReport } from './report.js';
export { boxBaselineSegs, writeBoxBaseline } from './box_baseline.js';
export { renderOverlay, writeOverlay, overlaySlice } from './overlay.js';
export type { OverlayInput } from './overlay.js';
export { prepareDemoData } from './data.js';
export type { DemoData, DemoDataOptions } from './data.js';
