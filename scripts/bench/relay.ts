/**
 * Relay load: S senders and R recipients on their own sockets, message k going from sender
 * k mod S to recipient floor(k / S) mod R, paced at an offered rate. Against the peer every
 * message is DELIVER -> PUSH -> ACK -> RESULT (4 datagrams at the peer), as protocol 2 has it:
 * recipients are registered clients with real sessions (each PUSH's counter and MAC are checked
 * before it is acknowledged, each ACK goes in the session with a new counter and the MAC; a
 * keepalive every KEEPALIVE_MS keeps them registered), and senders are contacts of every
 * recipient: each DELIVER carries the capability its recipient handed that sender, its tag made
 * for that message's id, and a cookie from HELLO -> COOKIE, renewed every COOKIE_RENEW_MS.
 * Against the plain forwarder it is the same count and about the same sizes of datagrams with a
 * 2-byte route instead of a protocol (DELIVER-sized out and back in, ACK-sized out and back in).
 * Senders use one pre-sealed-size random blob, so no end-to-end sealing runs per message.
 *
 * So that the generator costs less than the peer it measures (it plays every sender and every
 * recipient in one process), every DELIVER's capability tag (a MAC the sender would make anyway)
 * is made before each step starts. Recipients act as the client does: the PUSHes a recipient's
 * socket delivered in one turn of the event loop are acknowledged together, in one ACK of up to
 * ACK_IDS_MAX ids sealed then with the next counter. Every PUSH is checked (session id, counter
 * against the replay window), and the MAC of one PUSH in PUSH_MAC_CHECK_EVERY.
 */
import { randomBytes } from 'node:crypto';
import { ACK_IDS_MAX, CAP_ID_BYTES, CAP_TAG_BYTES, DeliveryStatus, MsgType } from '../../src/protocol/constants.js';
import { decode, encode } from '../../src/protocol/codec.js';
import type { SessionInner } from '../../src/protocol/messages.js';
import type { Addr } from '../../src/core/types.js';
import { ReplayWindow, capabilityId, capabilityKey, capabilityTag, sealSession, sessionTagOk } from '../../src/crypto/session.js';
import { CLIENT_DEFAULTS } from '../../src/client/types.js';
import { Endpoint, FORWARD_HELLO, hello, offsetOf, register, type Registered } from './endpoint.js';
import { certAt, privateKeyAt, type CertSet } from './certs.js';
import { fingerprintOf } from '../../src/identity/certificate.js';

export type RelayMode = 'peer' | 'forwarder';

export interface RelayStep {
  offeredPerS: number;
  sent: number;
  delivered: number;
  failed: number;
  lossPct: number;
  deliveredPerS: number;
  p50Us: number;
  p99Us: number;
  /** CPU use of this (generator) process over the step, percent of one core. */
  generatorCpuPct: number;
}

/** Forwarder route index of sender s; recipients are 0..R-1. */
const SENDER_ROUTE_BASE = 1000;
const ID_BYTES = 16;
const TICK_MS = 1;
/** How long to wait for the last answers after the offered load stops. */
const DRAIN_MS = 1500;
/** Recipients' keepalives (below the peer's 90 s registration TTL, as a client's 25 s). */
const KEEPALIVE_MS = 20_000;
/** Senders ask for a new cookie this often (a cookie lives at least one 120 s epoch). */
const COOKIE_RENEW_MS = 60_000;
/** One PUSH in this many has its MAC verified by the generator (all have their counters checked). */
const PUSH_MAC_CHECK_EVERY = 8;
/** ackEach: PUSHes kept to acknowledge at the next step (beyond, the peer pushes them again later). */
const LATE_ACKS_MAX = 100_000;

/** A recipient's session as its client keeps it. */
interface RecipientSession {
  reg: Registered;
  tx: number;
  rx: ReplayWindow;
  keepalives: number;
}

/** What the recipients saw that a client would refuse (all must stay 0). */
export interface SessionFaults {
  badTag: number;
  replayed: number;
  notInSession: number;
}

let runTag = randomBytes(4).readUInt32BE(0);

