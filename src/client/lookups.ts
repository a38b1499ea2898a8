/**
 * Certificate lookups: CERT_REQUEST to the peer of a fingerprint whose certificate this client
 * needs (a contact's, a recipient's to seal to, a sender's to check a push with), with that
 * peer's cookie. A certificate that arrives is checked against the fingerprint and its validity,
 * then stored with the contacts that have that fingerprint, or else among the certificates of
 * strangers (certsMax; the oldest is forgotten).
 *
 * Timer `lookup`: a CERT_REQUEST is sent again after the link's RTO, doubling (at once with a
 * fresh cookie after BAD_COOKIE); after certLookupTriesMax tries without an answer, another ERROR
 * (NOT_FOUND, BAD_CERT, ...) or a certificate that fails the checks, the lookup gives up (waiting
 * pushes and messages are told why) and, while a message or a contact still needs the
 * certificate, starts over after certRetryMs. A contact waiting for the certificate is told why
 * (`contact-cert` with ok false and the reason). When the answer says the certificate can never
 * come (certificate-not-found, fingerprint-mismatch, bad-certificate) for longer than
 * unknownSenderGraceMs since the first such answer, the messages waiting for it fail with that
 * reason instead of waiting for messageTtlMs (bound: one timestamp per running lookup). A peer
 * that does not answer or does not have the certificate (NOT_FOUND) hands the lookup to the next
 * peer of the fingerprint's home (src/client/homes.ts) at once, while there is one not down; a new
 * home record moves a running lookup to its first peer.
 */
import { MsgType, WireError } from '../protocol/constants.js';
import { checkCertificate, fingerprintOf } from '../identity/certificate.js';
import type { OutboxMessage } from './store.js';
import { dueOnCookie, earliestDeadline, hex, unhex, type ClientContext } from './context.js';
import type { PeerLinks } from './peer-links.js';

interface Lookup {
  readonly fp: string;
  /** The peer asked now: one of `fp`'s home (src/client/homes.ts). */
  peerKey: string;
  /** The peer named with `fp` when the lookup started: its home without a record. */
  readonly hint: string;
  awaiting: boolean;
  attempt: number;
  tries: number;
  deadline: number;
  /** Pushes from this fingerprint wait for its certificate. */
  forIncoming: boolean;
  /** When the peer first answered that this certificate cannot come (not found, mismatch, bad). */
  hopelessSince?: number;
  /** Why the last try gave up, until the next try (a message that comes meanwhile is told at once). */
  lastFailure?: string;
}

/** Reasons that no retry will change. */
const HOPELESS = new Set(['certificate-not-found', 'fingerprint-mismatch', 'bad-certificate']);

/** What the rest of the client does with the outcome of a lookup. */
export interface LookupHooks {
  /** `fp`'s certificate arrived and is stored. */
  found(now: number, fp: string): void;
  /** The lookup for `fp` gave up with `reason` while pushes from `fp` waited for it. */
  senderMissing(now: number, fp: string, reason: string): void;
  /** The lookup for the recipient of `m` gave up with `reason` while `m` waited for it. */
  recipientMissing(m: OutboxMessage, reason: string): void;
  /** The certificate of `fp` cannot come (`reason`): fail the messages waiting for it. */
  recipientFailed(fp: string, reason: string): void;
  /**
   * `peerKey` did not answer for `fp`, or does not have it: the next peer of `fp`'s home to ask,
   * or undefined when none is left.
   */
  nextPeer(now: number, fp: string, hint: string, peerKey: string): string | undefined;
  /** A resolution of `fp`'s home is out: its answer may name another peer. */
  resolving(fp: string): boolean;
}

export class CertLookups {
  private readonly lookups = new Map<string, Lookup>();

  constructor(private readonly ctx: ClientContext, private readonly links: PeerLinks, private readonly hooks: LookupHooks) {}

  /** Why the lookup of `fp` last gave up, while it waits to try again; undefined otherwise. */
  failureOf(fp: string): string | undefined {
    return this.lookups.get(fp)?.lastFailure;
  }

  /** Look up `fp`'s certificate at the peer `peerKey`, unless a lookup for it runs already. */
  start(now: number, fp: string, peerKey: string, forIncoming: boolean): void {
    const l = this.lookups.get(fp);
    if (l) {
      if (forIncoming) l.forIncoming = true;
      return;
    }
    this.lookups.set(fp, { fp, peerKey, hint: peerKey, awaiting: false, attempt: 0, tries: 0, deadline: now, forIncoming });
  }

  /** `fp`'s home changed: a running lookup asks `peerKey` now (its hint stays). */
  rehome(now: number, fp: string, peerKey: (hint: string) => string | undefined): void {
    const l = this.lookups.get(fp);
    const p = l && peerKey(l.hint);
    if (!l || p === undefined || p === l.peerKey) return;
    this.moveTo(now, l, p);
  }

  private moveTo(now: number, l: Lookup, peerKey: string): void {
    l.peerKey = peerKey;
    l.awaiting = false;
    l.attempt = 0;
    l.tries = 0;
    l.deadline = now;
    delete l.hopelessSince;
  }

  /** Send every CERT_REQUEST whose time has come. */
  pump(now: number): void {
    for (const l of this.lookups.values()) if (l.deadline <= now) this.send(now, l);
  }

