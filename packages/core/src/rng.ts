/**
 * A small seeded generator (PCG-XSH-RR 64/32) whose whole state is two bigints, so a run can
 * save it in a checkpoint and continue with exactly the same draws.
 */
export interface RngState {
  state: string;
  inc: string;
}

const MASK64 = (1n << 64n) - 1n;
const MULT = 6364136223846793005n;

export class Rng {
  private state = 0n;
  private inc = 0n;

  constructor(seed: number | bigint = 0) {
    this.seed(seed);
  }

  seed(seed: number | bigint): void {
    this.state = 0n;
    this.inc = ((BigInt(seed) << 1n) | 1n) & MASK64;
    this.nextU32();
    this.state = (this.state + BigInt.asUintN(64, BigInt(seed))) & MASK64;
    this.nextU32();
  }

  /** Uniform 32-bit unsigned integer. */
  nextU32(): number {
    const old = this.state;
    this.state = (old * MULT + this.inc) & MASK64;
    const xorshifted = Number((((old >> 18n) ^ old) >> 27n) & 0xffffffffn);
    const rot = Number(old >> 59n);
    return ((xorshifted >>> rot) | (xorshifted << (-rot & 31))) >>> 0;
  }

  /** Uniform float in [0, 1) with 53 random bits. */
  random(): number {
    const hi = this.nextU32() >>> 5;
    const lo = this.nextU32() >>> 6;
    return (hi * 67108864 + lo) / 9007199254740992;
  }

  /** Uniform integer in [lo, hi] (both inclusive), without modulo bias. */
  int(lo: number, hi: number): number {
    if (!Number.isInteger(lo) || !Number.isInteger(hi) || hi < lo)
      throw new RangeError(`bad range [${lo}, ${hi}]`);
    const span = hi - lo + 1;
    if (span > 0x100000000) return lo + Math.floor(this.random() * span);
    const limit = 0x100000000 - (0x100000000 % span);
    let x = this.nextU32();
    while (x >= limit) x = this.nextU32();
    return lo + (x % span);
  }

  /** Standard normal draw (Box-Muller, one value per call). */
  normal(): number {
    let u = 0;
    while (u === 0) u = this.random();
    return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * this.random());
  }

  /** One element of a non-empty array. */
  choice<T>(items: readonly T[]): T {
    if (items.length === 0) throw new RangeError('choice from an empty array');
    return items[this.int(0, items.length - 1)];
  }

  getState(): RngState {
    return { state: this.state.toString(), inc: this.inc.toString() };
  }

  setState(s: RngState): void {
    this.state = BigInt(s.state) & MASK64;
    this.inc = BigInt(s.inc) & MASK64;
  }
}