export class RelayLoad {
  private sentAt = new Float64Array(0);
  /** 0 waiting, 1 delivered, 2 failed. */
  private state = new Uint8Array(0);
  private tag = 0;
  private delivered = 0;
  private failed = 0;
  private latencies: number[] = [];
  /** Per recipient, its session (peer mode). */
  private sessions: RecipientSession[] = [];
  /** Per template, the capability key of its (sender, recipient) and the recipient's fingerprint (peer mode). */
  private caps: Array<{ key: Uint8Array; to: Uint8Array }> = [];
  private capOffset = 0;
  private cookieOffset = 0;
  private timers: NodeJS.Timeout[] = [];
  /** Prepared for the current step (peer mode): capability tags, CAP_TAG_BYTES per message. */
  private capTags = new Uint8Array(0);
  /** Per recipient, the ids of the PUSHes of this turn of the event loop, acknowledged together at its end. */
  private pendingAcks: Uint8Array[][] = [];
  private ackFlushScheduled = false;
  private ackEach = false;
  /** ackEach: the ACK of each message of the step, sealed before it with the counter it will carry. */
  private acks: Uint8Array[] = [];
  private acked = new Uint8Array(0);
  /** ackEach: PUSHes not of the step (or pushed again) to acknowledge at the start of the next step. */
  private lateAcks: Array<[number, Uint8Array]> = [];
  /** ACK datagrams sent and the ids they carried (peer mode). */
  readonly ackStats = { datagrams: 0, ids: 0 };
  private pushes = 0;
  private lastKeepaliveAt = 0;
  readonly faults: SessionFaults = { badTag: 0, replayed: 0, notInSession: 0 };

  private constructor(
    readonly mode: RelayMode,
    private readonly senders: Endpoint[],
    private readonly recipients: Endpoint[],
    /** Template datagram per (sender, recipient), index s * R + r; id (or k) patched in. */
    private readonly templates: Buffer[],
    private readonly idOffset: number,
    readonly datagramBytes: { deliver: number; ack: number },
  ) {}

