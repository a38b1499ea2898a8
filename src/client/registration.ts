/**
 * Registration with our own peer, and keepalives while registered. REGISTER carries our
 * certificate and a fresh nonce; the peer answers a CHALLENGE signed over the nonce and a cookie;
 * REGISTER_PROOF, signed by us over the cookie, the peer's fingerprint and the nonce, is answered
 * OK. The peer's fingerprint is pinned at the first registration; a CHALLENGE from another identity
 * blocks registration (`peer-identity-changed`) until acceptPeerIdentity(). REGISTER_AGAIN from the
 * peer, or keepaliveMissesBeforeReregister unanswered keepalives in a row, start it over.
 *
 * Timers:
 *   register   REGISTER again after registerInitialMs, doubling to registerRetryMaxMs
 *              (`peer-unavailable` once after registerTriesBeforeUnavailable tries); after a
 *              REGISTER_PROOF, or an ERROR to the registration, the next REGISTER comes
 *              registerInitialMs later at the latest
 *   keepalive  KEEPALIVE every keepaliveIntervalMs +-20% (0: none); after an unanswered one, a
 *              quarter of that
 */
import { LABEL_REGISTER, MsgType, WIRE_ERROR_NAMES } from '../protocol/constants.js';
import type { ChallengeMsg, ErrorMsg } from '../protocol/messages.js';
import { checkCertificate, verifyWith } from '../identity/certificate.js';
import { UsageError } from '../core/errors.js';
import { hex, type ClientContext } from './context.js';
import { LABEL_CHALLENGE_BYTES, type PeerLinks } from './peer-links.js';

const LABEL_REGISTER_BYTES = Buffer.from(LABEL_REGISTER, 'ascii');

type RegState = 'idle' | 'challenge' | 'proof' | 'registered' | 'blocked';

export class Registration {
  private reg: { state: RegState; nonce?: Uint8Array; tries: number; deadline?: number; unavailableSent: boolean; pendingPin?: string } = {
    state: 'idle', tries: 0, unavailableSent: false,
  };
  private keepalive: { deadline?: number; outstanding: boolean; misses: number } = { outstanding: false, misses: 0 };

  constructor(private readonly ctx: ClientContext, private readonly links: PeerLinks) {}

  get registered(): boolean {
    return this.reg.state === 'registered';
  }

  /** The `register` and `keepalive` timers. */
  deadlines(): { register: number | undefined; keepalive: number | undefined } {
    return { register: this.reg.deadline, keepalive: this.keepalive.deadline };
  }

  /** Register (again) now, unless blocked by a changed peer identity. */
  start(now: number): void {
    if (this.reg.state === 'blocked') return;
    this.reg.state = 'challenge';
    this.reg.tries = 0;
    this.keepalive = { outstanding: false, misses: 0 };
    this.sendRegister(now);
  }

  handleTimeout(now: number): void {
    const r = this.reg;
    if (r.deadline !== undefined && r.deadline <= now) this.registerTimeout(now);
    const k = this.keepalive;
    if (k.deadline !== undefined && k.deadline <= now) this.keepaliveTimeout(now);
  }

  /** Accept the new identity of our own peer after a `peer-identity-changed` event. */
  acceptPeerIdentity(now: number): void {
    if (this.reg.state !== 'blocked' || !this.reg.pendingPin) throw new UsageError('PEERPOST_NO_IDENTITY_CHANGE', 'no changed peer identity is waiting for acceptance');
    this.ctx.s.peerFingerprint = this.reg.pendingPin;
    this.ctx.dirty = true;
    this.reg.state = 'idle';
    this.start(now);
  }

  /**
   * Whether a CHALLENGE from our own peer answers our REGISTER: one is waited for and its
   * signature covers the registration nonce.
   */
  isRegistrationChallenge(now: number, m: ChallengeMsg): boolean {
    const nonce = this.reg.nonce;
    if (!nonce || this.reg.state !== 'challenge') return false;
    const check = checkCertificate(m.peerCert, now);
    return check.ok && verifyWith(check.publicKey, Buffer.concat([LABEL_CHALLENGE_BYTES, nonce, m.cookie]), m.sig);
  }

