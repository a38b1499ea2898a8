/**
 * Per-peer links: the peer's address, its RFC 6298 RTT estimate (src/client/rtt.ts) and the cookie
 * it hands out. DELIVER, CERT_REQUEST and DIR_LIST carry a cookie; one is asked for with a small
 * HELLO (HELLO_BYTES) and comes back in a COOKIE naming the HELLO's nonce, and is reused for
 * cookieReuseMs. A HELLO is the only datagram sent to a peer address that has not answered yet, so
 * an address named inside a message gets one small datagram at a time from us, never more.
 *
 * Timer `hello`: a HELLO is sent again after the link's RTO, doubling, HELLO_TRIES_MAX times in
 * all; then the request is given up until something needs that peer again. Only a COOKIE to a
 * HELLO sent once is an RTT sample (Karn).
 *
 * Bound: peerLinksMax links; a new one forgets the least recently used link that has no HELLO
 * outstanding and is not one of our own peers'.
 */
import { HELLO_MIN_BYTES, MsgType } from '../protocol/constants.js';
import type { CookieMsg } from '../protocol/messages.js';
import { parseAddr, type Addr } from '../core/types.js';
import { UsageError } from '../core/errors.js';
import { RttEstimator } from './rtt.js';
import { earlier, type ClientContext } from './context.js';

/** HELLO transmissions before a cookie request is given up (started again when needed). */
export const HELLO_TRIES_MAX = 8;
/** Size of our HELLO datagrams: the smallest a peer answers. */
export const HELLO_BYTES = HELLO_MIN_BYTES;

export interface PeerLink {
  readonly key: string;
  readonly addr: Addr;
  readonly rtt: RttEstimator;
  cookie?: { bytes: Uint8Array; atMs: number };
  hello?: { nonce: Uint8Array; attempt: number; sentAtMs: number; deadline: number };
  usedAtMs: number;
}

export class PeerLinks {
  private readonly links = new Map<string, PeerLink>();

  constructor(private readonly ctx: ClientContext) {}

  /** The link to the peer at `key` (host:port), created if needed, marked used now. */
  use(now: number, key: string): PeerLink {
    let l = this.links.get(key);
    if (!l) {
      const addr = parseAddr(key);
      if (!addr) throw new UsageError('PEERPOST_CONTACT_PEER', `bad peer address ${key}`);
      if (this.links.size >= this.ctx.o.peerLinksMax) this.evict();
      l = { key, addr, rtt: new RttEstimator(), usedAtMs: now };
      this.links.set(key, l);
    }
    l.usedAtMs = now;
    return l;
  }

  /** A fresh cookie for the peer, or undefined after asking for one. */
  cookieFor(now: number, link: PeerLink): Uint8Array | undefined {
    if (link.cookie && now - link.cookie.atMs < this.ctx.o.cookieReuseMs) return link.cookie.bytes;
    delete link.cookie;
    if (!link.hello) {
      link.hello = { nonce: this.ctx.random(16), attempt: 0, sentAtMs: now, deadline: now };
      this.sendHello(now, link);
    }
    return undefined;
  }

  /** How long a request that found no cookie waits before it tries again. */
  cookieWaitMs(link: PeerLink): number {
    return Math.max(this.ctx.o.busyBackoffInitialMs, link.rtt.timeoutMs(link.hello?.attempt ?? 0));
  }

  /**
   * The COOKIE asked for with HELLO: taken when it names our HELLO's nonce. Returns the link when
   * it is taken, undefined when dropped.
   */
  onCookie(now: number, fromKey: string, m: CookieMsg): PeerLink | undefined {
    const link = this.links.get(fromKey);
    if (!link?.hello) return void this.ctx.drops.add('unexpected_cookie');
    if (!Buffer.from(link.hello.nonce).equals(m.nonce)) return void this.ctx.drops.add('cookie_nonce_mismatch');
    if (link.hello.attempt === 1) link.rtt.sample(now - link.hello.sentAtMs);
    link.cookie = { bytes: m.cookie, atMs: now };
    delete link.hello;
    return link;
  }

  /** The peer at `key` refused our cookie (BAD_COOKIE). */
  forgetCookie(key: string): void {
    const link = this.links.get(key);
    if (link) delete link.cookie;
  }

  /** Our address may have changed: cookies are bound to it. */
  forgetCookies(): void {
    for (const l of this.links.values()) delete l.cookie;
  }

  handleTimeout(now: number): void {
    for (const link of this.links.values()) {
      if (!link.hello || link.hello.deadline > now) continue;
      // Give up after HELLO_TRIES_MAX; whoever still needs a cookie asks again later.
      if (link.hello.attempt >= HELLO_TRIES_MAX) delete link.hello;
      else this.sendHello(now, link);
    }
  }

  /** The `hello` timer. */
  deadline(): number | undefined {
    let hello: number | undefined;
    for (const l of this.links.values()) if (l.hello) hello = earlier(hello, l.hello.deadline);
    return hello;
  }

  private evict(): void {
    let victim: PeerLink | undefined;
    for (const l of this.links.values()) {
      if (this.ctx.peerAddrs.has(l.key) || l.hello) continue;
      if (!victim || l.usedAtMs < victim.usedAtMs) victim = l;
    }
    if (victim) this.links.delete(victim.key);
  }

  private sendHello(now: number, link: PeerLink): void {
    const h = link.hello!;
    this.ctx.send(link.addr, { type: MsgType.HELLO, nonce: h.nonce, padTo: HELLO_BYTES });
    h.sentAtMs = now;
    h.deadline = now + link.rtt.timeoutMs(h.attempt);
    h.attempt++;
  }
}
