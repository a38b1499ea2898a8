/**
 * Two bounded sets of the peer: recently delivered messages (id -> recipient), and the
 * registration proofs already used, kept per cookie epoch.
 */
import { createHmac } from 'node:crypto';

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
 *
 * A pair is kept as 8 bytes, the first 64 bits of HMAC-SHA256(secret, pair), in an open-addressing
 * table per epoch (linear probing, doubled before it is half full): 16 to 32 bytes per pair, where
 * a string in a Set took ~84. The secret is the peer's own and random, so a sender cannot choose
 * nonces whose tags collide; a chance collision (probability about n^2 / 2^65 for n pairs) refuses
 * one honest registration as REPLAY, and the client registers again with a new nonce.
 */
export class ReplayGuard {
  private readonly byEpoch = new Map<number, TagTable>();
  private total = 0;
  constructor(readonly max: number, private readonly secret: Uint8Array) {
    if (!(Number.isInteger(max) && max >= 1)) throw new TypeError('replayMax must be a positive integer');
  }
  get size(): number {
    return this.total;
  }
  /** Bytes held by the tables (slots of 8 bytes). */
  get tableBytes(): number {
    let n = 0;
    for (const t of this.byEpoch.values()) n += t.bytes;
    return n;
  }
  /** Record the pair; 'replay' when it was seen, 'full' at the bound. */
  use(currentEpoch: number, cookieEpoch: number, key: string): 'ok' | 'replay' | 'full' {
    for (const [e, t] of this.byEpoch) {
      if (e + 1 < currentEpoch) {
        this.total -= t.size;
        this.byEpoch.delete(e);
      }
    }
    const tag = createHmac('sha256', this.secret).update(key, 'latin1').digest();
    const hi = tag.readUInt32BE(0);
    const lo = tag.readUInt32BE(4) || 1; // (0, 0) marks an empty slot
    let t = this.byEpoch.get(cookieEpoch);
    if (t?.has(hi, lo)) return 'replay';
    if (this.total >= this.max) return 'full';
    if (!t) {
      t = new TagTable();
      this.byEpoch.set(cookieEpoch, t);
    }
    t.add(hi, lo);
    this.total++;
    return 'ok';
  }
}

/** A set of 64-bit tags (hi, lo; lo never 0) with open addressing and linear probing. */
class TagTable {
  private slots = new Uint32Array(2 * TAG_TABLE_SLOTS_MIN);
  size = 0;
  get bytes(): number {
    return this.slots.byteLength;
  }
  has(hi: number, lo: number): boolean {
    const mask = this.slots.length / 2 - 1;
    for (let i = lo & mask; ; i = (i + 1) & mask) {
      const l = this.slots[2 * i + 1]!;
      if (l === 0) return false;
      if (l === lo && this.slots[2 * i] === hi) return true;
    }
  }
  /** Add a tag that is not present. */
  add(hi: number, lo: number): void {
    if (2 * (this.size + 1) > this.slots.length / 2) this.grow();
    this.place(hi, lo);
    this.size++;
  }
  private place(hi: number, lo: number): void {
    const mask = this.slots.length / 2 - 1;
    let i = lo & mask;
    while (this.slots[2 * i + 1] !== 0) i = (i + 1) & mask;
    this.slots[2 * i] = hi;
    this.slots[2 * i + 1] = lo;
  }
  private grow(): void {
    const old = this.slots;
    this.slots = new Uint32Array(old.length * 2);
    for (let i = 0; i < old.length; i += 2) if (old[i + 1] !== 0) this.place(old[i]!, old[i + 1]!);
  }
}

/** Slots a new per-epoch table starts with (a power of two). */
const TAG_TABLE_SLOTS_MIN = 1024;