  /**
   * `ackEach`: every PUSH gets its own ACK at once (as clients did before they acknowledged the
   * pushes of one turn together), for comparing like with like against the code before protocol 2.
   * Those ACKs are sealed before each step with the counters they will carry (counters follow
   * message order per recipient; PUSHes to one recipient arrive in that order, and the replay
   * window allows 64 of disorder), so that the generator's own MACs do not take the CPU the peer
   * needs; keepalives go between steps. A PUSH not of the step, or pushed again, is acknowledged
   * at the start of the next step.
   */
  static async setup(mode: RelayMode, server: Addr, blobBytes: number, nSenders: number, nRecipients: number, certs: CertSet, firstCert: number, ackEach = false): Promise<RelayLoad> {
    const open = (n: number): Promise<Endpoint[]> => Promise.all(Array.from({ length: n }, () => Endpoint.open(server)));
    const senders = await open(nSenders);
    const recipients = await open(nRecipients);
    const blob = randomBytes(blobBytes);
    const marker = Buffer.alloc(ID_BYTES, 0xa5);
    const ackLen = sealSession(new Uint8Array(32), new Uint8Array(8), 1, { type: MsgType.ACK, ids: [marker] }).length;
    const templates: Buffer[] = [];
    let idOffset = 0;
    let deliverLen = 0;
    const capMarker = Buffer.alloc(CAP_TAG_BYTES, 0x5a);
    let peerExtra: { sessions: RecipientSession[]; caps: Array<{ key: Uint8Array; to: Uint8Array }>; capOffset: number; cookieOffset: number } | undefined;
    if (mode === 'peer') {
      const sessions: RecipientSession[] = [];
      for (let r = 0; r < nRecipients; r++) {
        const i = firstCert + nSenders + r;
        sessions.push({ reg: await register(recipients[r]!, certAt(certs, i), privateKeyAt(certs, i)), tx: 0, rx: new ReplayWindow(), keepalives: 0 });
      }
      const cookies: Uint8Array[] = [];
      for (const ep of senders) cookies.push(await hello(ep));
      const caps: Array<{ key: Uint8Array; to: Uint8Array }> = [];
      let capOffset = 0;
      let cookieOffset = 0;
      for (let s = 0; s < nSenders; s++) {
        const senderFp = fingerprintOf(certAt(certs, firstCert + s));
        for (let r = 0; r < nRecipients; r++) {
          const { deliveryKey, fingerprint: to } = sessions[r]!.reg;
          // The capability recipient r's client hands its contact s (inside their sealed channel).
          const capId = capabilityId(deliveryKey, senderFp);
          const cap = Buffer.concat([capId, capMarker]);
          const t = Buffer.from(encode({ type: MsgType.DELIVER, cookie: cookies[s]!, to, id: marker, blob, cap }));
          idOffset = offsetOf(t, marker);
          capOffset = offsetOf(t, cap) + CAP_ID_BYTES;
          cookieOffset = offsetOf(t, cookies[s]!);
          deliverLen = t.length;
          templates.push(t);
          caps.push({ key: capabilityKey(deliveryKey, capId), to });
        }
      }
      peerExtra = { sessions, caps, capOffset, cookieOffset };
    } else {
      deliverLen = encode({ type: MsgType.DELIVER, cookie: new Uint8Array(20), to: new Uint8Array(32), id: marker, blob }).length;
      const hello = async (ep: Endpoint, route: number): Promise<void> => {
        const b = Buffer.alloc(4);
        b.writeUInt16BE(FORWARD_HELLO, 0);
        b.writeUInt16BE(route, 2);
        await new Promise<void>((resolve) => {
          ep.onData = () => resolve();
          ep.send(b);
        });
      };
      for (let s = 0; s < nSenders; s++) await hello(senders[s]!, SENDER_ROUTE_BASE + s);
      for (let r = 0; r < nRecipients; r++) await hello(recipients[r]!, r);
      for (let s = 0; s < nSenders; s++) {
        for (let r = 0; r < nRecipients; r++) {
          const t = Buffer.alloc(deliverLen);
          t.writeUInt16BE(r, 0);
          t.writeUInt16BE(SENDER_ROUTE_BASE + s, 2);
          templates.push(t);
        }
      }
      idOffset = 4;
    }
    const load = new RelayLoad(mode, senders, recipients, templates, idOffset, { deliver: deliverLen, ack: ackLen });
    if (peerExtra) {
      load.sessions = peerExtra.sessions;
      load.caps = peerExtra.caps;
      load.capOffset = peerExtra.capOffset;
      load.cookieOffset = peerExtra.cookieOffset;
      load.lastKeepaliveAt = performance.now();
      load.timers.push(setInterval(() => load.renewCookies(), COOKIE_RENEW_MS));
    }
    load.pendingAcks = recipients.map(() => []);
    load.ackEach = ackEach;
    load.wire(ackLen);
    return load;
  }

  private wire(ackLen: number): void {
    if (this.mode === 'peer') {
      this.recipients.forEach((ep, r) => {
        const ss = this.sessions[r]!;
        ep.onData = (data) => {
          const d = decode(data);
          if (!d.ok) return;
          const m = d.msg;
          if (m.type !== MsgType.SESSION || !Buffer.from(m.sessionId).equals(ss.reg.keys.sessionId)) return void this.faults.notInSession++;
          if (!ss.rx.check(m.counter)) return void this.faults.replayed++;
          if (this.pushes++ % PUSH_MAC_CHECK_EVERY === 0 && !sessionTagOk(ss.reg.keys.p2c, m)) return void this.faults.badTag++;
          ss.rx.commit(m.counter);
          if (m.inner.type === MsgType.PUSH) this.acknowledge(r, m.inner.id);
        };
      });
      for (const ep of this.senders) {
        ep.onData = (data) => {
          const r = decode(data);
          if (!r.ok) return;
          if (r.msg.type === MsgType.RESULT) this.finish(r.msg.id, 0, r.msg.status === DeliveryStatus.DELIVERED);
          else if (r.msg.type === MsgType.ERROR) this.finish(r.msg.ref, 0, false);
          else if (r.msg.type === MsgType.COOKIE) this.setCookie(this.senders.indexOf(ep), r.msg.cookie);
        };
      }
    } else {
      for (const ep of this.recipients) {
        ep.onData = (data) => {
          const back = Buffer.alloc(ackLen);
          back.writeUInt16BE(data.readUInt16BE(2), 0);
          data.copy(back, 4, 4, 4 + 8);
          ep.send(back);
        };
      }
      for (const ep of this.senders) ep.onData = (data) => this.finish(data, 4, true);
    }
  }

