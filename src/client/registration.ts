/**
 * Registration with one of our peers (one instance per home peer, each with its own session), and
 * keepalives while registered. REGISTER carries our
 * certificate and a fresh nonce; the peer answers a CHALLENGE naming that nonce, with a cookie and
 * its handshake key for this epoch, signed by its certificate key. We check the signature, pin the
 * peer's fingerprint (first registration) or refuse another one (`peer-identity-changed`, blocked
 * until acceptPeerIdentity()), make a fresh X25519 key, derive the session (src/crypto/session.ts)
 * and send REGISTER_PROOF with our delivery key sealed in it, signed by us. The peer answers OK in
 * the new session (counter 0, naming our nonce): only the holder of the handshake key can make it,
 * so it authenticates the peer. From then on KEEPALIVE, POLL, ACK and DIR_JOIN go inside the
 * session, and only the peer's authenticated SESSION datagrams are taken from it.
 * REGISTER_AGAIN naming our session id, or keepaliveMissesBeforeReregister unanswered keepalives
 * in a row that asked for an answer, start it over.
 *
 * Timers:
 *   register   REGISTER again after registerInitialMs, doubling to registerRetryMaxMs
 *              (`peer-unavailable` once after registerTriesBeforeUnavailable tries); after a
 *              REGISTER_PROOF without answer, the same proof again after registerInitialMs,
 *              PROOF_SENDS_MAX times in all (the peer answers a repeated proof with the same OK);
 *              after an ERROR to the registration, the next REGISTER comes registerInitialMs
 *              later at the latest
 *   keepalive  KEEPALIVE every 80 to 100% of keepaliveIntervalMs (jitter downward only, so the
 *              default 25 s stays below the common 30 s NAT timeout; 0: none). Every
 *              keepaliveAnswerEvery-th one asks for an OK; after an unanswered one, the next comes
 *              after a quarter of the interval and asks again
 */
import { MsgType, WIRE_ERROR_NAMES } from '../protocol/constants.js';
import { encode } from '../protocol/codec.js';
import type { ChallengeMsg, ErrorMsg, SessionInner, SessionMsg } from '../protocol/messages.js';
import { checkCertificate, verifyWith } from '../identity/certificate.js';
import { ReplayWindow, peerKeySigned, registerProof, sessionTagOk, type SessionKeys } from '../crypto/session.js';
import { UsageError } from '../core/errors.js';
import { addrKey, type Addr } from '../core/types.js';
import { hex, type ClientContext, type ClientSession } from './context.js';
import type { PeerLinks } from './peer-links.js';

type RegState = 'idle' | 'challenge' | 'proof' | 'registered' | 'blocked';

/** Transmissions of one REGISTER_PROOF (its cookie lives 2 to 4 minutes); then registration starts over. */
export const PROOF_SENDS_MAX = 3;

export class Registration {
  private reg: {
    state: RegState; nonce?: Uint8Array; tries: number; deadline?: number; unavailableSent: boolean; pendingPin?: string;
    /** The session our REGISTER_PROOF set up, until its OK arrives. */
    pending?: SessionKeys;
    /** That REGISTER_PROOF, sent again (up to PROOF_SENDS_MAX times) while its OK does not come. */
    proof?: Uint8Array;
    proofSends: number;
  } = { state: 'idle', tries: 0, unavailableSent: false, proofSends: 0 };
  /** Counter of the last datagram of our peer that authenticated. */
  private lastRx = 0;
  /** Keepalive state: `outstanding` is the counter of the last KEEPALIVE that asked for an answer, not yet answered. */
  private keepalive: { deadline?: number; outstanding?: number; misses: number; sent: number } = { misses: 0, sent: 0 };

  readonly key: string;

  constructor(private readonly ctx: ClientContext, private readonly links: PeerLinks, readonly addr: Addr) {
    this.key = addrKey(addr);
  }

  /** Our session with this peer, while registered. */
  private get session(): ClientSession | undefined {
    return this.ctx.sessions.get(this.key);
  }

  /** Stop: no more datagrams to this peer (it was taken off our list). */
  stop(): void {
    this.ctx.sessions.delete(this.key);
    this.reg = { state: 'idle', tries: 0, unavailableSent: false, proofSends: 0 };
    this.keepalive = { misses: 0, sent: 0 };
  }

