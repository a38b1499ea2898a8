/**
 * A small bounded least-recently-used map for derived key material (src/crypto). Insertion order of
 * a Map is the recency order: a hit moves the entry to the end, an insert past the bound evicts the
 * oldest entry.
 */
export class BoundedLru<K, V> {
  private readonly map = new Map<K, V>();
  constructor(readonly entriesMax: number) {
    if (!Number.isSafeInteger(entriesMax) || entriesMax < 1) throw new RangeError(`entriesMax must be a positive integer, got ${entriesMax}`);
  }
  get size(): number {
    return this.map.size;
  }
  get(key: K): V | undefined {
    const v = this.map.get(key);
    if (v === undefined) return undefined;
    this.map.delete(key);
    this.map.set(key, v);
    return v;
  }
  set(key: K, value: V): void {
    this.map.delete(key);
    this.map.set(key, value);
    while (this.map.size > this.entriesMax) {
      const oldest = this.map.keys().next();
      if (oldest.done) break;
      this.map.delete(oldest.value);
    }
  }
  clear(): void {
    this.map.clear();
  }
}