  /** Acknowledge the PUSH of `id` to recipient r with the other PUSHes of this turn, as the client does. */
  private acknowledge(r: number, id: Uint8Array): void {
    if (this.ackEach) {
      this.ackStats.datagrams++;
      this.ackStats.ids++;
      const v = Buffer.from(id.buffer, id.byteOffset, id.byteLength);
      const k = v.readUInt32BE(4);
      if (v.readUInt32BE(0) === this.tag && k < this.acks.length && this.acked[k] === 0) {
        this.acked[k] = 1;
        this.recipients[r]!.send(this.acks[k]!);
        return;
      }
      if (this.lateAcks.length < LATE_ACKS_MAX) this.lateAcks.push([r, new Uint8Array(id)]);
      return;
    }
    this.pendingAcks[r]!.push(new Uint8Array(id));
    if (this.ackFlushScheduled) return;
    this.ackFlushScheduled = true;
    setImmediate(() => this.flushAcks());
  }

  private flushAcks(): void {
    this.ackFlushScheduled = false;
    for (let r = 0; r < this.pendingAcks.length; r++) {
      const ids = this.pendingAcks[r]!;
      if (ids.length === 0) continue;
      this.pendingAcks[r] = [];
      for (let i = 0; i < ids.length; i += ACK_IDS_MAX) {
        const part = ids.slice(i, i + ACK_IDS_MAX);
        this.sendInSession(r, { type: MsgType.ACK, ids: part });
        this.ackStats.datagrams++;
        this.ackStats.ids += part.length;
      }
    }
  }

  /** Capability tags of messages 0..total-1 of the step about to start (peer mode). */
  private prepare(total: number): void {
    const S = this.senders.length;
    const R = this.recipients.length;
    this.capTags = new Uint8Array(total * CAP_TAG_BYTES);
    this.acks = this.ackEach ? new Array<Uint8Array>(total) : [];
    this.acked = new Uint8Array(this.ackEach ? total : 0);
    const id = Buffer.alloc(ID_BYTES);
    for (let k = 0; k < total; k++) {
      const s = k % S;
      const r = Math.floor(k / S) % R;
      const t = this.templates[s * R + r]!;
      t.copy(id, 0, this.idOffset, this.idOffset + ID_BYTES);
      id.writeUInt32BE(this.tag, 0);
      id.writeUInt32BE(k, 4);
      const c = this.caps[s * R + r]!;
      this.capTags.set(capabilityTag(c.key, c.to, id), k * CAP_TAG_BYTES);
      if (this.ackEach) {
        const ss = this.sessions[r]!;
        this.acks[k] = sealSession(ss.reg.keys.c2p, ss.reg.keys.sessionId, ++ss.tx, { type: MsgType.ACK, ids: [id] });
      }
    }
  }

  /** A datagram in recipient r's session: the next counter, the client-to-peer MAC. */
  private sendInSession(r: number, inner: SessionInner): void {
    const ss = this.sessions[r]!;
    this.recipients[r]!.send(sealSession(ss.reg.keys.c2p, ss.reg.keys.sessionId, ++ss.tx, inner));
  }

  /** Every recipient's keepalive, every keepaliveAnswerEvery-th asking for an OK, as the client does. */
  private keepalives(): void {
    for (let r = 0; r < this.sessions.length; r++) {
      const n = this.sessions[r]!.keepalives++;
      this.sendInSession(r, { type: MsgType.KEEPALIVE, answer: n % CLIENT_DEFAULTS.keepaliveAnswerEvery === 0 });
    }
  }

