/**
 * The state every part of the client shares: settings, identity and addresses, the injected
 * randomness and store, the persisted snapshot and its change tracker, the transmit and event
 * queues and the drop counters. Nothing here reads a clock or a socket.
 *
 * Changing persisted state: set `dirty` after changing the small state in `s` (contacts, groups,
 * certificates, top-level fields); call putOutbox() / dropOutbox() for an outbox message,
 * seen() / forgetSeen() for a dedupe entry, and addHistory() / historyState() for the history.
 * persist() commits all of it in one batch.
 */
import { DropCounter, encode } from '../protocol/codec.js';
import { ACK_IDS_MAX, MsgType } from '../protocol/constants.js';
import type { Message, SessionInner } from '../protocol/messages.js';
import { sealSession, type ReplayWindow } from '../crypto/session.js';
import { toHex, type Identity } from '../identity/certificate.js';
import { addrKey, parseAddr, type Addr, type Random, type Transmit } from '../core/types.js';
import { emptySnapshot, type ClientSnapshot, type ClientStore, type DeliveryState, type HistoryEntry, type OutboxMessage } from './store.js';
import { ChangeTracker } from './changes.js';
import { CLIENT_DEFAULTS, type ClientEvent, type ClientOptions, type ClientSettings } from './types.js';

/** Push ids waiting for the next pollTransmit() to be acknowledged; beyond, a push is left for its peer to push again. */
export const ACKS_PENDING_MAX = 1024;

export const hex = toHex;
export const unhex = (s: string): Uint8Array => new Uint8Array(Buffer.from(s, 'hex'));

/** The earlier of a deadline (or none) and another one. */
export function earlier(a: number | undefined, b: number): number {
  return a === undefined || b < a ? b : a;
}

/** The earliest finite deadline of `items`, for a timer. */
export function earliestDeadline(items: Iterable<{ deadline: number }>): number | undefined {
  let at: number | undefined;
  for (const x of items) if (Number.isFinite(x.deadline)) at = earlier(at, x.deadline);
  return at;
}

/** The peer at `peerKey` gave us a cookie: the items waiting for one there (not awaiting an answer) are due now. */
export function dueOnCookie(items: Iterable<{ peerKey: string; awaiting: boolean; deadline: number }>, peerKey: string, now: number): void {
  for (const x of items) if (x.peerKey === peerKey && !x.awaiting) x.deadline = Math.min(x.deadline, now);
}

/** Our session with our own peer (src/client/registration.ts sets it). */
export interface ClientSession {
  readonly id: Uint8Array;
  /** latin1 of the id, for comparisons. */
  readonly idKey: string;
  readonly c2p: Uint8Array;
  readonly p2c: Uint8Array;
  /** Counter of the last datagram we sent in it. */
  tx: number;
  /** Counters of the peer's datagrams seen. */
  readonly rx: ReplayWindow;
}

export class ClientContext {
  readonly o: ClientSettings;
  readonly identity: Identity;
  readonly fingerprint: string;
  /** Our first peer (the one senders try first, and the one our sealed messages name). */
  peerAddr: Addr;
  peerKey: string;
  /** The address our sealed messages name for receipts: our first peer's, as others reach it. */
  senderPeer: string;
  /** Every peer we are registered with (or registering with), in order; the first is peerKey. */
  readonly peerAddrs = new Map<string, Addr>();
  readonly random: Random;
  readonly s: ClientSnapshot;
  /** The dedupe entries as a map, in insertion order: `sender:id` -> when it was seen (`s.dedupe` is left empty). */
  readonly dedupe = new Map<string, number>();
  /** `sender:id` -> the message's sending time, for the entries of `dedupe` that have one. */
  readonly sentAt = new Map<string, number>();
  /** The small state in `s` may have changed since the last commit. */
  dirty = false;
  readonly changes: ChangeTracker;
  /** Datagrams queued for pollTransmit. */
  readonly out: Transmit[] = [];
  /** Push ids to acknowledge, per peer (host:port), sent together by flushAcks() (at most ACKS_PENDING_MAX in all). */
  private readonly acks = new Map<string, Uint8Array[]>();
  private acksPending = 0;
  /** Events queued for pollEvent, at most eventsMax. */
  readonly events: ClientEvent[] = [];
  readonly drops = new DropCounter();
  /** Our current session with each of our peers (by host:port), while registered there. */
  readonly sessions = new Map<string, ClientSession>();
  readonly store: ClientStore;
  private readonly givenSender: { peerKey: string; senderPeer: string } | undefined;

