/**
 * Normalised surface distance (surface Dice at a tolerance), `compute_surface_dice_at_tolerance`:
 * the area of the surfels of each mask that lie within `tolerance` of the other surface, over the
 * total surfel area of both. NaN when both masks are empty; 0 when exactly one is.
 */
import type { SurfaceDistances } from './surface/distances.js';

export function surfaceDiceAtTolerance(sd: SurfaceDistances, tolerance = 2.0): number {
  let overlap = 0;
  let total = 0;
  const add = (d: Float64Array, a: Float64Array): void => {
    let o = 0;
    let t = 0;
    for (let i = 0; i < d.length; i++) {
      t += a[i];
      if (d[i] <= tolerance) o += a[i];
    }
    overlap += o;
    total += t;
  };
  add(sd.distancesGtToPred, sd.surfelAreasGt);
  add(sd.distancesPredToGt, sd.surfelAreasPred);
  return overlap / total;
}