  onChallenge(now: number, m: ChallengeMsg): void {
    const r = this.reg;
    const check = checkCertificate(m.peerCert, now);
    if (!check.ok || !r.nonce) {
      this.ctx.drops.add('bad_peer_certificate');
      return;
    }
    if (!verifyWith(check.publicKey, Buffer.concat([LABEL_CHALLENGE_BYTES, r.nonce, m.cookie]), m.sig)) {
      this.ctx.drops.add('bad_challenge_signature');
      return;
    }
    if (!this.pinPeer(hex(check.fingerprint))) return;
    this.links.use(now, this.ctx.peerKey).cookie = { bytes: m.cookie, atMs: now };
    const sig = this.ctx.identity.sign(Buffer.concat([LABEL_REGISTER_BYTES, m.cookie, check.fingerprint, r.nonce]));
    this.ctx.send(this.ctx.peerAddr, { type: MsgType.REGISTER_PROOF, cert: this.ctx.identity.cert, nonce: r.nonce, cookie: m.cookie, sig });
    r.state = 'proof';
    // The peer answers: only a lost PROOF or OK stands between us, so retry at the first pace.
    r.tries = 0;
    r.deadline = now + this.ctx.o.registerInitialMs;
  }

  onOk(now: number): void {
    const r = this.reg;
    if (r.state === 'proof') {
      r.state = 'registered';
      r.tries = 0;
      r.unavailableSent = false;
      delete r.deadline;
      this.keepalive = { outstanding: false, misses: 0 };
      this.scheduleKeepalive(now);
      this.ctx.emit({ type: 'registered', peer: this.ctx.peerKey });
    } else if (r.state === 'registered') {
      this.keepalive.outstanding = false;
      this.keepalive.misses = 0;
    }
  }

  /** Our peer lost our registration. */
  onRegisterAgain(now: number): void {
    if (this.reg.state !== 'blocked' && this.reg.state !== 'challenge') this.start(now);
  }

  /**
   * An ERROR from our own peer: one without a reference while registering answers the
   * registration (counted; the next try comes at the first pace at the latest). True if it was.
   */
  onError(now: number, e: ErrorMsg): boolean {
    if (e.ref.length !== 0 || (this.reg.state !== 'proof' && this.reg.state !== 'challenge')) return false;
    this.ctx.drops.add(`register_error_${WIRE_ERROR_NAMES[e.code] ?? e.code}`);
    if (this.reg.deadline !== undefined) this.reg.deadline = Math.min(this.reg.deadline, now + this.ctx.o.registerInitialMs);
    return true;
  }

  /** Pin the peer's fingerprint at the first registration; false (and blocked) if it changed. */
  private pinPeer(fp: string): boolean {
    const s = this.ctx.s;
    if (s.peerFingerprint === undefined) {
      s.peerFingerprint = fp;
      this.ctx.dirty = true;
    } else if (s.peerFingerprint !== fp) {
      this.reg.state = 'blocked';
      this.reg.pendingPin = fp;
      delete this.reg.deadline;
      delete this.keepalive.deadline;
      this.ctx.emit({ type: 'peer-identity-changed', peer: this.ctx.peerKey, expected: s.peerFingerprint, actual: fp });
      return false;
    }
    return true;
  }

  private sendRegister(now: number): void {
    const r = this.reg;
    r.nonce = this.ctx.random(16);
    r.state = 'challenge';
    this.ctx.send(this.ctx.peerAddr, { type: MsgType.REGISTER, cert: this.ctx.identity.cert, nonce: r.nonce });
    r.deadline = now + Math.min(this.ctx.o.registerRetryMaxMs, this.ctx.o.registerInitialMs * 2 ** Math.min(r.tries, 20));
  }

  private registerTimeout(now: number): void {
    const r = this.reg;
    r.tries++;
    if (r.tries >= this.ctx.o.registerTriesBeforeUnavailable && !r.unavailableSent) {
      r.unavailableSent = true;
      this.ctx.emit({ type: 'peer-unavailable', peer: this.ctx.peerKey, tries: r.tries });
    }
    this.sendRegister(now);
  }

  /** Next keepalive in keepaliveIntervalMs +-20%; after an unanswered one, a quarter of that. */
  private scheduleKeepalive(now: number, probe = false): void {
    const base = probe ? Math.ceil(this.ctx.o.keepaliveIntervalMs / 4) : this.ctx.o.keepaliveIntervalMs;
    if (base === 0) {
      delete this.keepalive.deadline;
      return;
    }
    const r = this.ctx.random(2);
    const x = ((r[0]! << 8) | r[1]!) / 65535;
    this.keepalive.deadline = now + Math.round(base * (0.8 + 0.4 * x));
  }

  private keepaliveTimeout(now: number): void {
    const k = this.keepalive;
    if (this.reg.state !== 'registered') {
      delete k.deadline;
      return;
    }
    if (k.outstanding) k.misses++;
    if (k.misses >= this.ctx.o.keepaliveMissesBeforeReregister) {
      delete k.deadline;
      this.start(now);
      return;
    }
    const probe = k.outstanding;
    k.outstanding = true;
    this.ctx.send(this.ctx.peerAddr, { type: MsgType.KEEPALIVE });
    this.scheduleKeepalive(now, probe);
  }
}