  /** The peer at `peerKey` gave us a cookie: lookups waiting for one go now. */
  cookieArrived(now: number, peerKey: string): void {
    dueOnCookie(this.lookups.values(), peerKey, now);
  }

  /** The `lookup` timer. */
  deadline(): number | undefined {
    return earliestDeadline(this.lookups.values());
  }

  /** An ERROR whose reference is a fingerprint. */
  onError(now: number, fromKey: string, ref: Uint8Array, code: number): void {
    const l = this.lookups.get(hex(ref));
    if (!l || l.peerKey !== fromKey) return;
    if (code === WireError.BAD_COOKIE) {
      l.awaiting = false;
      l.deadline = now;
      return;
    }
    // BAD_CERT: the peer holds this fingerprint's certificate but will not serve it (its
    // self-signature fails), so it is treated like a certificate that fails the check here.
    const reason = code === WireError.NOT_FOUND ? 'certificate-not-found' : code === WireError.BAD_CERT ? 'bad-certificate' : 'certificate-unreachable';
    this.gaveUp(now, l, reason);
  }

  onCert(now: number, fromKey: string, fpBytes: Uint8Array, cert: Uint8Array): void {
    const fp = hex(fpBytes);
    const l = this.lookups.get(fp);
    if (!l || l.peerKey !== fromKey) return void this.ctx.drops.add('unexpected_cert');
    const actual = hex(fingerprintOf(cert));
    const check = checkCertificate(cert, now);
    if (actual !== fp || !check.ok) {
      const reason = actual !== fp ? 'fingerprint-mismatch' : `bad-certificate-${check.ok ? '' : check.reason}`;
      this.ctx.emit({ type: 'contact-cert', fingerprint: fp, ok: false, reason });
      this.ctx.drops.add('cert_mismatch');
      this.gaveUp(now, l, reason, true);
      return;
    }
    this.lookups.delete(fp);
    this.keep(fp, hex(cert));
    this.ctx.emit({ type: 'contact-cert', fingerprint: fp, ok: true });
    this.hooks.found(now, fp);
  }

  private send(now: number, l: Lookup): void {
    const link = this.links.use(now, l.peerKey);
    if (l.awaiting) {
      l.tries++;
      if (l.tries >= this.ctx.o.certLookupTriesMax) return this.gaveUp(now, l, 'certificate-unreachable');
    }
    const cookie = this.links.cookieFor(now, link);
    if (!cookie) {
      // A peer that does not answer our HELLOs does not answer the lookup either.
      if ((link.hello?.attempt ?? 0) > 1 && ++l.tries >= this.ctx.o.certLookupTriesMax) return this.gaveUp(now, l, 'certificate-unreachable');
      l.awaiting = false;
      l.deadline = now + this.links.cookieWaitMs(link);
      return;
    }
    this.ctx.send(link.addr, { type: MsgType.CERT_REQUEST, cookie, fingerprint: unhex(l.fp) });
    l.awaiting = true;
    l.deadline = now + link.rtt.timeoutMs(l.attempt);
    l.attempt++;
  }

  /** The lookup got no certificate: tell the waiting pushes and messages, try again later. */
  private gaveUp(now: number, l: Lookup, reason: string, told = false): void {
    if (reason === 'certificate-unreachable' || reason === 'certificate-not-found') {
      // Not there, or not answering: another peer of its home may have it.
      const next = this.hooks.nextPeer(now, l.fp, l.hint, l.peerKey);
      if (next !== undefined && next !== l.peerKey) {
        l.lastFailure = reason;
        return this.moveTo(now, l, next);
      }
    }
    if (l.forIncoming) this.hooks.senderMissing(now, l.fp, reason);
    l.forIncoming = false;
    const s = this.ctx.s;
    const contact = s.contacts.some((c) => c.fingerprint === l.fp && !c.cert);
    if (contact && !told) this.ctx.emit({ type: 'contact-cert', fingerprint: l.fp, ok: false, reason });
    if (HOPELESS.has(reason)) {
      l.hopelessSince ??= now;
      // Not while the home is being resolved again: the contact may have moved.
      if (now - l.hopelessSince >= this.ctx.o.unknownSenderGraceMs && !this.hooks.resolving(l.fp)) this.hooks.recipientFailed(l.fp, reason);
    } else {
      delete l.hopelessSince;
    }
    l.lastFailure = reason;
    const waiting = s.outbox.filter((m) => m.to === l.fp && m.body !== undefined && (m.state === 'queued' || m.state === 'held'));
    if (waiting.length === 0 && !contact) {
      this.lookups.delete(l.fp);
      return;
    }
    for (const m of waiting) this.hooks.recipientMissing(m, reason);
    l.awaiting = false;
    l.attempt = 0;
    l.tries = 0;
    l.deadline = now + this.ctx.o.certRetryMs;
  }

  /** Keep a checked certificate with its contacts, or else among the strangers' (certsMax). */
  keep(fp: string, certHex: string): void {
    const s = this.ctx.s;
    let stored = false;
    for (const c of s.contacts) {
      if (c.fingerprint === fp && !c.cert) {
        c.cert = certHex;
        stored = true;
      }
    }
    if (!stored) {
      delete s.certs[fp];
      s.certs[fp] = certHex;
      const keys = Object.keys(s.certs);
      for (let i = 0; i < keys.length - this.ctx.o.certsMax; i++) delete s.certs[keys[i]!];
    }
    this.ctx.dirty = true;
  }
}
