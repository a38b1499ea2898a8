/**
 * The registry of a peer: fingerprint -> {address, certificate, session, lastSeen} and session id
 * -> the same entry, in RAM only. A client is found by the session id its SESSION datagrams carry,
 * never by its source address: the address is only where pushes go, and it changes only on a
 * datagram whose session MAC verified (roaming). Kept small per client (see the memory note in peer.ts): keys are
 * latin1 strings of the raw bytes, the certificate is a latin1 string of its DER (no ArrayBuffer
 * and no KeyObject per client), the address is its addrKey text.
 *
 * Each client's session secrets and session id live in a slot of a shared slab (KeySlab): 120
 * bytes per client and no Buffer object of its own. The replay window of its counters is three
 * numbers in the entry itself.
 *
 * Expiry order without work per datagram: the map is kept in order of `queued`, the time an entry
 * was put at the end, which is at most its `seen`. touch() only sets `seen`; sweep() walks from
 * the front, removes what expired and moves an entry that was seen since it was queued to the end
 * (at most once per registration TTL per client), and stops at the first entry queued less than a
 * TTL ago: nothing behind it can have expired.
 */
import type { ReplayState } from '../crypto/session.js';
import { SESSION_ID_BYTES } from '../protocol/constants.js';

export interface RegistryEntry extends ReplayState {
  /** Fingerprint, latin1 string of the 32 raw bytes. */
  readonly fp: string;
  /** Certificate DER as a latin1 string. */
  cert: string;
  /** addrKey() of the client's current address (the last one that sent an authenticated datagram). */
  addr: string;
  /** Session id, latin1 string of its 8 bytes. */
  sid: string;
  /**
   * The slab slot of the session's secrets: client-to-peer MAC key, peer-to-client MAC key, the
   * client's delivery key, the registration nonce (KEYS_*), then the session id's 8 bytes.
   */
  slot: number;
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
  /** The `seen` of the entry when it was last put at the end of the expiry order. */
  queued: number;
}

/** Offsets in a client's slot: the session's secrets (KEYS_BYTES), then its session id. */
export const KEYS_C2P = 0;
export const KEYS_P2C = 32;
export const KEYS_DELIVERY = 64;
export const KEYS_NONCE = 96;
export const KEYS_BYTES = 112;
const SLOT_SID = KEYS_BYTES;
const SLOT_BYTES = KEYS_BYTES + SESSION_ID_BYTES;
/** Slots per slab chunk (a chunk of 480 KiB is allocated when all slots are taken). */
const SLOTS_PER_CHUNK = 4096;

/**
 * Fixed-size slots in chunks allocated on demand and never returned: the registry's bound
 * (registryMax) bounds the slots in use, and a freed slot is zeroed and reused first.
 */
class KeySlab {
  private readonly chunks: Buffer[] = [];
  private readonly free: number[] = [];
  private next = 0;

  alloc(): number {
    const f = this.free.pop();
    if (f !== undefined) return f;
    if (this.next === this.chunks.length * SLOTS_PER_CHUNK) this.chunks.push(Buffer.alloc(SLOTS_PER_CHUNK * SLOT_BYTES));
    return this.next++;
  }

  release(slot: number): void {
    this.view(slot, 0, SLOT_BYTES).fill(0);
    this.free.push(slot);
  }

  /** Copy out.length bytes of `slot` from `at` into `out`; returns `out`. */
  copyInto(out: Uint8Array, slot: number, at: number): Uint8Array {
    const off = (slot % SLOTS_PER_CHUNK) * SLOT_BYTES + at;
    const chunk = this.chunks[Math.floor(slot / SLOTS_PER_CHUNK)]!;
    for (let i = 0; i < out.length; i++) out[i] = chunk[off + i]!;
    return out;
  }

  view(slot: number, at: number, len: number): Buffer {
    const off = (slot % SLOTS_PER_CHUNK) * SLOT_BYTES + at;
    return this.chunks[Math.floor(slot / SLOTS_PER_CHUNK)]!.subarray(off, off + len);
  }
}

