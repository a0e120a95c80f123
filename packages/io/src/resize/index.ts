export { resizeArea, resizeAreaU8 } from './inter_area.js';
export { resizeNearest, resizeNearestRaw, nearestIndices } from './inter_nearest.js';
export {
  resizeAntialiasBilinear,
  resizeAntialiasPlanes,
  resizeAntialiasRegionU8,
  antialiasTable,
  toTensor,
  toTensorU8,
} from './antialias_bilinear.js';
export type { AaTable } from './antialias_bilinear.js';
export { resizeBilinear, resizeBilinearPlanes, bilinearTable } from './bilinear.js';
export type { BilinearTable, BilinearPlanesOptions } from './bilinear.js';
export { resizeLongestSide, longestSideSize } from './longest_side.js';
export type { LongestSideSize } from './longest_side.js';
