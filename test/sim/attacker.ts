/**
 * An on-path attacker node: it sees every datagram on the simulated wire (a capture, as on a shared
 * network), but sends only from its own address. It tries to take over other clients'
 * registrations and to disturb their messages:
 *   replay-proof    a captured REGISTER_PROOF, byte for byte, from its own address
 *   steal-register  REGISTER with a victim's certificate, then REGISTER_PROOF with the victim's
 *                   certificate, the captured nonce and signature, and its own fresh cookie
 *   forge-proof     the same with a proof signed by its own key
 *   replay-deliver  a captured DELIVER (same recipient, id and blob) with its own valid cookie
 *   ack-victim      registered under its own identity, ACKs (in its own session) ids of messages
 *                   for other clients
 *   keepalive       KEEPALIVE and POLL outside a session from its own address
 *   spoof-poll      POLL, KEEPALIVE and ACK outside a session, spoofed from a client's address
 *                   (an amplifier toward that client if the peer took an address as a credential)
 *   replay-session  a captured SESSION datagram of a client, again, from the client's address and
 *                   from its own (a replay, or a roaming takeover if the peer followed it)
 *   sybil-flood     registers one of its throwaway identities at a peer, fills that identity's
 *                   mailbox there with capability-carrying messages it never acknowledges, and
 *                   abandons it (storage floods from many identities; the peer's quotas must keep
 *                   honest clients' messages going)
 *   wedge           a message sealed to a client by the attacker's own identity, without its CARD,
 *                   naming the attacker's own address as its peer: the client must neither keep it
 *                   at its peer for long nor send anything to that address
 * Success for the attacker would be any PUSH reaching its address; the scenario checks that none
 * does, and that no peer pushes a client's message to an address that client never used.
 */
import { MsgType } from '../../src/protocol/constants.js';
import { decode, encode } from '../../src/protocol/codec.js';
import type { DeliverMsg, Message, RegisterProofMsg } from '../../src/protocol/messages.js';
import { fingerprintOf, type Identity } from '../../src/identity/certificate.js';
import { capabilityField, capabilityId, capabilityKey, registerProof, sealSession, type SessionKeys } from '../../src/crypto/session.js';
import { seal } from '../../src/crypto/seal.js';
import { ContentKind, encodeText } from '../../src/client/content.js';
import { addrKey, type Addr, type Transmit } from '../../src/core/types.js';
import type { Machine, Wire } from './net.js';
import type { Rng } from './prng.js';

/** Captured datagrams kept, per kind (the oldest is replaced at random beyond). */
export const CAPTURE_MAX = 32;

export type AttackKind =
  | 'replay-proof' | 'steal-register' | 'forge-proof' | 'replay-deliver' | 'ack-victim' | 'keepalive' | 'spoof-poll' | 'replay-session'
  | 'wedge' | 'sybil-flood';
const KINDS: readonly AttackKind[] = [
  'replay-proof', 'steal-register', 'forge-proof', 'replay-deliver', 'ack-victim', 'keepalive', 'spoof-poll', 'replay-session', 'wedge',
  'sybil-flood',
];
/** Messages one sybil-flood sends to the identity it registered. */
export const SYBIL_FLOOD_MESSAGES = 40;

/** A datagram the attacker sends with a source address that is not its own (the simulated network allows it). */
export interface SpoofedTransmit extends Transmit {
  readonly spoofFrom?: Addr;
}

interface Pending {
  readonly kind: 'self' | 'steal' | 'forge' | 'hello' | 'sybil';
  readonly sybil?: Identity;
  readonly nonce: Uint8Array;
  readonly proof?: RegisterProofMsg;
  readonly deliver?: DeliverMsg;
}

export interface AttackerStats {
  sent: Record<AttackKind, number>;
  /** Datagrams received, by type name or ERROR code. */
  received: Record<string, number>;
  /** PUSH datagrams that reached the attacker in a session that is not one of its sybils': must stay 0. */
  pushes: number;
  /** Messages its sybils were sent, and pushes they got (never acknowledged). */
  sybilMessages: number;
  sybilPushes: number;
}

export class Attacker implements Machine {
  readonly stats: AttackerStats = {
    sent: Object.fromEntries(KINDS.map((k) => [k, 0])) as Record<AttackKind, number>,
    received: {},
    pushes: 0,
    sybilMessages: 0,
    sybilPushes: 0,
  };
  /** Session ids (latin1) of the sybils' registrations. */
  private readonly sybilSessions = new Set<string>();
  private sybilNext = 0;
  private readonly proofs: Array<{ to: Addr; from: Addr; data: Uint8Array; msg: RegisterProofMsg }> = [];
  private readonly delivers: Array<{ to: Addr; msg: DeliverMsg }> = [];
  /** SESSION datagrams clients sent to their peers. */
  private readonly sessions: Array<{ to: Addr; from: Addr; data: Uint8Array }> = [];
  private readonly pending = new Map<string, Pending>();
  /** The attacker's own sessions, by peer address. */
  private readonly own = new Map<string, { keys: SessionKeys; tx: number; nonce: Uint8Array }>();
  private readonly out: SpoofedTransmit[] = [];
  private nextAtMs: number;

