/**
 * Stateless address-validation cookies (HMAC-SHA256, RFC 2104 / FIPS 180-4, via node:crypto), in
 * the spirit of the QUIC Retry token (RFC 9000 section 8.1) and DTLS cookies (RFC 6347 section
 * 4.2.1):
 *
 *   cookie = epoch (u32 BE) || first 16 bytes of HMAC-SHA256(K_epoch, "peerpost/1 cookie" || epoch (u32 BE) || addrKey(source))
 *   K_epoch = HMAC-SHA256(master, epoch (u32 BE)),  epoch = floor(nowMs / cookieEpochMs)
 *
 * The master secret is random, taken at start and never stored. A cookie is valid in its own epoch
 * and the next one, so it lives between one and two epochs (2 to 4 minutes by default).
 *
 * A client sends the same cookie with every DELIVER, so the last cookie that passed the MAC check
 * is kept per address (COOKIE_CACHE_MAX addresses; at the bound the address checked longest ago
 * is forgotten and its next cookie is checked by MAC again). A cached cookie still has to be in
 * the current or the previous epoch, and is compared in constant time.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';
import { COOKIE_BYTES } from '../protocol/constants.js';

const COOKIE_LABEL = Buffer.from('peerpost/1 cookie', 'ascii');
const COOKIE_MAC_BYTES = COOKIE_BYTES - 4;
/** Epoch keys kept: the current and the previous epoch (plus one being replaced). */
const EPOCH_KEYS_MAX = 3;
/** Addresses whose last valid cookie is remembered (about 100 B each). */
export const COOKIE_CACHE_MAX = 65_536;

export class CookieJar {
  private readonly keys = new Map<number, Buffer>();
  /** addrKey -> the last cookie (latin1) that passed the MAC check from it, oldest first. */
  private readonly valid = new Map<string, string>();

  constructor(private readonly master: Uint8Array, readonly cookieEpochMs: number) {
    if (!(master instanceof Uint8Array) || master.length !== 32) throw new TypeError('cookie master secret must be 32 bytes');
    if (!Number.isInteger(cookieEpochMs) || cookieEpochMs < 1) throw new TypeError('cookieEpochMs must be a positive integer');
  }

  epochAt(nowMs: number): number {
    return Math.floor(nowMs / this.cookieEpochMs) >>> 0;
  }

  /** A fresh cookie for `addr` (an addrKey string) in the current epoch. */
  issue(nowMs: number, addr: string): Uint8Array {
    const epoch = this.epochAt(nowMs);
    const out = new Uint8Array(COOKIE_BYTES);
    new DataView(out.buffer).setUint32(0, epoch);
    out.set(this.mac(epoch, addr), 4);
    return out;
  }

  /** The epoch of a cookie valid for `addr` at `nowMs`, or -1 when it is not valid. */
  check(nowMs: number, addr: string, cookie: Uint8Array): number {
    if (cookie.length !== COOKIE_BYTES) return -1;
    const epoch = ((cookie[0]! << 24) | (cookie[1]! << 16) | (cookie[2]! << 8) | cookie[3]!) >>> 0;
    const current = this.epochAt(nowMs);
    if (epoch !== current && epoch !== ((current - 1) >>> 0)) return -1;
    const known = this.valid.get(addr);
    if (known !== undefined && sameBytes(known, cookie)) return epoch;
    const mac = this.mac(epoch, addr);
    if (!timingSafeEqual(mac, cookie.subarray(4))) return -1;
    if (known !== undefined) this.valid.delete(addr);
    else if (this.valid.size >= COOKIE_CACHE_MAX) this.valid.delete(this.valid.keys().next().value!);
    this.valid.set(addr, Buffer.from(cookie.buffer, cookie.byteOffset, cookie.byteLength).toString('latin1'));
    return epoch;
  }

  /** Addresses with a remembered cookie (bounded by COOKIE_CACHE_MAX). */
  get cachedAddresses(): number {
    return this.valid.size;
  }

  private mac(epoch: number, addr: string): Buffer {
    const e = Buffer.alloc(4);
    e.writeUInt32BE(epoch);
    return createHmac('sha256', this.key(epoch)).update(COOKIE_LABEL).update(e).update(addr, 'utf8').digest().subarray(0, COOKIE_MAC_BYTES);
  }

  private key(epoch: number): Buffer {
    let k = this.keys.get(epoch);
    if (k) return k;
    const e = Buffer.alloc(4);
    e.writeUInt32BE(epoch);
    k = createHmac('sha256', this.master).update(e).digest();
    this.keys.set(epoch, k);
    if (this.keys.size > EPOCH_KEYS_MAX) {
      // Forget the oldest epoch key: cookies of that epoch can no longer be valid.
      let oldest = epoch;
      for (const x of this.keys.keys()) if (x < oldest) oldest = x;
      this.keys.delete(oldest);
    }
    return k;
  }
}

/** `s` (latin1) equals `b`, compared without an early exit. */
function sameBytes(s: string, b: Uint8Array): boolean {
  if (s.length !== b.length) return false;
  let d = 0;
  for (let i = 0; i < b.length; i++) d |= s.charCodeAt(i) ^ b[i]!;
  return d === 0;
}
