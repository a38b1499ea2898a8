/**
 * Seeded randomness for the simulator: the sfc32 generator of the virtual network helper, with
 * the draws a scenario needs. Every stream is derived from the run's seed and a label, so one
 * aspect of a run (say, the network's faults) draws from its own stream and the others do not
 * shift when it changes.
 */
import { Prng } from '../helpers/vnet.js';
import type { Random } from '../../src/core/types.js';

export class Rng {
  private readonly p: Prng;
  constructor(seed: number | string) {
    this.p = new Prng(seed);
  }
  /** A new independent stream for `label`, derived from this one's seed material. */
  static stream(seed: number, label: string): Rng {
    return new Rng(`${seed >>> 0}/${label}`);
  }
  /** Uniform in [0, 1). */
  next(): number {
    return this.p.next();
  }
  u32(): number {
    return this.p.u32();
  }
  /** Integer in [lo, hi], both included. */
  int(lo: number, hi: number): number {
    return lo + Math.floor(this.p.next() * (hi - lo + 1));
  }
  /** Real in [lo, hi). */
  real(lo: number, hi: number): number {
    return lo + this.p.next() * (hi - lo);
  }
  chance(p: number): boolean {
    return this.p.next() < p;
  }
  pick<T>(xs: readonly T[]): T {
    if (xs.length === 0) throw new Error('pick from an empty list');
    return xs[Math.floor(this.p.next() * xs.length)]!;
  }
  /** `n` distinct items (fewer when the list is shorter), in random order. */
  sample<T>(xs: readonly T[], n: number): T[] {
    const a = [...xs];
    for (let i = a.length - 1; i > 0; i--) {
      const j = Math.floor(this.p.next() * (i + 1));
      [a[i], a[j]] = [a[j]!, a[i]!];
    }
    return a.slice(0, Math.min(n, a.length));
  }
  bytes(n: number): Uint8Array {
    return this.p.bytes(n);
  }
  /** A Random for a machine. */
  random(): Random {
    return (n) => this.p.bytes(n);
  }
}