  constructor(
    private readonly identity: Identity,
    private readonly peers: readonly Addr[],
    private readonly rng: Rng,
    now: number,
    private readonly periodMs: number,
    private readonly untilMs: number,
    /** The clients it seals messages to (their certificates are public). */
    private readonly victims: readonly Identity[] = [],
    /** Its own address, named as its peer inside what it seals. */
    private readonly self: Addr = { host: '0.0.0.0', port: 1 },
    /** Throwaway identities it registers and abandons. */
    private readonly sybils: readonly Identity[] = [],
  ) {
    this.nextAtMs = now + this.rng.int(0, periodMs);
  }

  /** Every datagram on the wire passes here (the attacker's capture). */
  capture(w: Wire): void {
    const type = w.data[1];
    if (type !== MsgType.REGISTER_PROOF && type !== MsgType.DELIVER && type !== MsgType.SESSION) return;
    const r = decode(w.data);
    if (!r.ok) return;
    if (r.msg.type === MsgType.REGISTER_PROOF) {
      if (r.msg.cert.length > 0 && !sameBytes(r.msg.cert, this.identity.cert)) keep(this.proofs, { to: w.to, from: w.from, data: w.data, msg: r.msg }, this.rng);
    } else if (r.msg.type === MsgType.DELIVER) {
      keep(this.delivers, { to: w.to, msg: r.msg }, this.rng);
    } else if (r.msg.type === MsgType.SESSION && this.peers.some((p) => addrKey(p) === addrKey(w.to))) {
      keep(this.sessions, { to: w.to, from: w.from, data: w.data }, this.rng);
    }
  }

  handle(_now: number, from: Addr, data: Uint8Array): void {
    const r = decode(data);
    if (!r.ok) return;
    const m = r.msg;
    const name = m.type === MsgType.ERROR ? `ERROR_${m.code}` : String(m.type);
    this.stats.received[name] = (this.stats.received[name] ?? 0) + 1;
    if (m.type === MsgType.SESSION) {
      // The attacker's own session never carries a message: none is sent to it. Any PUSH in any
      // SESSION datagram that reaches it is a hijack.
      if (m.inner.type !== MsgType.PUSH) return;
      if (this.sybilSessions.has(Buffer.from(m.sessionId).toString('latin1'))) this.stats.sybilPushes++;
      else this.stats.pushes++;
      return;
    }
    if (m.type === MsgType.COOKIE) {
      const p = this.pending.get(addrKey(from));
      if (p?.kind !== 'hello' || !sameBytes(p.nonce, m.nonce)) return;
      this.pending.delete(addrKey(from));
      this.queue(from, { ...p.deliver!, cookie: m.cookie });
      return;
    }
    if (m.type !== MsgType.CHALLENGE) return;
    const p = this.pending.get(addrKey(from));
    if (!p || p.kind === 'hello') return;
    this.pending.delete(addrKey(from));
    const cookie = m.cookie;
    const peerFp = fingerprintOf(m.peerCert);
    switch (p.kind) {
      case 'sybil': {
        // Register the sybil, then fill its mailbox with messages it will never acknowledge.
        const s = p.sybil!;
        const deliveryKey = this.rng.bytes(32);
        const made = registerProof({
          cert: s.cert, fingerprint: s.fingerprint, sign: (d) => s.sign(d), peerFingerprint: peerFp, nonce: p.nonce, cookie,
          peerKey: m.peerKey, deliveryKey, secret: this.rng.bytes(32),
        });
        if (!made) return;
        this.sybilSessions.add(Buffer.from(made.keys.sessionId).toString('latin1'));
        this.queue(from, made.msg);
        const capId = capabilityId(deliveryKey, this.identity.fingerprint);
        const capKey = capabilityKey(deliveryKey, capId);
        for (let i = 0; i < SYBIL_FLOOD_MESSAGES; i++) {
          const id = this.rng.bytes(16);
          const cap = capabilityField(capId, capKey, s.fingerprint, id);
          this.queue(from, { type: MsgType.DELIVER, cookie, to: s.fingerprint, id, cap, blob: this.rng.bytes(1100) });
          this.stats.sybilMessages++;
        }
        return;
      }
      case 'self':
      case 'forge': {
        // 'self' registers its own certificate (a genuine registration); 'forge' signs a proof with
        // its own key but presents a victim's certificate.
        const cert = p.kind === 'self' ? this.identity.cert : p.proof!.cert;
        const made = registerProof({
          cert, fingerprint: fingerprintOf(cert), sign: (d) => this.identity.sign(d), peerFingerprint: peerFp, nonce: p.nonce, cookie,
          peerKey: m.peerKey, deliveryKey: this.rng.bytes(32), secret: this.rng.bytes(32),
        });
        if (!made) return;
        if (p.kind === 'self') this.own.set(addrKey(from), { keys: made.keys, tx: 0, nonce: p.nonce });
        this.queue(from, made.msg);
        return;
      }
      case 'steal':
        // The victim's proof, byte for byte, with the attacker's own fresh cookie.
        this.queue(from, { ...p.proof!, cookie });
        return;
    }
  }

