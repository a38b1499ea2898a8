/**
 * The registry of a peer: fingerprint -> {address, certificate, session, lastSeen} and session id
 * -> fingerprint, in RAM only. A client is found by the session id its SESSION datagrams carry,
 * never by its source address: the address is only where pushes go, and it changes only on a
 * datagram whose session MAC verified (roaming). Kept small per client (see the memory note in peer.ts): keys are
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
  /** addrKey() of the client's current address (the last one that sent an authenticated datagram). */
  addr: string;
  /** Session id, latin1 string of its 8 bytes. */
  sid: string;
  /**
   * The session's secrets, one buffer: client-to-peer MAC key [0, 32), peer-to-client MAC key
   * [32, 64), the client's delivery key [64, 96), the registration nonce [96, 112).
   */
  keys: Buffer;
  /** Anti-replay window of the client's counters. */
  rx: ReplayWindow;
  /** Counter of the last SESSION datagram sent to the client (0 is the registration's OK). */
  tx: number;
  /**
   * Path validation under way: an authenticated datagram came from `addr`, not the client's
   * address; we sent a KEEPALIVE asking for an answer there, counter `counter`. The client moves
   * to `addr` when its OK naming that counter comes from `addr`.
   */
  probe: { addr: string; counter: number } | undefined;
  /**
   * Time of the last datagram that refreshed the entry, in whole ms after the registry's base
   * time: a small integer (a V8 Smi, stored inline) rather than a boxed double.
   */
  seen: number;
}

import { ReplayWindow } from '../crypto/session.js';

/** Offsets in RegistryEntry.keys. */
export const KEYS_C2P = 0;
export const KEYS_P2C = 32;
export const KEYS_DELIVERY = 64;
export const KEYS_NONCE = 96;
export const KEYS_BYTES = 112;

export class Registry {
  private readonly byFp = new Map<string, RegistryEntry>();
  private readonly bySid = new Map<string, string>();

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

  /** The live entry of a session id; an expired one is removed on the way. */
  atSession(now: number, sid: string): RegistryEntry | undefined {
    const fp = this.bySid.get(sid);
    return fp === undefined ? undefined : this.lookup(now, fp);
  }

  /** Whether session id `sid` belongs to a client other than `fp`. */
  sidTaken(sid: string, fp: string): boolean {
    const other = this.bySid.get(sid);
    return other !== undefined && other !== fp;
  }

  /**
   * Register `fp` with a new session at `addrText`, replacing its previous session (whose id is
   * forgotten). Returns the entry and its previous address, if it had one.
   */
  put(now: number, fp: string, cert: string, addrText: string, sid: string, keys: Buffer): { entry: RegistryEntry; previousAddr: string | undefined } {
    const addr = flat(addrText);
    let e = this.byFp.get(fp);
    let previousAddr: string | undefined;
    if (e) {
      if (e.addr !== addr) previousAddr = e.addr;
      this.bySid.delete(e.sid);
      e.addr = addr;
      e.cert = cert;
      e.sid = sid;
      e.keys = keys;
      e.rx = new ReplayWindow();
      e.tx = 0;
      e.probe = undefined;
      this.touch(now, e);
    } else {
      e = { fp, cert, addr, sid, keys, rx: new ReplayWindow(), tx: 0, probe: undefined, seen: this.since(now) };
      this.byFp.set(fp, e);
    }
    this.bySid.set(sid, fp);
    return { entry: e, previousAddr };
  }

  /** The client answered our probe from `addrText`: pushes go there from now on. */
  move(e: RegistryEntry, addrText: string): void {
    e.addr = flat(addrText);
    e.probe = undefined;
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
    if (this.bySid.get(e.sid) === e.fp) this.bySid.delete(e.sid);
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

/** A flat copy of a string: a template-built address is a rope that would keep its parts alive. */
function flat(s: string): string {
  return Buffer.from(s, 'latin1').toString('latin1');
}