  /** Checks the options (throwing TypeError) and loads the persisted state. */
  constructor(opts: ClientOptions, now: number) {
    checkOptions(opts, now);
    this.o = settingsFrom(opts);
    this.identity = opts.identity;
    this.fingerprint = opts.identity.fingerprintHex;
    this.peerAddr = { host: opts.peer.host, port: opts.peer.port };
    this.peerKey = addrKey(this.peerAddr);
    this.senderPeer = opts.senderPeer ?? this.peerKey;
    if (!parseAddr(this.senderPeer)) throw new TypeError('opts.senderPeer must be host:port');
    this.givenSender = opts.senderPeer !== undefined ? { peerKey: this.peerKey, senderPeer: opts.senderPeer } : undefined;
    this.peerAddrs.set(this.peerKey, this.peerAddr);
    for (const a of opts.morePeers ?? []) if (!this.peerAddrs.has(addrKey(a))) this.peerAddrs.set(addrKey(a), { host: a.host, port: a.port });
    this.random = opts.random;
    this.store = opts.store;
    this.s = opts.store.load() ?? emptySnapshot();
    for (const d of this.s.dedupe) {
      this.dedupe.set(d.key, d.atMs);
      if (d.sentAtMs !== undefined) this.sentAt.set(d.key, d.sentAtMs);
    }
    this.s.dedupe = [];
    this.changes = new ChangeTracker(this.s);
  }

  send(to: Addr, m: Message): void {
    this.out.push({ to, data: encode(m) });
  }

  /** Our session with our first peer, while registered there. */
  get session(): ClientSession | undefined {
    return this.sessions.get(this.peerKey);
  }

  /** A datagram to one of our peers (default the first) inside our session there; false (nothing sent) when we have none. */
  sendToPeer(inner: SessionInner, peerKey: string = this.peerKey): boolean {
    const ss = this.sessions.get(peerKey);
    const addr = this.peerAddrs.get(peerKey);
    if (!ss || !addr) return false;
    ss.tx++;
    this.out.push({ to: addr, data: sealSession(ss.c2p, ss.id, ss.tx, inner) });
    return true;
  }

  /**
   * Acknowledge a push to the peer it came from. The ACK leaves with the next pollTransmit(),
   * after the commit of what the push changed, together with the other pushes from that peer
   * handled since (up to ACK_IDS_MAX ids per ACK): a burst of pushes costs one ACK datagram, and
   * one MAC on each side, per ACK_IDS_MAX. Beyond ACKS_PENDING_MAX waiting ids (a driver that
   * handles that many pushes without polling) the push is not acknowledged now (drop
   * `ack_deferred`): its peer pushes it again after its ACK timeout, and the dedupe acknowledges
   * that copy without showing it twice.
   */
  queueAck(id: Uint8Array, peerKey: string = this.peerKey): void {
    if (this.acksPending >= ACKS_PENDING_MAX) return this.drops.add('ack_deferred');
    const list = this.acks.get(peerKey);
    if (list) list.push(id);
    else this.acks.set(peerKey, [id]);
    this.acksPending++;
  }

  /** Seal the waiting ACKs into the transmit queue (after a commit: see queueAck). */
  flushAcks(): void {
    if (this.acksPending === 0) return;
    for (const [peerKey, ids] of this.acks) {
      for (let i = 0; i < ids.length; i += ACK_IDS_MAX) this.sendToPeer({ type: MsgType.ACK, ids: ids.slice(i, i + ACK_IDS_MAX) }, peerKey);
    }
    this.acks.clear();
    this.acksPending = 0;
  }

  /** Our peers changed: the first one is the one senders try first and the one our messages name. */
  setPeers(addrs: readonly Addr[]): void {
    const old = new Map(this.peerAddrs);
    this.peerAddrs.clear();
    for (const a of addrs) this.peerAddrs.set(addrKey(a), old.get(addrKey(a)) ?? { host: a.host, port: a.port });
    for (const k of old.keys()) if (!this.peerAddrs.has(k)) this.sessions.delete(k);
    const first = addrs[0]!;
    this.peerAddr = { host: first.host, port: first.port };
    this.peerKey = addrKey(first);
    this.senderPeer = this.givenSender?.peerKey === this.peerKey ? this.givenSender.senderPeer : this.peerKey;
  }

