/**
 * Random draws for the synthetic cases. Structure (where an organ goes, how big) is drawn from the
 * project's seeded `Rng`; per-pixel noise needs millions of draws per case, which the BigInt-based
 * `Rng` is too slow for, so a 32-bit generator seeded from it produces those.
 */

/** Anything with a uniform [0, 1) draw: the core `Rng` or `PixelRandom`. */
export interface UniformSource {
  random(): number;
}

/** Uniform float in [lo, hi). */
export function uniform(src: UniformSource, lo: number, hi: number): number {
  return lo + (hi - lo) * src.random();
}

/** Uniform integer in [lo, hi] (both inclusive). */
export function uniformInt(src: UniformSource, lo: number, hi: number): number {
  return lo + Math.min(hi - lo, Math.floor(src.random() * (hi - lo + 1)));
}

/** +1 or -1 with equal odds. */
export function sign(src: UniformSource): number {
  return src.random() < 0.5 ? -1 : 1;
}

/** Whether an event of probability `p` happens. */
export function chance(src: UniformSource, p: number): boolean {
  return src.random() < p;
}

/**
 * A fast 32-bit generator for pixel noise: a Weyl sequence passed through an integer avalanche
 * mix, which is plenty for image noise and costs a few integer multiplications per draw.
 */
export class PixelRandom implements UniformSource {
  private s: number;

  constructor(seed: number) {
    this.s = seed | 0;
  }

  /** Uniform 32-bit unsigned integer. */
  nextU32(): number {
    this.s = (this.s + 0x9e3779b9) | 0;
    let z = this.s;
    z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
    z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
    return (z ^ (z >>> 16)) >>> 0;
  }

  /** Uniform float in [0, 1) (32 random bits). */
  random(): number {
    return this.nextU32() / 4294967296;
  }

  /**
   * Approximately standard normal: the sum of the four bytes of one draw, standardised
   * (Irwin-Hall). Tails stop at ±3.45, which image noise does not miss, and it costs a fraction of
   * Box-Muller's logarithm and trigonometry.
   */
  normal(): number {
    const u = this.nextU32();
    return ((u & 255) + ((u >>> 8) & 255) + ((u >>> 16) & 255) + (u >>> 24) - 510) * 0.0067658;
  }
}
