/**
 * Live safety-code checks (src/codes/verify.ts) carried over a client's sealed VERIFY messages.
 * One session per contact fingerprint, at most VERIFY_SESSIONS_MAX (the oldest is dropped).
 * Verification is offered only between contacts: a VERIFY from a stranger is refused (and not
 * answered: an answer would tell a stranger that this client is online).
 * Two-sided: each side sends its user's answer; a "no" on either side is recorded as a mismatch on
 * both, and a side that said yes first is told (verify-answer, then verify-done with verified false).
 * The ids of the VERIFY messages are kept (INTERNAL_IDS_MAX, oldest forgotten) so that their
 * delivery states are not shown as the user's messages.
 */
import { decodeVerifyMessage, VerifyKind, VerifySession } from '../codes/verify.js';
import { fingerprintFromHex } from '../identity/certificate.js';
import type { Client as ClientMachine } from '../client/index.js';
import type { Random } from '../core/types.js';
import { UsageError } from '../core/errors.js';

export const VERIFY_SESSIONS_MAX = 64;
/** Ids of sent VERIFY messages remembered to hide their delivery states; the oldest is forgotten. */
export const INTERNAL_IDS_MAX = 1024;

export type VerifyNotice =
  | { type: 'verify-started'; contact: string; fingerprint: string; role: 'initiator' | 'responder' }
  | { type: 'verify-code'; contact: string; fingerprint: string; code: string; role: 'initiator' | 'responder' }
  | { type: 'verify-failed'; contact: string; fingerprint: string; reason: string }
  | { type: 'verify-answer'; contact: string; fingerprint: string; match: boolean }
  | { type: 'verify-done'; contact: string; fingerprint: string; verified: boolean; theirAnswer?: boolean; by?: 'me' | 'them' };

export class VerifyManager {
  private readonly sessions = new Map<string, { s: VerifySession; role: 'initiator' | 'responder' }>();
  private readonly internal = new Set<string>();

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

  /** True for the id of a VERIFY message this manager sent. */
  isInternal(id: string): boolean {
    return this.internal.has(id);
  }

  private sendVerify(now: number, fp: string, body: Uint8Array): void {
    const id = this.client.sendVerify(now, fp, body);
    this.internal.add(id);
    if (this.internal.size > INTERNAL_IDS_MAX) this.internal.delete(this.internal.values().next().value!);
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
    this.sendVerify(now, c.fingerprint, s.start());
    this.notify({ type: 'verify-started', contact: c.petname, fingerprint: c.fingerprint, role: 'initiator' });
  }

  /** The users compared the codes: record the outcome in the contact. */
  confirm(now: number, ref: string, match: boolean): void {
    const c = this.contactOf(ref);
    const e = this.sessions.get(c.fingerprint);
    if (!e || e.s.state !== 'compare') {
      throw new UsageError('PEERPOST_NO_VERIFICATION', `no code from a live check with "${c.petname}" is waiting for confirmation`);
    }
    const answer = e.s.confirm(match);
    this.sendVerify(now, c.fingerprint, answer);
    const outcome = e.s.outcome ?? 'mismatch';
    this.client.setVerification(now, c.fingerprint, outcome);
    // The session stays (bounded by VERIFY_SESSIONS_MAX) to take the other side's answer.
    const theirs = e.s.theirAnswer;
    this.notify({
      type: 'verify-done', contact: c.petname, fingerprint: c.fingerprint, verified: outcome === 'verified',
      ...(theirs !== undefined ? { theirAnswer: theirs } : {}), by: match ? 'them' : 'me',
    });
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
    if (d.msg.kind === VerifyKind.COMMIT && (!e || e.role === 'responder' || e.s.state === 'failed' || e.s.state === 'confirmed')) {
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
    if (r.answer !== undefined) return this.theirAnswer(now, c, e.s, r.answer);
    if (r.reply) this.sendVerify(now, from, r.reply);
    if (r.code) this.notify({ type: 'verify-code', contact: c.petname, fingerprint: from, code: r.code, role: e.role });
  }

  /** The other side's user answered: a no makes the pair a mismatch here too. */
  private theirAnswer(now: number, c: { petname: string; fingerprint: string }, s: VerifySession, match: boolean): void {
    this.notify({ type: 'verify-answer', contact: c.petname, fingerprint: c.fingerprint, match });
    if (s.myAnswer === undefined) {
      if (!match) this.client.setVerification(now, c.fingerprint, 'mismatch');
      return;
    }
    this.sessions.delete(c.fingerprint);
    if (!match) {
      this.client.setVerification(now, c.fingerprint, 'mismatch');
      if (s.myAnswer) this.notify({ type: 'verify-done', contact: c.petname, fingerprint: c.fingerprint, verified: false, theirAnswer: false, by: 'them' });
    }
  }

  private myFp(): Uint8Array {
    return fingerprintFromHex(this.client.fingerprint)!;
  }
}