  /** Blocked by a changed identity of this peer, waiting for acceptPeerIdentity(). */
  get blocked(): boolean {
    return this.reg.state === 'blocked';
  }

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
    this.keepalive = { misses: 0, sent: 0 };
    this.ctx.sessions.delete(this.key);
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
    this.pin(this.reg.pendingPin);
    this.reg.state = 'idle';
    this.start(now);
  }

  /** Whether a CHALLENGE from our own peer answers our REGISTER (it names the nonce we wait with). */
  isRegistrationChallenge(m: ChallengeMsg): boolean {
    const nonce = this.reg.nonce;
    return !!nonce && this.reg.state === 'challenge' && Buffer.from(nonce).equals(m.nonce);
  }

  onChallenge(now: number, m: ChallengeMsg): void {
    const r = this.reg;
    const check = checkCertificate(m.peerCert, now);
    if (!check.ok || !r.nonce) {
      this.ctx.drops.add('bad_peer_certificate');
      return;
    }
    if (!verifyWith(check.publicKey, peerKeySigned(m.peerKey), m.keySig)) {
      this.ctx.drops.add('bad_challenge_signature');
      return;
    }
    if (!this.pinPeer(hex(check.fingerprint))) return;
    const proof = registerProof({
      cert: this.ctx.identity.cert, fingerprint: this.ctx.identity.fingerprint, sign: (d) => this.ctx.identity.sign(d),
      peerFingerprint: check.fingerprint, nonce: r.nonce, cookie: m.cookie, peerKey: m.peerKey, deliveryKey: this.ctx.deliveryKey(),
      secret: this.ctx.random(32),
    });
    if (!proof) {
      this.ctx.drops.add('bad_peer_key');
      return;
    }
    this.links.use(now, this.key).cookie = { bytes: m.cookie, atMs: now };
    r.proof = encode(proof.msg);
    r.proofSends = 1;
    this.ctx.out.push({ to: this.addr, data: r.proof });
    const keys = proof.keys;
    r.pending = keys;
    r.state = 'proof';
    // The peer answers: only a lost PROOF or OK stands between us, so retry at the first pace.
    r.tries = 0;
    r.deadline = now + this.ctx.o.registerInitialMs;
  }

  /** Whether `sid` is our session's or the one our proof is setting up. */
  ownsSession(sid: Uint8Array): boolean {
    const cur = this.session?.id, pend = this.reg.pending?.sessionId;
    return (!!cur && Buffer.from(cur).equals(sid)) || (!!pend && Buffer.from(pend).equals(sid));
  }

  /**
   * A SESSION datagram from our own peer. Returns its inner message when it authenticates in our
   * session (the registration's OK is taken here), undefined when it is dropped (counted).
   */
  onSession(now: number, m: SessionMsg): SessionInner | undefined {
    const r = this.reg;
    const pend = r.pending;
    if (pend && r.state === 'proof' && Buffer.from(pend.sessionId).equals(m.sessionId)) {
      const ok = m.counter === 0 && m.inner.type === MsgType.OK && r.nonce && Buffer.from(r.nonce).equals(m.inner.ref);
      if (!ok || !sessionTagOk(pend.p2c, m)) return void this.ctx.drops.add('bad_registration_ok');
      const rx = new ReplayWindow();
      rx.commit(0);
      this.ctx.sessions.set(this.key, { id: pend.sessionId, idKey: Buffer.from(pend.sessionId).toString('latin1'), c2p: pend.c2p, p2c: pend.p2c, tx: 0, rx });
      delete r.pending;
      delete r.proof;
      r.state = 'registered';
      r.tries = 0;
      r.unavailableSent = false;
      delete r.deadline;
      this.keepalive = { misses: 0, sent: 0 };
      this.scheduleKeepalive(now);
      this.ctx.emit({ type: 'registered', peer: this.key });
      return undefined;
    }
    const ss = this.session;
    if (!ss || !Buffer.from(ss.id).equals(m.sessionId)) return void this.ctx.drops.add('unknown_session');
    if (!ss.rx.check(m.counter)) return void this.ctx.drops.add('session_replay');
    if (!sessionTagOk(ss.p2c, m)) return void this.ctx.drops.add('bad_session_tag');
    ss.rx.commit(m.counter);
    this.lastRx = m.counter;
    if (m.inner.type === MsgType.OK) this.onOk(m.inner.ref);
    return m.inner as SessionInner; // the codec lets only SESSION_INNER_TYPES in
  }

  /** The 8 bytes of the counter of the last datagram our peer sent in our session (a ref for our answer). */
  lastPeerCounter(): Uint8Array {
    const out = new Uint8Array(8);
    const c = this.lastRx;
    new DataView(out.buffer).setUint32(0, Math.floor(c / 0x1_0000_0000));
    new DataView(out.buffer).setUint32(4, c % 0x1_0000_0000);
    return out;
  }

  /** An OK in our session: the answer to a keepalive that asked for one (its counter is the ref). */
  private onOk(ref: Uint8Array): void {
    const k = this.keepalive;
    if (k.outstanding === undefined || ref.length !== 8) return;
    const counter = Buffer.from(ref).readUIntBE(2, 6) + Buffer.from(ref).readUInt16BE(0) * 2 ** 48;
    if (counter < k.outstanding) return;
    delete k.outstanding;
    k.misses = 0;
  }

  /** Our peer lost our session (REGISTER_AGAIN naming its id). */
  onRegisterAgain(now: number, sid: Uint8Array): void {
    if (!this.ownsSession(sid)) return void this.ctx.drops.add('register_again_other_session');
    if (this.reg.state !== 'blocked' && this.reg.state !== 'challenge') this.start(now);
  }

  /**
   * An ERROR from our own peer: one without a reference while registering answers the
   * registration (counted; the next try comes at the first pace at the latest). True if it was.
   */
  onError(now: number, e: ErrorMsg): boolean {
    if (e.ref.length !== 0 || (this.reg.state !== 'proof' && this.reg.state !== 'challenge')) return false;
    this.ctx.drops.add(`register_error_${WIRE_ERROR_NAMES[e.code] ?? e.code}`);
    delete this.reg.proof; // refused: the next try starts over with a new REGISTER
    if (this.reg.deadline !== undefined) this.reg.deadline = Math.min(this.reg.deadline, now + this.ctx.o.registerInitialMs);
    return true;
  }

  /** The fingerprint pinned for this peer: our first peer's in peerFingerprint, the others' in peerPins. */
  get pinned(): string | undefined {
    const s = this.ctx.s;
    // A store from before peerPins has only our first peer's pin.
    if (s.peerPins === undefined) return this.key === this.ctx.peerKey ? s.peerFingerprint : undefined;
    return s.peerPins[this.key];
  }

  private pin(fp: string): void {
    const s = this.ctx.s;
    if (this.key === this.ctx.peerKey) s.peerFingerprint = fp;
    (s.peerPins ??= {})[this.key] = fp;
    const keys = Object.keys(s.peerPins);
    // Pins of peers no longer on our list are kept (a peer may come back), at most peerLinksMax.
    for (let i = 0; i < keys.length - this.ctx.o.peerLinksMax; i++) if (!this.ctx.peerAddrs.has(keys[i]!)) delete s.peerPins[keys[i]!];
    this.ctx.dirty = true;
  }

  /** Pin the peer's fingerprint at the first registration; false (and blocked) if it changed. */
  private pinPeer(fp: string): boolean {
    const pinned = this.pinned;
    if (pinned === undefined) {
      this.pin(fp);
      // A new peer of ours is known now: the home a record announces has changed.
      this.ctx.emit({ type: 'home-changed', peers: [...this.ctx.peerAddrs.keys()] });
    } else if (pinned !== fp) {
      this.reg.state = 'blocked';
      this.reg.pendingPin = fp;
      delete this.reg.deadline;
      delete this.keepalive.deadline;
      this.ctx.emit({ type: 'peer-identity-changed', peer: this.key, expected: pinned, actual: fp });
      return false;
    } else if (this.ctx.s.peerPins?.[this.key] === undefined) {
      this.pin(fp);
    }
    return true;
  }

  private sendRegister(now: number): void {
    const r = this.reg;
    r.nonce = this.ctx.random(16);
    r.state = 'challenge';
    this.ctx.send(this.addr, { type: MsgType.REGISTER, cert: this.ctx.identity.cert, nonce: r.nonce });
    r.deadline = now + Math.min(this.ctx.o.registerRetryMaxMs, this.ctx.o.registerInitialMs * 2 ** Math.min(r.tries, 20));
  }

  private registerTimeout(now: number): void {
    const r = this.reg;
    if (r.state === 'proof' && r.proof && r.proofSends < PROOF_SENDS_MAX) {
      // Our proof or its OK was lost: the same proof again (the peer answers it with the same OK).
      r.proofSends++;
      this.ctx.out.push({ to: this.addr, data: r.proof });
      r.deadline = now + this.ctx.o.registerInitialMs;
      return;
    }
    r.tries++;
    if (r.tries >= this.ctx.o.registerTriesBeforeUnavailable && !r.unavailableSent) {
      r.unavailableSent = true;
      this.ctx.emit({ type: 'peer-unavailable', peer: this.key, tries: r.tries });
    }
    this.sendRegister(now);
  }

  /** Next keepalive in 80 to 100% of keepaliveIntervalMs; after an unanswered one, a quarter of that. */
  private scheduleKeepalive(now: number, probe = false): void {
    const base = probe ? Math.ceil(this.ctx.o.keepaliveIntervalMs / 4) : this.ctx.o.keepaliveIntervalMs;
    if (base === 0) {
      delete this.keepalive.deadline;
      return;
    }
    const r = this.ctx.random(2);
    const x = ((r[0]! << 8) | r[1]!) / 65535;
    this.keepalive.deadline = now + Math.round(base * (0.8 + 0.2 * x));
  }

  private keepaliveTimeout(now: number): void {
    const k = this.keepalive;
    const ss = this.session;
    if (this.reg.state !== 'registered' || !ss) {
      delete k.deadline;
      return;
    }
    const missed = k.outstanding !== undefined;
    if (missed) k.misses++;
    if (k.misses >= this.ctx.o.keepaliveMissesBeforeReregister) {
      delete k.deadline;
      this.start(now);
      return;
    }
    k.sent++;
    const answer = missed || (k.sent - 1) % this.ctx.o.keepaliveAnswerEvery === 0;
    this.ctx.sendToPeer({ type: MsgType.KEEPALIVE, answer }, this.key);
    if (answer) k.outstanding = ss.tx;
    this.scheduleKeepalive(now, missed);
  }
}