  /** Our delivery key (made once, kept in the snapshot): our peer checks contacts' capabilities with it. */
  deliveryKey(): Uint8Array {
    if (!this.s.deliveryKey) {
      this.s.deliveryKey = hex(this.random(32));
      this.dirty = true;
    }
    return unhex(this.s.deliveryKey);
  }

  emit(e: ClientEvent): void {
    this.events.push(e);
    if (this.events.length > this.o.eventsMax) {
      this.events.shift();
      this.drops.add('events_dropped');
    }
  }

  /** Something waits to be committed. */
  get uncommitted(): boolean {
    return this.dirty || this.changes.pending;
  }

  /** Commit what changed since the last commit, in one batch (throws what the store throws; nothing is lost then). */
  persist(): void {
    if (!this.uncommitted) return;
    const batch = this.changes.take(this.s, this.dirty);
    try {
      this.store.commit(batch);
    } catch (e) {
      this.changes.failed();
      throw e;
    }
    this.changes.committed();
    this.dirty = false;
  }

  putOutbox(m: OutboxMessage): void {
    this.changes.putOutbox(m);
  }

  dropOutbox(id: string): void {
    this.changes.dropOutbox(id);
  }

  /** Remember (sender, id) as seen at `atMs`, sent at `sentAtMs` (the sender's clock). */
  seen(key: string, atMs: number, sentAtMs?: number): void {
    this.dedupe.set(key, atMs);
    if (sentAtMs !== undefined) this.sentAt.set(key, sentAtMs);
    this.changes.setDedupe(key, { atMs, ...(sentAtMs !== undefined ? { sentAtMs } : {}) });
  }

  forgetSeen(key: string): void {
    this.dedupe.delete(key);
    this.sentAt.delete(key);
    this.changes.forgetDedupe(key);
  }

  addHistory(entry: HistoryEntry): void {
    this.changes.addHistory(entry);
  }

  historyState(id: string, contact: string, state: DeliveryState, reason: string | undefined): void {
    this.changes.historyState(id, contact, state, reason);
  }

  /** The certificate (hex) known for `fp`: our own, a contact's, or a remembered stranger's. */
  certOf(fp: string): string | undefined {
    if (fp === this.fingerprint) return hex(this.identity.cert);
    return this.s.contacts.find((c) => c.fingerprint === fp)?.cert ?? this.s.certs[fp];
  }
}

function checkOptions(opts: ClientOptions, now: number): void {
  if (!opts || typeof opts !== 'object') throw new TypeError('client options are required');
  if (!opts.identity || !(opts.identity.cert instanceof Uint8Array)) throw new TypeError('opts.identity must be an Identity');
  if (!opts.peer || typeof opts.peer.host !== 'string' || !Number.isInteger(opts.peer.port)) throw new TypeError('opts.peer must be an Addr');
  if (opts.morePeers !== undefined) {
    if (!Array.isArray(opts.morePeers)) throw new TypeError('opts.morePeers must be a list of Addr');
    for (const a of opts.morePeers) if (!a || typeof a.host !== 'string' || !Number.isInteger(a.port)) throw new TypeError('opts.morePeers must be a list of Addr');
    const max = opts.homePeersMax ?? CLIENT_DEFAULTS.homePeersMax;
    if (opts.morePeers.length + 1 > max) throw new TypeError(`at most ${max} home peers (opts.peer and opts.morePeers)`);
  }
  if (!opts.store || typeof opts.store.load !== 'function' || typeof opts.store.commit !== 'function') throw new TypeError('opts.store must be a ClientStore');
  if (typeof opts.random !== 'function') throw new TypeError('opts.random must be a function');
  if (!Number.isFinite(now)) throw new TypeError('now must be a finite number of milliseconds');
}

/** CLIENT_DEFAULTS overridden by the options given: integers >= 1 (keepaliveIntervalMs and receiptBatchDelayMs >= 0). */
function settingsFrom(opts: ClientOptions): ClientSettings {
  const o: ClientSettings = { ...CLIENT_DEFAULTS };
  for (const k of Object.keys(o) as Array<keyof ClientSettings>) {
    const v = opts[k];
    if (v === undefined) continue;
    const min = k === 'keepaliveIntervalMs' || k === 'receiptBatchDelayMs' || k === 'historyRetainMs' ? 0 : 1;
    if (!(typeof v === 'number' && Number.isInteger(v) && v >= min)) throw new TypeError(`opts.${k} must be an integer >= ${min}`);
    o[k] = v;
  }
  return o;
}
