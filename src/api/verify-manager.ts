/**
 * Live safety-code checks (src/codes/verify.ts) carried over a client's sealed VERIFY messages.
 * One session per contact fingerprint, at most VERIFY_SESSIONS_MAX (the oldest is dropped).
 * Verification is offered only between contacts: a VERIFY from a stranger is refused.
 */
import { decodeVerifyMessage, VerifyKind, VerifySession } from '../codes/verify.js';
import { fingerprintFromHex } from '../identity/certificate.js';
import type { Client as ClientMachine } from '../client/index.js';
import type { Random } from '../core/types.js';
import { UsageError } from '../core/errors.js';

export const VERIFY_SESSIONS_MAX = 64;

export type VerifyNotice =
  | { type: 'verify-started'; contact: string; fingerprint: string; role: 'initiator' | 'responder' }
  | { type: 'verify-code'; contact: string; fingerprint: string; code: string; role: 'initiator' | 'responder' }
  | { type: 'verify-failed'; contact: string; fingerprint: string; reason: string }
  | { type: 'verify-done'; contact: string; fingerprint: string; verified: boolean };

export class VerifyManager {
  private readonly sessions = new Map<string, { s: VerifySession; role: 'initiator' | 'responder' }>();

  constructor(
    private readonly client: ClientMachine,
    private readonly random: Random,
    private readonly notify: (n: VerifyNotice) => void,
  ) {}

  private contactOf(ref: string): { petname: string; fingerprint: string } {
    const c = this.client.contacts().find((x) => x.petname === ref || x.fingerprint === ref || `${x.fingerprint}@${x.peer}` === ref);
    if (!c) throw new UsageError('PEERPOST_UNKNOWN_CONTACT', `no contact "${ref}"; add it first with contacts add`);
    return c;
  }

  private remember(fp: string, entry: { s: VerifySession; role: 'initiator' | 'responder' }): void {
    this.sessions.delete(fp);
    if (this.sessions.size >= VERIFY_SESSIONS_MAX) {
      const oldest = this.sessions.keys().next().value;
      if (oldest !== undefined) this.sessions.delete(oldest);
    }
    this.sessions.set(fp, entry);
  }

  /** Start a live check with a contact (who must be online with a running client). */
  start(now: number, ref: string): void {
    const c = this.contactOf(ref);
    const s = new VerifySession(this.myFp(), fingerprintFromHex(c.fingerprint)!, 'initiator', this.random);
    this.remember(c.fingerprint, { s, role: 'initiator' });
    this.client.sendVerify(now, c.fingerprint, s.start());
    this.notify({ type: 'verify-started', contact: c.petname, fingerprint: c.fingerprint, role: 'initiator' });
  }

  /** The users compared the codes: record the outcome in the contact. */
  confirm(now: number, ref: string, match: boolean): void {
    const c = this.contactOf(ref);
    const e = this.sessions.get(c.fingerprint);
    if (!e || e.s.state !== 'compare') {
      throw new UsageError('PEERPOST_NO_VERIFICATION', `no code from a live check with "${c.petname}" is waiting for confirmation`);
    }
    e.s.confirm(match);
    this.client.setVerification(now, c.fingerprint, match ? 'verified' : 'mismatch');
    this.sessions.delete(c.fingerprint);
    this.notify({ type: 'verify-done', contact: c.petname, fingerprint: c.fingerprint, verified: match });
  }

  /** A VERIFY body arrived from `from` (hex fingerprint). */
  receive(now: number, from: string, body: Uint8Array): void {
    const c = this.client.contacts().find((x) => x.fingerprint === from);
    if (!c) {
      this.notify({ type: 'verify-failed', contact: from.slice(0, 12), fingerprint: from, reason: 'not a contact' });
      return;
    }
    const d = decodeVerifyMessage(body);
    if (!d.ok) {
      this.notify({ type: 'verify-failed', contact: c.petname, fingerprint: from, reason: d.reason });
      return;
    }
    let e = this.sessions.get(from);
    if (d.msg.kind === VerifyKind.COMMIT && (!e || e.role === 'responder' || e.s.state === 'failed')) {
      const s = new VerifySession(this.myFp(), fingerprintFromHex(from)!, 'responder', this.random);
      e = { s, role: 'responder' };
      this.remember(from, e);
      this.notify({ type: 'verify-started', contact: c.petname, fingerprint: from, role: 'responder' });
    }
    if (!e) {
      this.notify({ type: 'verify-failed', contact: c.petname, fingerprint: from, reason: 'no live check in progress' });
      return;
    }
    const r = e.s.receive(body);
    if (!r.ok) {
      if (r.reason !== 'replayed') this.notify({ type: 'verify-failed', contact: c.petname, fingerprint: from, reason: r.reason });
      return;
    }
    if (r.reply) this.client.sendVerify(now, from, r.reply);
    if (r.code) this.notify({ type: 'verify-code', contact: c.petname, fingerprint: from, code: r.code, role: e.role });
  }

  private myFp(): Uint8Array {
    return fingerprintFromHex(this.client.fingerprint)!;
  }
}
