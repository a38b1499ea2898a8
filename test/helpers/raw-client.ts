/**
 * A protocol-level test client: speaks the Root envelope with the codec and the session crypto and
 * nothing else. It is a sans-I/O machine (drive it with Link or UdpDriver): it registers (REGISTER,
 * checks the signed CHALLENGE, REGISTER_PROOF, the OK in the new session), asks for cookies
 * (HELLO), sends DELIVER, and sends KEEPALIVE, POLL and ACK inside its session.
 */
import { HELLO_MIN_BYTES, MsgType } from '../../src/protocol/constants.js';
import { decode, encode } from '../../src/protocol/codec.js';
import type { ChallengeMsg, ErrorMsg, Message, SessionInner } from '../../src/protocol/messages.js';
import { checkCertificate, fingerprintOf, toHex, verifyWith, type Identity } from '../../src/identity/certificate.js';
import {
  ReplayWindow, capabilityField, capabilityId, capabilityKey, peerKeySigned, registerProof, sealSession, sessionTagOk, type SessionKeys,
} from '../../src/crypto/session.js';
import { addrKey, type Addr, type Transmit } from '../../src/core/types.js';
import { randomBytes } from 'node:crypto';

export interface RawSession {
  keys: SessionKeys;
  nonce: Uint8Array;
  tx: number;
  rx: ReplayWindow;
}

export interface Received {
  from: Addr;
  msg: Message;
}

export class RawClient {
  /** Cookie per peer addrKey. */
  readonly cookies = new Map<string, Uint8Array>();
  /** Pinned peer fingerprint per peer addrKey (from a verified CHALLENGE). */
  readonly peerFingerprints = new Map<string, Uint8Array>();
  readonly inbox: Received[] = [];
  readonly pushes: Array<{ id: Uint8Array; blob: Uint8Array }> = [];
  /** RESULT statuses per message id (hex), in arrival order. */
  readonly results = new Map<string, number[]>();
  readonly errors: ErrorMsg[] = [];
  /** Answer every PUSH with an ACK. */
  autoAck = true;
  /** Register again on REGISTER_AGAIN. */
  autoReregister = false;
  registered = false;
  registerAgainCount = 0;
  /** Set when the last CHALLENGE signature did not verify. */
  badChallenge = false;
  /** The last REGISTER_PROOF sent (for replay tests). */
  lastProof: Uint8Array | undefined;
  /** The delivery key given to the peer at registration. */
  readonly deliveryKey = new Uint8Array(randomBytes(32));
  /** The current session (after the registration's OK), and the one being set up. */
  session: RawSession | undefined;
  pendingSession: RawSession | undefined;
  /** SESSION datagrams dropped because they did not authenticate. */
  badSession = 0;
  /** Answer the peer's KEEPALIVEs that ask for an answer (its path validation). */
  answerProbes = true;
  /** OK datagrams received in the session, in order (their refs). */
  readonly oks: Uint8Array[] = [];
  /** Called after every received datagram (tests wait on these instead of sleeping). */
  readonly listeners = new Set<() => void>();
  private home: Addr | undefined;
  private readonly pending = new Map<string, { nonce: Uint8Array; register: boolean }>();
  private out: Transmit[] = [];

  constructor(readonly identity: Identity) {}

  get fingerprint(): Uint8Array {
    return this.identity.fingerprint;
  }

  register(peer: Addr, padTo?: number): void {
    this.home = peer;
    this.registered = false;
    const nonce = randomBytes(16);
    this.pending.set(addrKey(peer), { nonce, register: true });
    this.send(peer, { type: MsgType.REGISTER, cert: this.identity.cert, nonce, padTo });
  }

  hello(peer: Addr, padTo = HELLO_MIN_BYTES): void {
    const nonce = randomBytes(16);
    if (!this.pending.has(addrKey(peer))) this.pending.set(addrKey(peer), { nonce, register: false });
    else this.pending.get(addrKey(peer))!.nonce = nonce;
    this.send(peer, { type: MsgType.HELLO, nonce, padTo });
  }

