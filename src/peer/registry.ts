/**
 * The registry of a peer: fingerprint -> {address, certificate, lastSeen} and address ->
 * fingerprint, in RAM only. Kept small per client (see the memory note in peer.ts): keys are
 * latin1 strings of the raw bytes, the certificate is a latin1 string of its DER (no ArrayBuffer
 * and no KeyObject per client), the address is its addrKey text.
 *
 * The map is kept in order of lastSeen: touch() moves an entry to the end, so the entries that
 * expire first are at the front and sweep() stops at the first live one.
 */
export interface RegistryEntry {
  /** Fingerprint, latin1 string of the 32 raw bytes. */
  readonly fp: string;
  /** Certificate DER as a latin1 string. */
  cert: string;
  /** addrKey() of the client's current address. */
  addr: string;
  /**
   * Time of the last datagram that refreshed the entry, in whole ms after the registry's base
   * time: a small integer (a V8 Smi, stored inline) rather than a boxed double.
   */
  seen: number;
}

export class Registry {
  private readonly byFp = new Map<string, RegistryEntry>();
  private readonly byAddr = new Map<string, string>();

  /**
   * @param baseMs time origin of `seen` (the peer's start time)
   */
  constructor(
    readonly registrationTtlMs: number,
    private readonly baseMs: number,
    private readonly onRemove: (e: RegistryEntry) => void,
  ) {}

  /** When `e` was last refreshed, in the caller's time. */
  lastSeen(e: RegistryEntry): number {
    return this.baseMs + e.seen;
  }

  get size(): number {
    return this.byFp.size;
  }

  isFresh(now: number, e: RegistryEntry): boolean {
    return now - (this.baseMs + e.seen) < this.registrationTtlMs;
  }

  /** The live entry of a fingerprint; an expired one is removed on the way. */
  lookup(now: number, fp: string): RegistryEntry | undefined {
    const e = this.byFp.get(fp);
    if (!e) return undefined;
    if (this.isFresh(now, e)) return e;
    this.remove(e);
    return undefined;
  }

  /** The live entry registered at an address; an expired one is removed on the way. */
  atAddr(now: number, addr: string): RegistryEntry | undefined {
    const fp = this.byAddr.get(addr);
    return fp === undefined ? undefined : this.lookup(now, fp);
  }

  /** Register or move `fp` to `addr`. A different client registered at `addr` is removed. */
  put(now: number, fp: string, cert: string, addrText: string): { entry: RegistryEntry; previousAddr: string | undefined } {
    // A flat copy: a template-built address is a rope that would keep its parts alive.
    const addr = Buffer.from(addrText, 'latin1').toString('latin1');
    const other = this.byAddr.get(addr);
    if (other !== undefined && other !== fp) {
      const o = this.byFp.get(other);
      if (o) this.remove(o);
    }
    let e = this.byFp.get(fp);
    let previousAddr: string | undefined;
    if (e) {
      if (e.addr !== addr) {
        previousAddr = e.addr;
        this.byAddr.delete(e.addr);
        e.addr = addr;
      }
      e.cert = cert;
      this.touch(now, e);
    } else {
      e = { fp, cert, addr, seen: this.since(now) };
      this.byFp.set(fp, e);
    }
    this.byAddr.set(addr, fp);
    return { entry: e, previousAddr };
  }

  /** Refresh lastSeen and move the entry to the end of the expiry order. */
  touch(now: number, e: RegistryEntry): void {
    e.seen = this.since(now);
    this.byFp.delete(e.fp);
    this.byFp.set(e.fp, e);
  }

  remove(e: RegistryEntry): void {
    if (this.byFp.get(e.fp) !== e) return;
    this.byFp.delete(e.fp);
    if (this.byAddr.get(e.addr) === e.fp) this.byAddr.delete(e.addr);
    this.onRemove(e);
  }

  /**
   * Remove up to `max` expired entries from the front. Returns the earliest time another entry
   * can expire (a lower bound), or undefined when the registry is empty.
   */
  sweep(now: number, max: number): number | undefined {
    let n = 0;
    for (const e of this.byFp.values()) {
      if (this.isFresh(now, e)) return this.lastSeen(e) + this.registrationTtlMs;
      if (n++ >= max) return now;
      this.remove(e);
    }
    return undefined;
  }

  /** Earliest expiry (the front entry), or undefined when empty. */
  firstExpiry(): number | undefined {
    for (const e of this.byFp.values()) return this.lastSeen(e) + this.registrationTtlMs;
    return undefined;
  }

  private since(now: number): number {
    return Math.floor(now - this.baseMs);
  }
}
