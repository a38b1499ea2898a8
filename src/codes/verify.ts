/**
 * The live verification of a pair of identities: a commit-then-reveal exchange of nonces (as in
 * ZRTP's hash commitment, RFC 6189 section 4.4.1.1, and Bluetooth numeric comparison) ending in a
 * 6-digit code that both users compare. SHA-256 (FIPS 180-4) for the commitment and the code; CBOR
 * (RFC 8949, the subset of src/protocol/cbor.ts) for the three bodies, which the client carries
 * inside sealed messages:
 *   initiator -> responder  COMMIT [1, sessionId(16), SHA-256("peerpost/1 verify-commit" || nI || fpI || fpR)]
 *   responder -> initiator  NONCE  [2, sessionId, nR(32)]
 *   initiator -> responder  OPEN   [3, sessionId, nI(32)]
 *   code = 6 digits of SHA-256("peerpost/1 verify-code" || nI || nR || fpI || fpR)
 *   either  -> other         ANSWER [4, sessionId, 1 if the user said the codes match, else 0]
 * Each side sends its user's ANSWER, so the check is two-sided: a "no" on either side is a
 * mismatch on both (a side that said yes first learns the other's no and records a mismatch).
 * The initiator is bound to nI before it sees nR, and the responder sends nR before it sees nI, so
 * a man in the middle running one session with each side cannot steer the two codes to be equal:
 * each attempt succeeds with probability 1e-6, and a failed one shows different codes.
 * A VerifySession is a pure state machine; randomness comes from the injected Random.
 */
import { hash } from 'node:crypto';
import { PeerpostError } from '../core/errors.js';
import type { Random } from '../core/types.js';
import { cborDecodeChecked, cborEncode } from '../protocol/cbor.js';
import { FINGERPRINT_BYTES } from '../protocol/constants.js';

export const VerifyKind = { COMMIT: 1, NONCE: 2, OPEN: 3, ANSWER: 4 } as const;
export type VerifyKind = (typeof VerifyKind)[keyof typeof VerifyKind];

export const VERIFY_SESSION_ID_BYTES = 16;
export const VERIFY_NONCE_BYTES = 32;
export const VERIFY_COMMIT_BYTES = 32;
export const VERIFY_CODE_DIGITS = 6;
export const LABEL_VERIFY_COMMIT = 'peerpost/1 verify-commit';
export const LABEL_VERIFY_CODE = 'peerpost/1 verify-code';

export type VerifyMessage =
  | { kind: typeof VerifyKind.COMMIT; sessionId: Uint8Array; commit: Uint8Array }
  | { kind: typeof VerifyKind.NONCE; sessionId: Uint8Array; nonce: Uint8Array }
  | { kind: typeof VerifyKind.OPEN; sessionId: Uint8Array; nonce: Uint8Array }
  | { kind: typeof VerifyKind.ANSWER; sessionId: Uint8Array; match: boolean };

export type VerifyDecodeReason = 'bad_cbor' | 'bad_shape' | 'unknown_kind';

/** Why a VerifySession refused a body. Every reason but 'replayed' and 'finished' fails the session. */
export type VerifyRefusal =
  | 'malformed' | 'replayed' | 'out_of_order' | 'wrong_session' | 'bad_commitment' | 'session_failed' | 'finished';

export type VerifyState = 'idle' | 'committed' | 'awaiting_open' | 'compare' | 'confirmed' | 'failed';

export type VerifyRole = 'initiator' | 'responder';

const COMMIT_LABEL = Buffer.from(LABEL_VERIFY_COMMIT, 'ascii');
const CODE_LABEL = Buffer.from(LABEL_VERIFY_CODE, 'ascii');
const CODE_MODULUS = 10n ** BigInt(VERIFY_CODE_DIGITS);

export function encodeVerifyMessage(m: VerifyMessage): Uint8Array {
  if (m.kind === VerifyKind.ANSWER) {
    if (m.sessionId.length !== VERIFY_SESSION_ID_BYTES || typeof m.match !== 'boolean') throw new RangeError('verify answer of the wrong shape');
    return cborEncode([m.kind, m.sessionId, m.match ? 1 : 0]);
  }
  const value = m.kind === VerifyKind.COMMIT ? m.commit : m.nonce;
  const want = m.kind === VerifyKind.COMMIT ? VERIFY_COMMIT_BYTES : VERIFY_NONCE_BYTES;
  if (m.sessionId.length !== VERIFY_SESSION_ID_BYTES || value.length !== want) throw new RangeError('verify message field of the wrong length');
  return cborEncode([m.kind, m.sessionId, value]);
}

