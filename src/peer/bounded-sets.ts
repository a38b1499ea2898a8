/**
 * Two bounded sets of the peer: recently delivered messages (id -> recipient), and the
 * registration proofs already used, kept per cookie epoch.
 */

/**
 * A map of at most `max` keys; adding a new key beyond the bound forgets the oldest key. Setting
 * a key that is present replaces its value and keeps its place. The insertion order is kept in a
 * ring of `max` slots, not read from the Map: a V8 Map leaves a deleted entry in place until it
 * is rehashed, so taking the oldest with `keys().next()` after many deletions walks over all of
 * them (at 65,536 keys this made every add cost tens of microseconds).
 */
export class FifoMap<V> {
  private readonly map = new Map<string, V>();
  private readonly ring: Array<string | undefined> = [];
  private head = 0;
  constructor(readonly max: number) {
    if (!(Number.isInteger(max) && max >= 1)) throw new TypeError('FifoMap max must be a positive integer');
  }
  get size(): number {
    return this.map.size;
  }
  get(k: string): V | undefined {
    return this.map.get(k);
  }
  set(k: string, v: V): void {
    const before = this.map.size;
    this.map.set(k, v);
    if (this.map.size === before) return; // present: value replaced, place kept
    if (this.ring.length < this.max) {
      this.ring.push(k);
    } else {
      const oldest = this.ring[this.head]!;
      this.map.delete(oldest);
      this.ring[this.head] = k;
      this.head = (this.head + 1) % this.max;
    }
  }
}

/**
 * Used (fingerprint, nonce) pairs, grouped by the epoch of the cookie they came with. A proof can
 * only pass the cookie check in its cookie's epoch or the next one, so older groups are dropped.
 * At most `max` pairs in all; at the bound, new registrations are refused ('full') until the
 * window moves on, because forgetting a pair early would let its proof be replayed.
 */
export class ReplayGuard {
  private readonly byEpoch = new Map<number, Set<string>>();
  private total = 0;
  constructor(readonly max: number) {
    if (!(Number.isInteger(max) && max >= 1)) throw new TypeError('replayMax must be a positive integer');
  }
  get size(): number {
    return this.total;
  }
  /** Record the pair; 'replay' when it was seen, 'full' at the bound. */
  use(currentEpoch: number, cookieEpoch: number, key: string): 'ok' | 'replay' | 'full' {
    for (const [e, s] of this.byEpoch) {
      if (e + 1 < currentEpoch) {
        this.total -= s.size;
        this.byEpoch.delete(e);
      }
    }
    let s = this.byEpoch.get(cookieEpoch);
    if (s?.has(key)) return 'replay';
    if (this.total >= this.max) return 'full';
    if (!s) {
      s = new Set();
      this.byEpoch.set(cookieEpoch, s);
    }
    s.add(key);
    this.total++;
    return 'ok';
  }
}
