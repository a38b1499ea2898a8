/**
 * An on-path attacker node: it sees every datagram on the simulated wire (a capture, as on a shared
 * network), but sends only from its own address. It tries to take over other clients'
 * registrations and to disturb their messages:
 *   replay-proof    a captured REGISTER_PROOF, byte for byte, from its own address
 *   steal-register  REGISTER with a victim's certificate, then REGISTER_PROOF with the victim's
 *                   certificate, the captured nonce and signature, and its own fresh cookie
 *   forge-proof     the same with a proof signed by its own key
 *   replay-deliver  a captured DELIVER (same recipient, id and blob) with its own valid cookie
 *   ack-victim      registered under its own identity, ACKs ids of messages for other clients
 *   keepalive       KEEPALIVE and POLL from its own address
 * Success for the attacker would be any PUSH reaching its address; the scenario checks that none
 * does, and that no peer pushes a client's message to an address that client never used.
 */
import { MsgType, LABEL_REGISTER } from '../../src/protocol/constants.js';
import { decode, encode } from '../../src/protocol/codec.js';
import type { DeliverMsg, Message, RegisterProofMsg } from '../../src/protocol/messages.js';
import { fingerprintOf, type Identity } from '../../src/identity/certificate.js';
import { addrKey, type Addr, type Transmit } from '../../src/core/types.js';
import type { Machine, Wire } from './net.js';
import type { Rng } from './prng.js';

/** Captured datagrams kept, per kind (the oldest is replaced at random beyond). */
export const CAPTURE_MAX = 32;

export type AttackKind = 'replay-proof' | 'steal-register' | 'forge-proof' | 'replay-deliver' | 'ack-victim' | 'keepalive';
const KINDS: readonly AttackKind[] = ['replay-proof', 'steal-register', 'forge-proof', 'replay-deliver', 'ack-victim', 'keepalive'];

interface Pending {
  readonly kind: 'self' | 'steal' | 'forge' | 'hello';
  readonly nonce: Uint8Array;
  readonly proof?: RegisterProofMsg;
  readonly deliver?: DeliverMsg;
}

export interface AttackerStats {
  sent: Record<AttackKind, number>;
  /** Datagrams received, by type name or ERROR code. */
  received: Record<string, number>;
  /** PUSH datagrams that reached the attacker: must stay 0. */
  pushes: number;
}

export class Attacker implements Machine {
  readonly stats: AttackerStats = {
    sent: Object.fromEntries(KINDS.map((k) => [k, 0])) as Record<AttackKind, number>,
    received: {},
    pushes: 0,
  };
  private readonly proofs: Array<{ to: Addr; data: Uint8Array; msg: RegisterProofMsg }> = [];
  private readonly delivers: Array<{ to: Addr; msg: DeliverMsg }> = [];
  private readonly pending = new Map<string, Pending>();
  private readonly registeredAt = new Set<string>();
  private readonly out: Transmit[] = [];
  private nextAtMs: number;

  constructor(
    private readonly identity: Identity,
    private readonly peers: readonly Addr[],
    private readonly rng: Rng,
    now: number,
    private readonly periodMs: number,
    private readonly untilMs: number,
  ) {
    this.nextAtMs = now + this.rng.int(0, periodMs);
  }

  /** Every datagram on the wire passes here (the attacker's capture). */
  capture(w: Wire): void {
    const type = w.data[1];
    if (type !== MsgType.REGISTER_PROOF && type !== MsgType.DELIVER) return;
    const r = decode(w.data);
    if (!r.ok) return;
    if (r.msg.type === MsgType.REGISTER_PROOF) {
      if (r.msg.cert.length > 0 && !sameBytes(r.msg.cert, this.identity.cert)) keep(this.proofs, { to: w.to, data: w.data, msg: r.msg }, this.rng);
    } else if (r.msg.type === MsgType.DELIVER) {
      keep(this.delivers, { to: w.to, msg: r.msg }, this.rng);
    }
  }

  handle(_now: number, from: Addr, data: Uint8Array): void {
    const r = decode(data);
    if (!r.ok) return;
    const m = r.msg;
    const name = m.type === MsgType.ERROR ? `ERROR_${m.code}` : String(m.type);
    this.stats.received[name] = (this.stats.received[name] ?? 0) + 1;
    if (m.type === MsgType.PUSH) {
      this.stats.pushes++;
      return;
    }
    if (m.type === MsgType.OK) {
      this.registeredAt.add(addrKey(from));
      return;
    }
    if (m.type !== MsgType.CHALLENGE) return;
    const p = this.pending.get(addrKey(from));
    if (!p) return;
    this.pending.delete(addrKey(from));
    const cookie = m.cookie;
    switch (p.kind) {
      case 'self':
      case 'forge': {
        // 'self' signs for its own certificate (a genuine registration); 'forge' signs the same
        // bytes with its own key but presents a victim's certificate.
        const peerFp = fingerprintFromChallenge(m);
        const sig = this.identity.sign(Buffer.concat([Buffer.from(LABEL_REGISTER, 'ascii'), cookie, peerFp, p.nonce]));
        const cert = p.kind === 'self' ? this.identity.cert : p.proof!.cert;
        this.queue(from, { type: MsgType.REGISTER_PROOF, cert, nonce: p.nonce, cookie, sig });
        return;
      }
      case 'steal':
        this.queue(from, { type: MsgType.REGISTER_PROOF, cert: p.proof!.cert, nonce: p.proof!.nonce, cookie, sig: p.proof!.sig });
        return;
      case 'hello':
        this.queue(from, { ...p.deliver!, cookie });
        return;
    }
  }

  pollTransmit(): Transmit | undefined {
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
        if (!this.registeredAt.has(addrKey(peer))) {
          const nonce = this.rng.bytes(16);
          this.pending.set(addrKey(peer), { kind: 'self', nonce });
          this.queue(peer, { type: MsgType.REGISTER, cert: this.identity.cert, nonce });
          break;
        }
        const ids = this.rng.sample(this.delivers, 8).map((d) => d.msg.id);
        if (ids.length === 0) return;
        this.queue(peer, { type: MsgType.ACK, ids });
        break;
      }
      case 'keepalive':
        this.queue(peer, { type: this.rng.chance(0.5) ? MsgType.KEEPALIVE : MsgType.POLL });
        break;
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

/** The peer's fingerprint is SHA-256 over its certificate, which the CHALLENGE carries. */
function fingerprintFromChallenge(m: Extract<Message, { type: typeof MsgType.CHALLENGE }>): Uint8Array {
  return fingerprintOf(m.peerCert);
}