/** Decode a verification body. Never throws. */
export function decodeVerifyMessage(bytes: Uint8Array): { ok: true; msg: VerifyMessage } | { ok: false; reason: VerifyDecodeReason } {
  if (!(bytes instanceof Uint8Array)) return { ok: false, reason: 'bad_cbor' };
  const d = cborDecodeChecked(bytes);
  if (!d.ok) return { ok: false, reason: 'bad_cbor' };
  if (!Array.isArray(d.value) || d.value.length !== 3) return { ok: false, reason: 'bad_shape' };
  const [kind, sessionId, value] = d.value as unknown[];
  if (typeof kind !== 'number') return { ok: false, reason: 'bad_shape' };
  if (!(sessionId instanceof Uint8Array) || sessionId.length !== VERIFY_SESSION_ID_BYTES) return { ok: false, reason: 'bad_shape' };
  if (kind === VerifyKind.ANSWER) {
    if (value !== 0 && value !== 1) return { ok: false, reason: 'bad_shape' };
    return { ok: true, msg: { kind, sessionId: new Uint8Array(sessionId), match: value === 1 } };
  }
  if (!(value instanceof Uint8Array) || value.length !== 32) return { ok: false, reason: 'bad_shape' };
  const sid = new Uint8Array(sessionId);
  const v = new Uint8Array(value);
  switch (kind) {
    case VerifyKind.COMMIT:
      return { ok: true, msg: { kind, sessionId: sid, commit: v } };
    case VerifyKind.NONCE:
    case VerifyKind.OPEN:
      return { ok: true, msg: { kind, sessionId: sid, nonce: v } };
    default:
      return { ok: false, reason: 'unknown_kind' };
  }
}

/** SHA-256("peerpost/1 verify-commit" || nI || fpI || fpR). */
export function verifyCommitment(initiatorNonce: Uint8Array, initiatorFp: Uint8Array, responderFp: Uint8Array): Uint8Array {
  return new Uint8Array(hash('sha256', Buffer.concat([COMMIT_LABEL, initiatorNonce, initiatorFp, responderFp]), 'buffer'));
}

/** Six digits: the first 8 bytes of SHA-256("peerpost/1 verify-code" || nI || nR || fpI || fpR), big-endian, mod 10^6. */
export function verifyCode(initiatorNonce: Uint8Array, responderNonce: Uint8Array, initiatorFp: Uint8Array, responderFp: Uint8Array): string {
  const h = hash('sha256', Buffer.concat([CODE_LABEL, initiatorNonce, responderNonce, initiatorFp, responderFp]), 'buffer');
  return (h.readBigUInt64BE(0) % CODE_MODULUS).toString().padStart(VERIFY_CODE_DIGITS, '0');
}

export type VerifyReceive = { ok: true; reply?: Uint8Array; code?: string; answer?: boolean } | { ok: false; reason: VerifyRefusal };

function equalBytes(a: Uint8Array, b: Uint8Array): boolean {
  return Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(b);
}

/** One live verification between this identity and another, as initiator or responder. */
export class VerifySession {
  private st: VerifyState = 'idle';
  private sid: Uint8Array | undefined;
  private myNonce: Uint8Array | undefined;
  private theirCommit: Uint8Array | undefined;
  private shown: string | undefined;
  private why: VerifyRefusal | 'codes_differ' | undefined;
  private mine: boolean | undefined;
  private theirs: boolean | undefined;
  /** Bodies accepted so far (at most two), to tell a duplicate from an attack. */
  private readonly accepted: Uint8Array[] = [];

  constructor(
    readonly myFingerprint: Uint8Array,
    readonly theirFingerprint: Uint8Array,
    readonly role: VerifyRole,
    private readonly random: Random,
  ) {
    for (const [fp, name] of [[myFingerprint, 'myFingerprint'], [theirFingerprint, 'theirFingerprint']] as const) {
      if (!(fp instanceof Uint8Array) || fp.length !== FINGERPRINT_BYTES) {
        throw new PeerpostError('PEERPOST_VERIFY_BAD_INPUT', `${name} must be ${FINGERPRINT_BYTES} bytes`);
      }
    }
    if (role !== 'initiator' && role !== 'responder') throw new PeerpostError('PEERPOST_VERIFY_BAD_INPUT', 'role must be initiator or responder');
  }

  get state(): VerifyState {
    return this.st;
  }
  /** The code to show the user, once the exchange is complete. */
  get code(): string | undefined {
    return this.shown;
  }
  get sessionId(): Uint8Array | undefined {
    return this.sid;
  }
  /** What this side's user answered (confirm()), if they did. */
  get myAnswer(): boolean | undefined {
    return this.mine;
  }
  /** What the other side's user answered (their ANSWER), if it arrived. */
  get theirAnswer(): boolean | undefined {
    return this.theirs;
  }
  /** Why the session failed, if it did. */
  get failure(): VerifyRefusal | 'codes_differ' | undefined {
    return this.why;
  }

  private draw(n: number): Uint8Array {
    const b = this.random(n);
    if (!(b instanceof Uint8Array) || b.length !== n) throw new PeerpostError('PEERPOST_VERIFY_BAD_INPUT', 'random must return the requested number of bytes');
    return b;
  }

  private fpI(): Uint8Array {
    return this.role === 'initiator' ? this.myFingerprint : this.theirFingerprint;
  }
  private fpR(): Uint8Array {
    return this.role === 'initiator' ? this.theirFingerprint : this.myFingerprint;
  }