export class Registry {
  private readonly byFp = new Map<string, RegistryEntry>();
  private readonly bySid = new Map<string, RegistryEntry>();
  private readonly slab = new KeySlab();
  private readonly keyScratch = new Uint8Array(32);

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
    return this.live(now, this.byFp.get(fp));
  }

  /** The live entry of a session id; an expired one is removed on the way. */
  atSession(now: number, sid: string): RegistryEntry | undefined {
    return this.live(now, this.bySid.get(sid));
  }

  /** `e` if it has not expired; an expired one is removed. */
  private live(now: number, e: RegistryEntry | undefined): RegistryEntry | undefined {
    if (!e || this.isFresh(now, e)) return e;
    this.remove(e);
    return undefined;
  }

  /** Whether session id `sid` belongs to a client other than `fp`. */
  sidTaken(sid: string, fp: string): boolean {
    const other = this.bySid.get(sid);
    return other !== undefined && other.fp !== fp;
  }

  /** The client-to-peer MAC key of `e`'s session (a view: do not keep it). */
  c2p(e: RegistryEntry): Buffer {
    return this.slab.view(e.slot, KEYS_C2P, 32);
  }

  /**
   * The client-to-peer MAC key of `e`'s session copied into one buffer the registry reuses: valid
   * until the next call (for a MAC computed at once: no view allocated per datagram).
   */
  c2pKey(e: RegistryEntry): Uint8Array {
    return this.slab.copyInto(this.keyScratch, e.slot, KEYS_C2P);
  }

  /** The peer-to-client MAC key of `e`'s session (a view: do not keep it). */
  p2c(e: RegistryEntry): Buffer {
    return this.slab.view(e.slot, KEYS_P2C, 32);
  }

  /** The delivery key `e` registered with (a view: do not keep it). */
  deliveryKey(e: RegistryEntry): Buffer {
    return this.slab.view(e.slot, KEYS_DELIVERY, 32);
  }

  /** The nonce of the registration that made `e`'s session (a view: do not keep it). */
  nonce(e: RegistryEntry): Buffer {
    return this.slab.view(e.slot, KEYS_NONCE, 16);
  }

  /** The 8 bytes of `e`'s session id (a view: do not keep it). */
  sidBytes(e: RegistryEntry): Buffer {
    return this.slab.view(e.slot, SLOT_SID, SESSION_ID_BYTES);
  }

  /**
   * Register `fp` with a new session at `addrText`, replacing its previous session (whose id is
   * forgotten). `keys`: the session's secrets (KEYS_BYTES, copied). Returns the entry and its
   * previous address, if it had one.
   */
  put(now: number, fp: string, cert: string, addrText: string, sid: string, keys: Uint8Array): { entry: RegistryEntry; previousAddr: string | undefined } {
    if (keys.length !== KEYS_BYTES || sid.length !== SESSION_ID_BYTES) throw new TypeError(`a session needs ${KEYS_BYTES} bytes of secrets and an ${SESSION_ID_BYTES}-byte id`);
    const addr = flat(addrText);
    let e = this.byFp.get(fp);
    let previousAddr: string | undefined;
    if (e) {
      if (e.addr !== addr) previousAddr = e.addr;
      if (this.bySid.get(e.sid) === e) this.bySid.delete(e.sid);
      e.addr = addr;
      e.cert = cert;
      e.sid = sid;
      e.rxTop = -1;
      e.rxLo = 0;
      e.rxHi = 0;
      e.tx = 0;
      e.probe = undefined;
      this.touch(now, e);
    } else {
      const seen = this.since(now);
      e = { fp, cert, addr, sid, slot: this.slab.alloc(), rxTop: -1, rxLo: 0, rxHi: 0, tx: 0, probe: undefined, seen, queued: seen };
      this.byFp.set(fp, e);
    }
    this.slab.view(e.slot, 0, KEYS_BYTES).set(keys);
    this.slab.view(e.slot, SLOT_SID, SESSION_ID_BYTES).write(sid, 'latin1');
    this.bySid.set(sid, e);
    return { entry: e, previousAddr };
  }

  /** The client answered our probe from `addrText`: pushes go there from now on. */
  move(e: RegistryEntry, addrText: string): void {
    e.addr = flat(addrText);
    e.probe = undefined;
  }

  /** Refresh lastSeen (the expiry order catches up in sweep()). */
  touch(now: number, e: RegistryEntry): void {
    e.seen = this.since(now);
  }

  remove(e: RegistryEntry): void {
    if (this.byFp.get(e.fp) !== e) return;
    this.byFp.delete(e.fp);
    if (this.bySid.get(e.sid) === e) this.bySid.delete(e.sid);
    this.slab.release(e.slot);
    e.slot = -1;
    this.onRemove(e);
  }

  /**
   * Remove up to `max` expired entries from the front, moving those seen since they were queued
   * to the end (they count toward `max` too). Returns the earliest time another entry can expire
   * (a lower bound), or undefined when the registry is empty.
   */
  sweep(now: number, max: number): number | undefined {
    let n = 0;
    for (const e of this.byFp.values()) {
      const due = this.baseMs + e.queued + this.registrationTtlMs;
      if (due > now) return due;
      if (n++ >= max) return now;
      if (this.isFresh(now, e)) {
        this.byFp.delete(e.fp);
        this.byFp.set(e.fp, e);
        e.queued = e.seen;
      } else {
        this.remove(e);
      }
    }
    return undefined;
  }

  /** Earliest possible expiry (the front entry's), or undefined when empty. */
  firstExpiry(): number | undefined {
    for (const e of this.byFp.values()) return this.baseMs + e.queued + this.registrationTtlMs;
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