  /**
   * DELIVER with the cookie held for `peer`; returns the message id. `cap`: a capability the
   * recipient handed out ({capId, capKey}), see RawClient.capabilityFor.
   */
  deliver(peer: Addr, to: Uint8Array, blob: Uint8Array, id: Uint8Array = randomBytes(16), cap?: { capId: Uint8Array; capKey: Uint8Array }): Uint8Array {
    const cookie = this.cookies.get(addrKey(peer));
    if (!cookie) throw new Error(`no cookie for ${addrKey(peer)}: call hello() first`);
    const idb = new Uint8Array(id);
    const field = cap ? capabilityField(cap.capId, cap.capKey, to, idb) : undefined;
    this.send(peer, { type: MsgType.DELIVER, cookie, to, id: idb, blob, ...(field ? { cap: field } : {}) });
    return id;
  }

  /** The capability this client hands the holder of `contactFp` (what its client would send inside a sealed message). */
  capabilityFor(contactFp: Uint8Array): { capId: Uint8Array; capKey: Uint8Array } {
    const capId = capabilityId(this.deliveryKey, contactFp);
    return { capId, capKey: capabilityKey(this.deliveryKey, capId) };
  }

  keepalive(answer = true): void {
    this.sendSession({ type: MsgType.KEEPALIVE, answer });
  }

  poll(): void {
    this.sendSession({ type: MsgType.POLL });
  }

  ack(ids: Uint8Array[]): void {
    this.sendSession({ type: MsgType.ACK, ids });
  }

  /** A datagram in our session (it must exist: register first). */
  sendSession(inner: SessionInner, to: Addr = this.mustHome()): void {
    const ss = this.session;
    if (!ss) throw new Error('no session: register() first');
    ss.tx++;
    this.sendRaw(to, sealSession(ss.keys.c2p, ss.keys.sessionId, ss.tx, inner));
  }

  send(to: Addr, msg: Message): void {
    this.sendRaw(to, encode(msg));
  }

  sendRaw(to: Addr, data: Uint8Array): void {
    this.out.push({ to, data });
  }

  resultsOf(id: Uint8Array): number[] {
    return this.results.get(toHex(id)) ?? [];
  }

  lastOf<T extends Message['type']>(type: T): Extract<Message, { type: T }> | undefined {
    for (let i = this.inbox.length - 1; i >= 0; i--) {
      const m = this.inbox[i]!.msg;
      if (m.type === type) return m as Extract<Message, { type: T }>;
    }
    return undefined;
  }