  /** Initiator only, once: the COMMIT body to send. */
  start(): Uint8Array {
    if (this.role !== 'initiator' || this.st !== 'idle') throw new PeerpostError('PEERPOST_VERIFY_STATE', `start() needs an idle initiator (role ${this.role}, state ${this.st})`);
    this.sid = this.draw(VERIFY_SESSION_ID_BYTES);
    this.myNonce = this.draw(VERIFY_NONCE_BYTES);
    this.st = 'committed';
    const commit = verifyCommitment(this.myNonce, this.myFingerprint, this.theirFingerprint);
    return encodeVerifyMessage({ kind: VerifyKind.COMMIT, sessionId: this.sid, commit });
  }

  private fail(reason: VerifyRefusal | 'codes_differ'): { ok: false; reason: VerifyRefusal } {
    this.st = 'failed';
    this.why = reason;
    return { ok: false, reason: reason === 'codes_differ' ? 'session_failed' : reason };
  }

  /** Take a body from the other side. Never throws. */
  receive(body: Uint8Array): VerifyReceive {
    const answer = body instanceof Uint8Array ? decodeVerifyMessage(body) : undefined;
    if (answer?.ok && answer.msg.kind === VerifyKind.ANSWER) return this.receiveAnswer(answer.msg.sessionId, answer.msg.match);
    if (this.st === 'failed') return { ok: false, reason: 'session_failed' };
    if (this.accepted.some((a) => body instanceof Uint8Array && equalBytes(a, body))) return { ok: false, reason: 'replayed' };
    if (this.st === 'confirmed') return { ok: false, reason: 'finished' };
    const d = decodeVerifyMessage(body);
    if (!d.ok) return this.fail('malformed');
    const m = d.msg;
    if (this.role === 'responder' && this.st === 'idle' && m.kind === VerifyKind.COMMIT) {
      this.sid = m.sessionId;
      this.theirCommit = m.commit;
      this.myNonce = this.draw(VERIFY_NONCE_BYTES);
      this.st = 'awaiting_open';
      this.accepted.push(new Uint8Array(body));
      return { ok: true, reply: encodeVerifyMessage({ kind: VerifyKind.NONCE, sessionId: m.sessionId, nonce: this.myNonce }) };
    }
    const expected = this.role === 'initiator' ? (this.st === 'committed' ? VerifyKind.NONCE : undefined) : this.st === 'awaiting_open' ? VerifyKind.OPEN : undefined;
    if (m.kind !== expected) return this.fail('out_of_order');
    if (!this.sid || !equalBytes(this.sid, m.sessionId)) return this.fail('wrong_session');
    if (m.kind === VerifyKind.NONCE) {
      this.shown = verifyCode(this.myNonce!, m.nonce, this.fpI(), this.fpR());
      this.st = 'compare';
      this.accepted.push(new Uint8Array(body));
      return { ok: true, reply: encodeVerifyMessage({ kind: VerifyKind.OPEN, sessionId: this.sid, nonce: this.myNonce! }), code: this.shown };
    }
    if (m.kind !== VerifyKind.OPEN || !equalBytes(verifyCommitment(m.nonce, this.fpI(), this.fpR()), this.theirCommit!)) {
      return this.fail('bad_commitment');
    }
    this.shown = verifyCode(m.nonce, this.myNonce!, this.fpI(), this.fpR());
    this.st = 'compare';
    this.accepted.push(new Uint8Array(body));
    return { ok: true, code: this.shown };
  }

  /**
   * The other side's ANSWER: accepted once the codes are shown (state compare, or after this side's
   * own answer). It does not fail the session (the codes were shown); the caller records the pair
   * as a mismatch when either answer is no.
   */
  private receiveAnswer(sid: Uint8Array, match: boolean): VerifyReceive {
    const shown = this.st === 'compare' || this.st === 'confirmed' || (this.st === 'failed' && this.why === 'codes_differ');
    if (!shown) return this.st === 'failed' ? { ok: false, reason: 'session_failed' } : this.fail('out_of_order');
    if (!this.sid || !equalBytes(this.sid, sid)) return { ok: false, reason: 'wrong_session' };
    if (this.theirs !== undefined) return { ok: false, reason: this.theirs === match ? 'replayed' : 'finished' };
    this.theirs = match;
    return { ok: true, answer: match };
  }

  /**
   * Record what this side's user said after comparing codes: equal (confirmed) or different
   * (failed). Returns the ANSWER body to send to the other side.
   */
  confirm(codesMatch: boolean): Uint8Array {
    if (this.st !== 'compare') throw new PeerpostError('PEERPOST_VERIFY_STATE', `nothing to confirm in state ${this.st}`);
    this.mine = codesMatch;
    if (codesMatch) this.st = 'confirmed';
    else this.fail('codes_differ');
    return encodeVerifyMessage({ kind: VerifyKind.ANSWER, sessionId: this.sid!, match: codesMatch });
  }

  /** Both answers combined: 'mismatch' when either side said no, 'verified' when this side said yes and the other did not say no. */
  get outcome(): 'verified' | 'mismatch' | undefined {
    if (this.mine === false || this.theirs === false) return 'mismatch';
    return this.mine === true ? 'verified' : undefined;
  }
}