  pollTransmit(): SpoofedTransmit | undefined {
    return this.out.shift();
  }

  pollTimeout(): number | undefined {
    return this.nextAtMs <= this.untilMs ? this.nextAtMs : undefined;
  }

  handleTimeout(now: number): void {
    if (now < this.nextAtMs) return;
    this.nextAtMs = now + this.rng.int(Math.ceil(this.periodMs / 2), this.periodMs * 2);
    this.act(this.rng.pick(KINDS));
  }

  private act(kind: AttackKind): void {
    const proof = this.proofs.length ? this.rng.pick(this.proofs) : undefined;
    const deliver = this.delivers.length ? this.rng.pick(this.delivers) : undefined;
    const peer = this.rng.pick(this.peers);
    switch (kind) {
      case 'replay-proof':
        if (!proof) return;
        this.out.push({ to: proof.to, data: proof.data });
        break;
      case 'steal-register':
      case 'forge-proof': {
        if (!proof) return;
        const nonce = kind === 'steal-register' ? proof.msg.nonce : this.rng.bytes(16);
        this.pending.set(addrKey(proof.to), { kind: kind === 'steal-register' ? 'steal' : 'forge', nonce, proof: proof.msg });
        this.queue(proof.to, { type: MsgType.REGISTER, cert: proof.msg.cert, nonce });
        break;
      }
      case 'replay-deliver': {
        if (!deliver) return;
        const nonce = this.rng.bytes(16);
        this.pending.set(addrKey(deliver.to), { kind: 'hello', nonce, deliver: deliver.msg });
        this.queue(deliver.to, { type: MsgType.HELLO, nonce });
        break;
      }
      case 'ack-victim': {
        const mine = this.own.get(addrKey(peer));
        if (!mine) {
          const nonce = this.rng.bytes(16);
          this.pending.set(addrKey(peer), { kind: 'self', nonce });
          this.queue(peer, { type: MsgType.REGISTER, cert: this.identity.cert, nonce });
          break;
        }
        const ids = this.rng.sample(this.delivers, 8).map((d) => d.msg.id);
        if (ids.length === 0) return;
        mine.tx++;
        this.out.push({ to: peer, data: sealSession(mine.keys.c2p, mine.keys.sessionId, mine.tx, { type: MsgType.ACK, ids }) });
        break;
      }
      case 'keepalive':
        this.queue(peer, this.rng.chance(0.5) ? { type: MsgType.KEEPALIVE, answer: true } : { type: MsgType.POLL });
        break;
      case 'spoof-poll': {
        // A client's address, seen on the wire sending a proof or a session datagram.
        const seen = this.rng.chance(0.5) && this.sessions.length ? this.rng.pick(this.sessions) : proof;
        if (!seen) return;
        const d = this.rng.pick([
          encode({ type: MsgType.POLL }), encode({ type: MsgType.KEEPALIVE, answer: true }),
          encode({ type: MsgType.ACK, ids: this.rng.sample(this.delivers, 4).map((x) => x.msg.id).concat([this.rng.bytes(16)]) }),
        ]);
        this.out.push({ to: seen.to, data: d, spoofFrom: seen.from });
        break;
      }
      case 'sybil-flood': {
        if (!this.sybils.length) return;
        const sybil = this.sybils[this.sybilNext++ % this.sybils.length]!;
        const nonce = this.rng.bytes(16);
        this.pending.set(addrKey(peer), { kind: 'sybil', nonce, sybil });
        this.queue(peer, { type: MsgType.REGISTER, cert: sybil.cert, nonce });
        break;
      }
      case 'wedge': {
        if (!this.victims.length) return;
        const victim = this.rng.pick(this.victims);
        const id = this.rng.bytes(16);
        const blob = seal({
          sender: this.identity, senderPeer: addrKey(this.self), recipientCert: victim.cert,
          content: { kind: ContentKind.TEXT, id, sentAtMs: this.nextAtMs, body: encodeText({ text: 'wedge' }) }, random: (n) => this.rng.bytes(n),
        });
        const nonce = this.rng.bytes(16);
        const deliver: DeliverMsg = { type: MsgType.DELIVER, cookie: new Uint8Array(20), to: victim.fingerprint, id, blob };
        this.pending.set(addrKey(peer), { kind: 'hello', nonce, deliver });
        this.queue(peer, { type: MsgType.HELLO, nonce });
        break;
      }
      case 'replay-session': {
        if (!this.sessions.length) return;
        const s = this.rng.pick(this.sessions);
        this.out.push({ to: s.to, data: s.data, spoofFrom: s.from });
        this.out.push({ to: s.to, data: s.data });
        break;
      }
    }
    this.stats.sent[kind]++;
  }

  private queue(to: Addr, msg: Message): void {
    this.out.push({ to, data: encode(msg) });
  }
}

function keep<T>(list: T[], item: T, rng: Rng): void {
  if (list.length < CAPTURE_MAX) list.push(item);
  else list[rng.int(0, CAPTURE_MAX - 1)] = item;
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  return Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(b);
}