  /** Resolve when `pred` holds after a received datagram; reject after `timeoutMs`. */
  until(pred: () => boolean, timeoutMs = 2000, what = 'condition'): Promise<void> {
    if (pred()) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const check = (): void => {
        if (!pred()) return;
        clearTimeout(timer);
        this.listeners.delete(check);
        resolve();
      };
      const timer = setTimeout(() => {
        this.listeners.delete(check);
        reject(new Error(`timed out after ${timeoutMs} ms waiting for ${what}`));
      }, timeoutMs);
      this.listeners.add(check);
    });
  }

  // sans-I/O surface
  handle(now: number, from: Addr, data: Uint8Array): void {
    this.receive(now, from, data);
    for (const l of [...this.listeners]) l();
  }

  private receive(now: number, from: Addr, data: Uint8Array): void {
    const r = decode(data);
    if (!r.ok) return;
    const msg = r.msg;
    this.inbox.push({ from, msg });
    switch (msg.type) {
      case MsgType.CHALLENGE:
        return this.onChallenge(now, from, msg);
      case MsgType.COOKIE: {
        const k = addrKey(from);
        const p = this.pending.get(k);
        if (!p || p.register || !Buffer.from(p.nonce).equals(msg.nonce)) return;
        this.cookies.set(k, msg.cookie);
        this.pending.delete(k);
        return;
      }
      case MsgType.SESSION: {
        const pend = this.pendingSession;
        if (pend && Buffer.from(pend.keys.sessionId).equals(msg.sessionId)) {
          if (msg.counter !== 0 || msg.inner.type !== MsgType.OK || !sessionTagOk(pend.keys.p2c, msg)) return void this.badSession++;
          pend.rx.commit(0);
          this.session = pend;
          this.pendingSession = undefined;
          this.registered = true;
          this.oks.push(msg.inner.ref);
          return;
        }
        const ss = this.session;
        if (!ss || !Buffer.from(ss.keys.sessionId).equals(msg.sessionId) || !ss.rx.check(msg.counter) || !sessionTagOk(ss.keys.p2c, msg)) {
          return void this.badSession++;
        }
        ss.rx.commit(msg.counter);
        const inner = msg.inner;
        this.inbox.push({ from, msg: inner });
        if (inner.type === MsgType.OK) this.oks.push(inner.ref);
        if (inner.type === MsgType.KEEPALIVE && inner.answer && this.answerProbes) {
          this.sendSession({ type: MsgType.OK, ref: new Uint8Array(msg.signed!.subarray(10, 18)) });
        }
        if (inner.type === MsgType.ERROR) this.errors.push(inner);
        if (inner.type === MsgType.PUSH) {
          this.pushes.push({ id: inner.id, blob: inner.blob });
          if (this.autoAck) this.sendSession({ type: MsgType.ACK, ids: [inner.id] });
        }
        return;
      }
      case MsgType.RESULT: {
        const k = toHex(msg.id);
        this.results.set(k, [...(this.results.get(k) ?? []), msg.status]);
        return;
      }
      case MsgType.ERROR:
        this.errors.push(msg);
        return;
      case MsgType.REGISTER_AGAIN:
        if (!this.session || !Buffer.from(this.session.keys.sessionId).equals(msg.sessionId)) return;
        this.registerAgainCount++;
        this.registered = false;
        if (this.autoReregister && this.home) this.register(this.home);
        return;
      default:
    }
  }

  pollTransmit(): Transmit | undefined {
    return this.out.shift();
  }

  pollTimeout(): number | undefined {
    return undefined;
  }

  handleTimeout(_now: number): void {}

  private onChallenge(now: number, from: Addr, m: ChallengeMsg): void {
    const k = addrKey(from);
    const p = this.pending.get(k);
    if (!p || !p.register || !Buffer.from(p.nonce).equals(m.nonce)) return;
    const cert = checkCertificate(m.peerCert, now);
    if (!cert.ok || !verifyWith(cert.publicKey, peerKeySigned(m.peerKey), m.keySig)) {
      this.badChallenge = true;
      return;
    }
    const fp = fingerprintOf(m.peerCert);
    const pinned = this.peerFingerprints.get(k);
    if (pinned && toHex(pinned) !== toHex(fp)) {
      this.badChallenge = true;
      return;
    }
    this.peerFingerprints.set(k, fp);
    this.cookies.set(k, m.cookie);
    this.pending.delete(k);
    const made = registerProof({
      cert: this.identity.cert, fingerprint: this.identity.fingerprint, sign: (d) => this.identity.sign(d), peerFingerprint: fp,
      nonce: p.nonce, cookie: m.cookie, peerKey: m.peerKey, deliveryKey: this.deliveryKey, secret: randomBytes(32),
    })!;
    const keys = made.keys;
    const proof = encode(made.msg);
    this.pendingSession = { keys, nonce: p.nonce, tx: 0, rx: new ReplayWindow() };
    this.lastProof = proof;
    this.sendRaw(from, proof);
  }

  private mustHome(): Addr {
    if (!this.home) throw new Error('register() first');
    return this.home;
  }
}