  private renewCookies(): void {
    for (const ep of this.senders) ep.sendMsg({ type: MsgType.HELLO, nonce: randomBytes(16) });
  }

  private setCookie(s: number, cookie: Uint8Array): void {
    const R = this.recipients.length;
    if (s < 0) return;
    for (let r = 0; r < R; r++) this.templates[s * R + r]!.set(cookie, this.cookieOffset);
  }

  private finish(id: Uint8Array, at: number, ok: boolean): void {
    if (id.length < at + 8) return;
    const v = Buffer.from(id.buffer, id.byteOffset, id.byteLength);
    if (v.readUInt32BE(at) !== this.tag) return;
    const k = v.readUInt32BE(at + 4);
    if (k >= this.state.length || this.state[k] !== 0) return;
    if (ok) {
      this.state[k] = 1;
      this.delivered++;
      this.latencies.push(performance.now() - this.sentAt[k]!);
    } else {
      this.state[k] = 2;
      this.failed++;
    }
  }

  private sendOne(k: number): void {
    const S = this.senders.length;
    const R = this.recipients.length;
    const s = k % S;
    const r = Math.floor(k / S) % R;
    const d = Buffer.from(this.templates[s * R + r]!);
    d.writeUInt32BE(this.tag, this.idOffset);
    d.writeUInt32BE(k, this.idOffset + 4);
    if (this.mode === 'peer') d.set(this.capTags.subarray(k * CAP_TAG_BYTES, (k + 1) * CAP_TAG_BYTES), this.capOffset);
    this.sentAt[k] = performance.now();
    this.senders[s]!.send(d);
  }

  /** Offer `ratePerS` messages per second for `durationMs`, then wait for the answers. */
  async run(ratePerS: number, durationMs: number): Promise<RelayStep> {
    const total = Math.floor((ratePerS * durationMs) / 1000);
    this.tag = runTag++ >>> 0;
    this.sentAt = new Float64Array(total);
    this.state = new Uint8Array(total);
    this.delivered = 0;
    this.failed = 0;
    this.latencies = [];
    if (this.mode === 'peer') {
      // Keepalives between steps, as often as a client's.
      if (performance.now() - this.lastKeepaliveAt >= KEEPALIVE_MS) {
        this.keepalives();
        this.lastKeepaliveAt = performance.now();
      }
      for (const [r, id] of this.lateAcks) this.sendInSession(r, { type: MsgType.ACK, ids: [id] });
      this.lateAcks = [];
      this.prepare(total);
    }
    const cpu0 = process.cpuUsage();
    const t0 = performance.now();
    let sent = 0;
    await new Promise<void>((resolve) => {
      const tick = (): void => {
        const due = Math.min(total, Math.floor(((performance.now() - t0) * ratePerS) / 1000));
        while (sent < due) this.sendOne(sent++);
        if (sent >= total) resolve();
        else setTimeout(tick, TICK_MS);
      };
      tick();
    });
    const sendEnd = performance.now();
    while (this.delivered + this.failed < total && performance.now() - sendEnd < DRAIN_MS) {
      await new Promise((r) => setTimeout(r, 10));
    }
    const wall = performance.now() - t0;
    const cpu = process.cpuUsage(cpu0);
    const lat = Float64Array.from(this.latencies).sort();
    const pct = (p: number): number => (lat.length ? Math.round(lat[Math.min(lat.length - 1, Math.floor(p * lat.length))]! * 1000) : NaN);
    return {
      offeredPerS: ratePerS,
      sent: total,
      delivered: this.delivered,
      failed: this.failed,
      lossPct: total ? (100 * (total - this.delivered)) / total : 0,
      deliveredPerS: Math.round((this.delivered * 1000) / (sendEnd - t0)),
      p50Us: pct(0.5),
      p99Us: pct(0.99),
      generatorCpuPct: Math.round(((cpu.user + cpu.system) / 1000 / wall) * 100),
    };
  }

  async close(): Promise<void> {
    for (const t of this.timers) clearInterval(t);
    await Promise.all([...this.senders, ...this.recipients].map((e) => e.close()));
  }
}
