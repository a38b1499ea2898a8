/**
 * A protocol-level test client: speaks the Root envelope with the codec and nothing else. It is a
 * sans-I/O machine (drive it with Link or UdpDriver): it registers (REGISTER, checks the signed
 * CHALLENGE, REGISTER_PROOF), asks for cookies (HELLO), sends DELIVER, and acks PUSH.
 */
import { MsgType, LABEL_CHALLENGE, LABEL_REGISTER } from '../../src/protocol/constants.js';
import { decode, encode } from '../../src/protocol/codec.js';
import type { ErrorMsg, Message } from '../../src/protocol/messages.js';
import { checkCertificate, fingerprintOf, toHex, verifyWith, type Identity } from '../../src/identity/certificate.js';
import { addrKey, type Addr, type Transmit } from '../../src/core/types.js';
import { randomBytes } from 'node:crypto';

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

  hello(peer: Addr): void {
    const nonce = randomBytes(16);
    if (!this.pending.has(addrKey(peer))) this.pending.set(addrKey(peer), { nonce, register: false });
    else this.pending.get(addrKey(peer))!.nonce = nonce;
    this.send(peer, { type: MsgType.HELLO, nonce });
  }

  /** DELIVER with the cookie held for `peer`; returns the message id. */
  deliver(peer: Addr, to: Uint8Array, blob: Uint8Array, id: Uint8Array = randomBytes(16)): Uint8Array {
    const cookie = this.cookies.get(addrKey(peer));
    if (!cookie) throw new Error(`no cookie for ${addrKey(peer)}: call hello() first`);
    this.send(peer, { type: MsgType.DELIVER, cookie, to, id: new Uint8Array(id), blob });
    return id;
  }

  keepalive(): void {
    this.send(this.mustHome(), { type: MsgType.KEEPALIVE });
  }

  poll(): void {
    this.send(this.mustHome(), { type: MsgType.POLL });
  }

  ack(ids: Uint8Array[]): void {
    this.send(this.mustHome(), { type: MsgType.ACK, ids });
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
        return this.onChallenge(now, from, msg.cookie, msg.peerCert, msg.sig);
      case MsgType.OK:
        if (this.home && addrKey(from) === addrKey(this.home)) this.registered = true;
        return;
      case MsgType.PUSH:
        this.pushes.push({ id: msg.id, blob: msg.blob });
        if (this.autoAck) this.send(from, { type: MsgType.ACK, ids: [msg.id] });
        return;
      case MsgType.RESULT: {
        const k = toHex(msg.id);
        this.results.set(k, [...(this.results.get(k) ?? []), msg.status]);
        return;
      }
      case MsgType.ERROR:
        this.errors.push(msg);
        return;
      case MsgType.REGISTER_AGAIN:
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

  private onChallenge(now: number, from: Addr, cookie: Uint8Array, peerCert: Uint8Array, sig: Uint8Array): void {
    const k = addrKey(from);
    const p = this.pending.get(k);
    if (!p) return;
    const cert = checkCertificate(peerCert, now);
    const signed = Buffer.concat([Buffer.from(LABEL_CHALLENGE), p.nonce, cookie]);
    if (!cert.ok || !verifyWith(cert.publicKey, signed, sig)) {
      this.badChallenge = true;
      return;
    }
    const fp = fingerprintOf(peerCert);
    const pinned = this.peerFingerprints.get(k);
    if (pinned && toHex(pinned) !== toHex(fp)) {
      this.badChallenge = true;
      return;
    }
    this.peerFingerprints.set(k, fp);
    this.cookies.set(k, cookie);
    this.pending.delete(k);
    if (!p.register) return;
    const proofSig = this.identity.sign(Buffer.concat([Buffer.from(LABEL_REGISTER), cookie, fp, p.nonce]));
    const proof = encode({ type: MsgType.REGISTER_PROOF, cert: this.identity.cert, nonce: p.nonce, cookie, sig: proofSig });
    this.lastProof = proof;
    this.sendRaw(from, proof);
  }

  private mustHome(): Addr {
    if (!this.home) throw new Error('register() first');
    return this.home;
  }
}
