/**
 * The peerpost client as a sans-I/O state machine. Same surface as the peer (`handle`,
 * `pollTransmit`, `pollTimeout`, `handleTimeout`), plus `pollEvent` and user calls that take `now`.
 * It registers with its own peer and keeps the registration alive, seals every outgoing message
 * to its recipient (src/crypto/seal.ts) and DELIVERs it to the recipient's peer, retransmitting
 * until the peer answers and again until the end-to-end RECEIPT comes back, and opens, checks,
 * stores and acknowledges what its peer pushes. Time, randomness and persistence are injected.
 *
 * Persistence: every call that changes the persisted state saves the whole snapshot through the
 * ClientStore before it returns, so before any datagram it queued (an ACK in particular) can be
 * taken with pollTransmit.
 *
 * Timers (closed set, see deadlines()): register (REGISTER/REGISTER_PROOF retry, exponential from
 * registerInitialMs to registerRetryMaxMs), keepalive (keepaliveIntervalMs +-20%; after an
 * unanswered one a quarter of that; keepaliveMissesBeforeReregister unanswered in a row -> register
 * again), hello (cookie
 * requests per peer, RFC 6298 RTO), lookup (CERT_REQUEST retries), transfer (DELIVER retransmission
 * by RTO, resend after receiptWaitMs doubling to receiptWaitMaxMs, busy backoff, cut short for
 * MAILBOX_FULL and TOO_MANY_UNACKED when a message to the same recipient is delivered), receiptFlush
 * (receipts batched for receiptBatchDelayMs), expiry (message TTL and partial-message age).
 *
 * Bounds (CLIENT_DEFAULTS; behaviour at the bound):
 *   outboxMessagesMax (1000)      unfinished outgoing messages; send() throws PEERPOST_OUTBOX_FULL
 *   sentHistoryMax (500)          finished (delivered/failed) messages kept for status; oldest dropped
 *   unackedPerRecipientMax (8)    parts in flight per recipient not yet acked by it; others wait `queued`
 *                                 (a quarter of the peer's unackedPerSenderMax, which counts this
 *                                 client's receipts to that recipient too)
 *   inboxMessagesMax (1000)       received messages kept; the oldest is dropped
 *   dedupeEntriesMax (8192), dedupeTtlMs (8 days)   (sender, id) seen; oldest/expired forgotten
 *   partialMessagesMax (16), partialBytesMax (2 MiB), partialAgeMaxMs (30 min)   chunk buffers; the
 *                                 oldest is dropped (no receipt was sent for its chunks, so the sender
 *                                 sends them again)
 *   pendingVerifyMax (64)         pushes waiting for their sender's certificate; beyond, a push is
 *                                 left unacknowledged and the peer pushes it again later
 *   receiptTransfersMax (256)     receipt DELIVERs in flight; beyond, a receipt is not sent now (the
 *                                 sender resends its message and gets the receipt then)
 *   peerLinksMax (1024)           per-peer cookie and RTT state; the least recently used idle link is forgotten
 *   contactsMax, groupsMax, certsMax   addContact/createGroup throw; certificates of strangers: oldest forgotten
 *   eventsMax (10000)             unread events; the oldest is dropped and counted (`events_dropped`)
 *   certLookupTriesMax (6)        CERT_REQUEST tries before waiting certRetryMs; unknown senders are
 *                                 rejected after that many tries
 *   messageTtlMs (7 days)         an unfinished message fails with reason `expired`
 *   unknownSenderGraceMs (10 min) pushes from a sender its peer answers NOT_FOUND for stay
 *                                 unacknowledged (pushed again, looked up again) this long after the
 *                                 first NOT_FOUND, then are rejected and acknowledged
 *   UNKNOWN_SENDERS_MAX (1024)    senders remembered for that; the oldest is forgotten
 *                                 (`certificate-not-found` when its recipient's certificate never came)
 *   HELLO_TRIES_MAX (8)           HELLOs for one cookie; then given up until something needs that peer again
 *   RECEIPT_TRIES_MAX (10)        transmissions of one receipt DELIVER without an answer; then dropped
 *                                 (the sender resends its message after receiptWaitMs and gets a new receipt)
 *   transmit queue                holds the datagrams of the calls made since the last pollTransmit
 *
 * Chunked messages are receipted only once complete and stored, so a chunk buffer lost to a bound
 * or a restart costs retransmissions, never the message.
 */
import { DeliveryStatus, MsgType, WireError, WIRE_ERROR_NAMES, LABEL_CHALLENGE, LABEL_REGISTER } from '../protocol/constants.js';
import { DropCounter, decode, encode } from '../protocol/codec.js';
import type { ChallengeMsg, ErrorMsg, Message } from '../protocol/messages.js';
import { checkCertificate, fingerprintOf, toHex, verifyWith, type Identity } from '../identity/certificate.js';
import { addrKey, parseAddr, silentLogger, type Addr, type Logger, type Random, type Transmit } from '../core/types.js';
import { UsageError } from '../core/errors.js';
import { openSealed, seal, verifySender, SEAL_BODY_MAX_BYTES, type Opened } from '../crypto/seal.js';
import {
  ContentKind, TEXT_MAX_BYTES, RECEIPT_IDS_MAX, GROUP_MEMBERS_MAX, GROUP_NAME_MAX_BYTES, VERIFY_BODY_MAX_BYTES,
  decodeChunk, decodeReceipt, decodeText, decodeVerify, encodeChunk, encodeReceipt, encodeText, encodeVerify,
  splitBody, utf8Length, type GroupInfo, type GroupMember,
} from './content.js';
import { RttEstimator } from './rtt.js';
import { Reassembler, type ChunkIn } from './reassembly.js';
import { checkPetname, parseContactAddress } from './contact-address.js';
import {
  emptySnapshot, type ClientSnapshot, type ContactRecord, type DeliveryState, type GroupRecord, type InboxEntry,
  type OutboxMessage, type OutboxPart,
} from './store.js';
import { CLIENT_DEFAULTS, type ClientEvent, type ClientOptions, type ClientSettings, type ClientStats, type ClientTimer } from './types.js';

const LABEL_CHALLENGE_BYTES = Buffer.from(LABEL_CHALLENGE, 'ascii');
const LABEL_REGISTER_BYTES = Buffer.from(LABEL_REGISTER, 'ascii');
const hex = toHex;
const unhex = (s: string): Uint8Array => new Uint8Array(Buffer.from(s, 'hex'));

interface PeerLink {
  readonly key: string;
  readonly addr: Addr;
  readonly rtt: RttEstimator;
  cookie?: { bytes: Uint8Array; atMs: number };
  hello?: { nonce: Uint8Array; attempt: number; sentAtMs: number; deadline: number };
  usedAtMs: number;
}

/** One DELIVER being sent: a part of an outgoing message, or a receipt. */
interface Transfer {
  readonly id: string;
  readonly idBytes: Uint8Array;
  readonly to: string;
  readonly toBytes: Uint8Array;
  readonly peerKey: string;
  readonly blob: Uint8Array;
  readonly msg?: OutboxMessage;
  readonly part?: OutboxPart;
  awaiting: boolean;
  /** Transmissions of the current round (Karn: only a round with one is sampled). */
  attempt: number;
  sentAtMs: number;
  sentOnce: boolean;
  deadline: number;
  resends: number;
  busy: number;
  /**
   * Refused with TOO_MANY_UNACKED or MAILBOX_FULL: besides its busy backoff, it goes again as soon
   * as its peer reports another message to the same recipient delivered (a slot is free then).
   */
  slotWait: boolean;
}

interface Lookup {
  readonly fp: string;
  readonly peerKey: string;
  awaiting: boolean;
  attempt: number;
  tries: number;
  deadline: number;
  forIncoming: boolean;
}

interface PendingPush {
  readonly pushId: Uint8Array;
  readonly opened: Opened;
}

type RegState = 'idle' | 'challenge' | 'proof' | 'registered' | 'blocked';
/** HELLO transmissions before a cookie request is given up (started again when needed). */
export const HELLO_TRIES_MAX = 8;
/** Peers with a directory request outstanding at once. */
export const DIRECTORY_REQUESTS_MAX = 16;
/** Senders remembered as not (yet) known by their peer. */
export const UNKNOWN_SENDERS_MAX = 1024;
/** DELIVER transmissions of a receipt before it is given up. */
export const RECEIPT_TRIES_MAX = 10;
const BUSY_ERRORS: ReadonlySet<number> = new Set([WireError.TOO_MANY_UNACKED, WireError.MAILBOX_FULL, WireError.STORAGE_FULL, WireError.RATE_LIMITED]);

export class Client {
  readonly fingerprint: string;
  readonly peerKey: string;
  readonly senderPeer: string;
  private readonly o: ClientSettings;
  private readonly identity: Identity;
  private readonly peerAddr: Addr;
  private readonly random: Random;
  private readonly log: Logger;
  private readonly store: ClientOptions['store'];
  private s: ClientSnapshot;
  private dirty = false;

  private reg: { state: RegState; nonce?: Uint8Array; tries: number; deadline?: number; unavailableSent: boolean; pendingPin?: string } = {
    state: 'idle', tries: 0, unavailableSent: false,
  };
  private keepalive: { deadline?: number; outstanding: boolean; misses: number } = { outstanding: false, misses: 0 };
  private readonly links = new Map<string, PeerLink>();
  private readonly transfers = new Map<string, Transfer>();
  private readonly lookups = new Map<string, Lookup>();
  /** Outstanding DIR_LIST per peer key: the page asked for. */
  private readonly dirPending = new Map<string, number>();
  /** Senders whose certificate their peer did not know: when that was first answered. */
  private readonly unknownSince = new Map<string, number>();
  private readonly pendingIncoming = new Map<string, PendingPush[]>();
  private pendingIncomingCount = 0;
  private readonly reassembler: Reassembler;
  private readonly receiptQueue = new Map<string, { peer: string; ids: Set<string> }>();
  private receiptFlushAt: number | undefined;
  private readonly dedupe = new Map<string, number>();
  private readonly events: ClientEvent[] = [];
  private out: Transmit[] = [];
  private readonly drops = new DropCounter();
  private datagramsIn = 0;
  private datagramsOut = 0;

  constructor(opts: ClientOptions, now: number) {
    if (!opts || typeof opts !== 'object') throw new TypeError('client options are required');
    if (!opts.identity || !(opts.identity.cert instanceof Uint8Array)) throw new TypeError('opts.identity must be an Identity');
    if (!opts.peer || typeof opts.peer.host !== 'string' || !Number.isInteger(opts.peer.port)) throw new TypeError('opts.peer must be an Addr');
    if (!opts.store || typeof opts.store.load !== 'function') throw new TypeError('opts.store must be a ClientStore');
    if (typeof opts.random !== 'function') throw new TypeError('opts.random must be a function');
    if (!Number.isFinite(now)) throw new TypeError('now must be a finite number of milliseconds');
    const o: ClientSettings = { ...CLIENT_DEFAULTS };
    for (const k of Object.keys(o) as Array<keyof ClientSettings>) {
      const v = opts[k];
      if (v === undefined) continue;
      const min = k === 'keepaliveIntervalMs' || k === 'receiptBatchDelayMs' ? 0 : 1;
      if (!(typeof v === 'number' && Number.isInteger(v) && v >= min)) throw new TypeError(`opts.${k} must be an integer >= ${min}`);
      o[k] = v;
    }
    this.o = o;
    this.identity = opts.identity;
    this.fingerprint = opts.identity.fingerprintHex;
    this.peerAddr = { host: opts.peer.host, port: opts.peer.port };
    this.peerKey = addrKey(this.peerAddr);
    this.senderPeer = opts.senderPeer ?? this.peerKey;
    if (!parseAddr(this.senderPeer)) throw new TypeError('opts.senderPeer must be host:port');
    this.random = opts.random;
    this.log = opts.logger ?? silentLogger;
    this.store = opts.store;
    this.reassembler = new Reassembler(o, (reason) => this.drops.add(reason));
    this.s = opts.store.load() ?? emptySnapshot();
    for (const d of this.s.dedupe) this.dedupe.set(d.key, d.atMs);
    for (const m of this.s.outbox) this.restoreTransfers(now, m);
    this.startRegistration(now);
  }

  // -------------------------------------------------------------------------------------------
  // sans-I/O surface

  handle(now: number, from: Addr, data: Uint8Array): void {
    this.datagramsIn++;
    const r = decode(data, this.drops);
    if (r.ok) {
      try {
        this.dispatch(now, from, r.msg);
      } catch (e) {
        this.drops.add('internal_error');
        this.log.error({ err: (e as Error).message }, 'client failed to handle a datagram');
      }
    }
    this.pump(now);
  }

  pollTransmit(): Transmit | undefined {
    const t = this.out.shift();
    if (t) this.datagramsOut++;
    return t;
  }

  pollEvent(): ClientEvent | undefined {
    return this.events.shift();
  }

  pollTimeout(): number | undefined {
    let min: number | undefined;
    for (const d of Object.values(this.deadlines())) if (d !== undefined && (min === undefined || d < min)) min = d;
    return min;
  }

  handleTimeout(now: number): void {
    const r = this.reg;
    if (r.deadline !== undefined && r.deadline <= now) this.registerTimeout(now);
    const k = this.keepalive;
    if (k.deadline !== undefined && k.deadline <= now) this.keepaliveTimeout(now);
    for (const link of this.links.values()) {
      if (!link.hello || link.hello.deadline > now) continue;
      // Give up after HELLO_TRIES_MAX; whoever still needs a cookie asks again later.
      if (link.hello.attempt >= HELLO_TRIES_MAX) delete link.hello;
      else this.sendHello(now, link);
    }
    if (this.receiptFlushAt !== undefined && this.receiptFlushAt <= now) this.flushReceipts(now);
    this.expire(now);
    this.pump(now);
  }

  /** The deadline table of the named timers. */
  deadlines(): Record<ClientTimer, number | undefined> {
    let hello: number | undefined;
    for (const l of this.links.values()) if (l.hello) hello = min(hello, l.hello.deadline);
    let lookup: number | undefined;
    for (const l of this.lookups.values()) if (Number.isFinite(l.deadline)) lookup = min(lookup, l.deadline);
    let transfer: number | undefined;
    for (const t of this.transfers.values()) if (Number.isFinite(t.deadline)) transfer = min(transfer, t.deadline);
    let expiry: number | undefined;
    for (const m of this.s.outbox) if (m.state === 'queued' || m.state === 'held') expiry = min(expiry, m.createdAtMs + this.o.messageTtlMs);
    const partial = this.reassembler.nextExpiry();
    if (partial !== undefined) expiry = min(expiry, partial);
    return {
      register: this.reg.deadline,
      keepalive: this.keepalive.deadline,
      hello,
      lookup,
      transfer,
      receiptFlush: this.receiptFlushAt,
      expiry,
    };
  }

  stats(): ClientStats {
    return {
      registered: this.reg.state === 'registered',
      outboxUnfinished: this.s.outbox.filter((m) => m.state === 'queued' || m.state === 'held').length,
      transfers: this.transfers.size,
      inbox: this.s.inbox.length,
      partials: this.reassembler.size,
      datagramsIn: this.datagramsIn,
      datagramsOut: this.datagramsOut,
      drops: this.drops.toJSON(),
    };
  }

  // -------------------------------------------------------------------------------------------
  // user calls

  get registered(): boolean {
    return this.reg.state === 'registered';
  }

  /** The address others use to reach this client: `fingerprint@senderPeer`. */
  get address(): string {
    return `${this.fingerprint}@${this.senderPeer}`;
  }

  /** The network may have changed (new address, NAT): register again now. */
  networkChanged(now: number): void {
    if (this.reg.state !== 'blocked') this.startRegistration(now);
    for (const l of this.links.values()) delete l.cookie;
    this.pump(now);
  }

  /** Ask our peer for waiting messages. */
  poll(now: number): void {
    if (this.reg.state === 'registered') this.send1(this.peerAddr, { type: MsgType.POLL });
    this.pump(now);
  }

  /** Accept the new identity of our own peer after a `peer-identity-changed` event. */
  acceptPeerIdentity(now: number): void {
    if (this.reg.state !== 'blocked' || !this.reg.pendingPin) throw new UsageError('PEERPOST_NO_IDENTITY_CHANGE', 'no changed peer identity is waiting for acceptance');
    this.s.peerFingerprint = this.reg.pendingPin;
    this.dirty = true;
    this.reg.state = 'idle';
    this.startRegistration(now);
    this.pump(now);
  }

  get pinnedPeerFingerprint(): string | undefined {
    return this.s.peerFingerprint;
  }

  /**
   * Add a contact `fp@host:port` under a unique petname (default: the first 12 hex digits). The
   * same petname with another fingerprint flags the contact `changed`. A certificate may be given
   * (checked against the fingerprint); otherwise it is fetched from the contact's peer.
   */
  addContact(now: number, address: string, petname?: string, cert?: Uint8Array): ContactRecord {
    const a = parseContactAddress(address);
    const name = checkPetname(petname ?? a.fingerprint.slice(0, 12));
    if (cert !== undefined) this.checkGivenCert(now, a.fingerprint, cert);
    const byName = this.s.contacts.find((c) => c.petname === name);
    const byFp = this.s.contacts.find((c) => c.fingerprint === a.fingerprint);
    if (byFp && byFp !== byName) {
      throw new UsageError('PEERPOST_CONTACT_EXISTS', `fingerprint ${a.fingerprint} is already the contact "${byFp.petname}"`);
    }
    let c: ContactRecord;
    if (byName) {
      c = byName;
      if (byName.fingerprint !== a.fingerprint) {
        const previous = byName.fingerprint;
        c.previousFingerprint = previous;
        c.fingerprint = a.fingerprint;
        delete c.cert;
        c.changed = true;
        c.verification = 'unverified';
        this.emit({ type: 'contact-changed', petname: name, fingerprint: a.fingerprint, previous });
        this.failMessagesTo(now, previous, 'contact-changed');
      }
      c.peer = a.peerKey;
    } else {
      if (this.s.contacts.length >= this.o.contactsMax) throw new UsageError('PEERPOST_CONTACTS_FULL', `at most ${this.o.contactsMax} contacts`);
      c = { petname: name, fingerprint: a.fingerprint, peer: a.peerKey, verification: 'unverified', changed: false, addedAtMs: now };
      this.s.contacts.push(c);
    }
    const known = cert ? hex(cert) : this.s.certs[a.fingerprint];
    if (known && !c.cert) c.cert = known;
    this.dirty = true;
    if (!c.cert) this.startLookup(now, a.fingerprint, a.peerKey, false);
    this.pump(now);
    return { ...c };
  }

  /** Accept a contact flagged `changed`. */
  confirmContact(now: number, petname: string): void {
    const c = this.contactByName(petname);
    c.changed = false;
    delete c.previousFingerprint;
    this.dirty = true;
    this.pump(now);
  }

  /** Set a contact's verification state (the safety-code exchange uses this). */
  setVerification(now: number, petnameOrFp: string, state: ContactRecord['verification']): void {
    const c = this.s.contacts.find((x) => x.petname === petnameOrFp || x.fingerprint === petnameOrFp);
    if (!c) throw new UsageError('PEERPOST_UNKNOWN_CONTACT', `no contact "${petnameOrFp}"`);
    c.verification = state;
    this.dirty = true;
    this.pump(now);
  }

  removeContact(now: number, petname: string): void {
    const c = this.contactByName(petname);
    this.s.contacts = this.s.contacts.filter((x) => x !== c);
    this.dirty = true;
    this.pump(now);
  }

  contacts(): ContactRecord[] {
    return this.s.contacts.map((c) => ({ ...c }));
  }

  groups(): GroupInfo[] {
    return this.s.groups.map((g) => ({ id: g.id, name: g.name, members: g.members.map((m) => ({ ...m })) }));
  }

  inbox(): InboxEntry[] {
    return this.s.inbox.map((m) => ({ ...m }));
  }

  /** Outgoing messages (unfinished and recent finished ones), without their blobs. */
  outbox(): Array<{ id: string; to: string; state: DeliveryState; reason?: string; parts: number; receipts: number; createdAtMs: number }> {
    return this.s.outbox.map((m) => ({
      id: m.id, to: m.to, state: m.state, ...(m.reason ? { reason: m.reason } : {}), parts: m.parts.length,
      receipts: m.parts.filter((p) => p.receipt).length, createdAtMs: m.createdAtMs,
    }));
  }

  messageState(id: string): { state: DeliveryState; reason?: string } | undefined {
    const m = this.s.outbox.find((x) => x.id === id);
    return m ? { state: m.state, ...(m.reason ? { reason: m.reason } : {}) } : undefined;
  }

  /**
   * Send `text` to each recipient (petname, fingerprint of a contact, or `fp@host:port`), through
   * each one's own peer. Returns one message id (hex) per recipient, in order.
   */
  send(now: number, recipients: readonly string[], text: string): string[] {
    if (typeof text !== 'string') throw new UsageError('PEERPOST_TEXT', 'text must be a string');
    if (utf8Length(text) > TEXT_MAX_BYTES) throw new UsageError('PEERPOST_TEXT_TOO_LONG', `text is longer than ${TEXT_MAX_BYTES} UTF-8 bytes`);
    if (!Array.isArray(recipients) || recipients.length === 0) throw new UsageError('PEERPOST_NO_RECIPIENT', 'at least one recipient is required');
    const targets = recipients.map((r) => this.resolve(now, r));
    this.checkOutboxRoom(targets.length);
    const body = encodeText({ text });
    const ids = targets.map((t) => this.enqueue(now, t, ContentKind.TEXT, body));
    this.pump(now);
    return ids;
  }

  /** Create a group of contacts (and `fp@host:port` addresses); this client is a member. Returns its id. */
  createGroup(now: number, name: string, members: readonly string[]): string {
    if (typeof name !== 'string' || name.length === 0 || utf8Length(name) > GROUP_NAME_MAX_BYTES) {
      throw new UsageError('PEERPOST_GROUP_NAME', `group name must be 1..${GROUP_NAME_MAX_BYTES} UTF-8 bytes`);
    }
    if (this.s.groups.some((g) => g.name === name)) throw new UsageError('PEERPOST_GROUP_EXISTS', `a group "${name}" exists`);
    if (this.s.groups.length >= this.o.groupsMax) throw new UsageError('PEERPOST_GROUPS_FULL', `at most ${this.o.groupsMax} groups`);
    const list: GroupMember[] = [{ fingerprint: this.fingerprint, peer: this.senderPeer }];
    for (const m of members) {
      const t = this.resolve(now, m);
      if (!list.some((x) => x.fingerprint === t.fp)) list.push({ fingerprint: t.fp, peer: t.peer });
    }
    if (list.length > GROUP_MEMBERS_MAX) throw new UsageError('PEERPOST_GROUP_TOO_LARGE', `a group has at most ${GROUP_MEMBERS_MAX} members`);
    const id = hex(this.random(16));
    this.s.groups.push({ id, name, members: list });
    this.dirty = true;
    this.pump(now);
    return id;
  }

  /** Send `text` to every member of a group (by id or name). Returns one id per other member. */
  sendGroup(now: number, group: string, text: string): string[] {
    const g = this.s.groups.find((x) => x.id === group || x.name === group);
    if (!g) throw new UsageError('PEERPOST_UNKNOWN_GROUP', `no group "${group}"`);
    if (utf8Length(text) > TEXT_MAX_BYTES) throw new UsageError('PEERPOST_TEXT_TOO_LONG', `text is longer than ${TEXT_MAX_BYTES} UTF-8 bytes`);
    const others = g.members.filter((m) => m.fingerprint !== this.fingerprint);
    this.checkOutboxRoom(others.length);
    const body = encodeText({ text, group: { id: g.id, name: g.name, members: g.members } });
    const ids = others.map((m) => {
      const c = this.s.contacts.find((x) => x.fingerprint === m.fingerprint);
      if (c?.changed) throw new UsageError('PEERPOST_CONTACT_CHANGED', `contact "${c.petname}" changed identity; confirm it first`);
      return this.enqueue(now, { fp: m.fingerprint, peer: c?.peer ?? m.peer }, ContentKind.TEXT, body);
    });
    this.pump(now);
    return ids;
  }

  /**
   * Ask a peer (default our own) for a page of its directory; the answer comes as a `directory`
   * event. One request per peer at a time (DIRECTORY_REQUESTS_MAX peers); a lost request is not
   * retried: ask again.
   */
  listDirectory(now: number, peer?: string, page = 0): void {
    const key = peer === undefined ? this.peerKey : peer;
    const addr = parseAddr(key);
    if (!addr) throw new UsageError('PEERPOST_BAD_ADDRESS', `peer address must be HOST:PORT, not "${key}"`);
    if (!Number.isInteger(page) || page < 0 || page > 0xffff) throw new UsageError('PEERPOST_BAD_OPTION', 'page must be 0..65535');
    if (!this.dirPending.has(addrKey(addr)) && this.dirPending.size >= DIRECTORY_REQUESTS_MAX) {
      throw new UsageError('PEERPOST_BUSY', `at most ${DIRECTORY_REQUESTS_MAX} directory requests at once`);
    }
    const link = this.link(now, addrKey(addr));
    this.dirPending.set(link.key, page);
    const cookie = this.cookieFor(now, link);
    if (cookie) this.send1(link.addr, { type: MsgType.DIR_LIST, cookie, page });
    this.pump(now);
  }

  /** List this client in its own peer's directory under `name` (empty: leave it). */
  joinDirectory(now: number, name: string): void {
    if (this.reg.state !== 'registered') throw new UsageError('PEERPOST_NOT_REGISTERED', 'not registered with the peer yet; try again in a moment');
    this.send1(this.peerAddr, { type: MsgType.DIR_JOIN, name });
    this.pump(now);
  }

  /** Send an opaque VERIFY body (safety-code exchange) to a contact. Returns the message id. */
  sendVerify(now: number, contact: string, body: Uint8Array): string {
    if (!(body instanceof Uint8Array) || body.length > VERIFY_BODY_MAX_BYTES) {
      throw new UsageError('PEERPOST_VERIFY_BODY', `verify body must be at most ${VERIFY_BODY_MAX_BYTES} bytes`);
    }
    const t = this.resolve(now, contact);
    this.checkOutboxRoom(1);
    const id = this.enqueue(now, t, ContentKind.VERIFY, encodeVerify(body));
    this.pump(now);
    return id;
  }

  // -------------------------------------------------------------------------------------------
  // registration and keepalive

  private startRegistration(now: number): void {
    if (this.reg.state === 'blocked') return;
    this.reg.state = 'challenge';
    this.reg.tries = 0;
    this.keepalive = { outstanding: false, misses: 0 };
    this.sendRegister(now);
  }

  private sendRegister(now: number): void {
    const r = this.reg;
    r.nonce = this.random(16);
    r.state = 'challenge';
    this.send1(this.peerAddr, { type: MsgType.REGISTER, cert: this.identity.cert, nonce: r.nonce });
    r.deadline = now + Math.min(this.o.registerRetryMaxMs, this.o.registerInitialMs * 2 ** Math.min(r.tries, 20));
  }

  private registerTimeout(now: number): void {
    const r = this.reg;
    r.tries++;
    if (r.tries >= this.o.registerTriesBeforeUnavailable && !r.unavailableSent) {
      r.unavailableSent = true;
      this.emit({ type: 'peer-unavailable', peer: this.peerKey, tries: r.tries });
    }
    this.sendRegister(now);
  }

  private onChallengeForRegistration(now: number, m: ChallengeMsg): void {
    const r = this.reg;
    const check = checkCertificate(m.peerCert, now);
    if (!check.ok || !r.nonce) {
      this.drops.add('bad_peer_certificate');
      return;
    }
    if (!verifyWith(check.publicKey, Buffer.concat([LABEL_CHALLENGE_BYTES, r.nonce, m.cookie]), m.sig)) {
      this.drops.add('bad_challenge_signature');
      return;
    }
    const fp = hex(check.fingerprint);
    if (this.s.peerFingerprint === undefined) {
      this.s.peerFingerprint = fp;
      this.dirty = true;
    } else if (this.s.peerFingerprint !== fp) {
      r.state = 'blocked';
      r.pendingPin = fp;
      delete r.deadline;
      delete this.keepalive.deadline;
      this.emit({ type: 'peer-identity-changed', peer: this.peerKey, expected: this.s.peerFingerprint, actual: fp });
      return;
    }
    this.link(now, this.peerKey).cookie = { bytes: m.cookie, atMs: now };
    const sig = this.identity.sign(Buffer.concat([LABEL_REGISTER_BYTES, m.cookie, check.fingerprint, r.nonce]));
    this.send1(this.peerAddr, { type: MsgType.REGISTER_PROOF, cert: this.identity.cert, nonce: r.nonce, cookie: m.cookie, sig });
    r.state = 'proof';
    // The peer answers: only a lost PROOF or OK stands between us, so retry at the first pace.
    r.tries = 0;
    r.deadline = now + this.o.registerInitialMs;
  }

  private onOk(now: number): void {
    const r = this.reg;
    if (r.state === 'proof') {
      r.state = 'registered';
      r.tries = 0;
      r.unavailableSent = false;
      delete r.deadline;
      this.keepalive = { outstanding: false, misses: 0 };
      this.scheduleKeepalive(now);
      this.emit({ type: 'registered', peer: this.peerKey });
    } else if (r.state === 'registered') {
      this.keepalive.outstanding = false;
      this.keepalive.misses = 0;
    }
  }

  /** Next keepalive in keepaliveIntervalMs +-20%; after an unanswered one, a quarter of that. */
  private scheduleKeepalive(now: number, probe = false): void {
    const base = probe ? Math.ceil(this.o.keepaliveIntervalMs / 4) : this.o.keepaliveIntervalMs;
    if (base === 0) {
      delete this.keepalive.deadline;
      return;
    }
    const r = this.random(2);
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
    if (k.misses >= this.o.keepaliveMissesBeforeReregister) {
      delete k.deadline;
      this.startRegistration(now);
      return;
    }
    const probe = k.outstanding;
    k.outstanding = true;
    this.send1(this.peerAddr, { type: MsgType.KEEPALIVE });
    this.scheduleKeepalive(now, probe);
  }

  // -------------------------------------------------------------------------------------------
  // dispatch

  private dispatch(now: number, from: Addr, m: Message): void {
    const fromKey = addrKey(from);
    const own = fromKey === this.peerKey;
    switch (m.type) {
      case MsgType.CHALLENGE:
        if (own && this.reg.nonce && this.reg.state === 'challenge' && this.challengeNonceMatches(m, this.reg.nonce, now)) {
          this.onChallengeForRegistration(now, m);
        } else this.onChallengeForCookie(now, fromKey, m);
        return;
      case MsgType.OK:
        if (own) this.onOk(now);
        return;
      case MsgType.REGISTER_AGAIN:
        if (own && this.reg.state !== 'blocked' && this.reg.state !== 'challenge') this.startRegistration(now);
        return;
      case MsgType.PUSH:
        if (!own) return void this.drops.add('push_not_from_own_peer');
        this.onPush(now, m.id, m.blob);
        return;
      case MsgType.RESULT:
        this.onResult(now, fromKey, m.id, m.status);
        return;
      case MsgType.ERROR:
        this.onError(now, fromKey, m);
        return;
      case MsgType.CERT:
        this.onCert(now, fromKey, m.fingerprint, m.cert);
        return;
      case MsgType.DIR_PAGE:
        if (!this.dirPending.delete(fromKey)) return void this.drops.add('unexpected_dir_page');
        this.emit({
          type: 'directory', peer: fromKey, page: m.page, pages: m.pages,
          entries: m.entries.map((e) => ({ name: e.name, fingerprint: hex(e.fingerprint), address: `${hex(e.fingerprint)}@${fromKey}` })),
        });
        return;
      default:
        this.drops.add(`unexpected_${m.type}`);
    }
  }

  /** A registration CHALLENGE is one whose signature covers the registration nonce. */
  private challengeNonceMatches(m: ChallengeMsg, nonce: Uint8Array, now: number): boolean {
    const check = checkCertificate(m.peerCert, now);
    return check.ok && verifyWith(check.publicKey, Buffer.concat([LABEL_CHALLENGE_BYTES, nonce, m.cookie]), m.sig);
  }

  private onChallengeForCookie(now: number, fromKey: string, m: ChallengeMsg): void {
    const link = this.links.get(fromKey);
    if (!link?.hello) return void this.drops.add('unexpected_challenge');
    const check = checkCertificate(m.peerCert, now);
    if (!check.ok || !verifyWith(check.publicKey, Buffer.concat([LABEL_CHALLENGE_BYTES, link.hello.nonce, m.cookie]), m.sig)) {
      return void this.drops.add('bad_challenge_signature');
    }
    if (link.hello.attempt === 1) link.rtt.sample(now - link.hello.sentAtMs);
    link.cookie = { bytes: m.cookie, atMs: now };
    delete link.hello;
    for (const t of this.transfers.values()) if (t.peerKey === fromKey && !t.awaiting) t.deadline = Math.min(t.deadline, now);
    for (const l of this.lookups.values()) if (l.peerKey === fromKey && !l.awaiting) l.deadline = Math.min(l.deadline, now);
    const page = this.dirPending.get(fromKey);
    if (page !== undefined) this.send1(link.addr, { type: MsgType.DIR_LIST, cookie: m.cookie, page });
  }

  // -------------------------------------------------------------------------------------------
  // peer links and cookies

  private link(now: number, key: string): PeerLink {
    let l = this.links.get(key);
    if (!l) {
      const addr = parseAddr(key);
      if (!addr) throw new UsageError('PEERPOST_CONTACT_PEER', `bad peer address ${key}`);
      if (this.links.size >= this.o.peerLinksMax) this.evictLink();
      l = { key, addr, rtt: new RttEstimator(), usedAtMs: now };
      this.links.set(key, l);
    }
    l.usedAtMs = now;
    return l;
  }

  private evictLink(): void {
    let victim: PeerLink | undefined;
    for (const l of this.links.values()) {
      if (l.key === this.peerKey || l.hello) continue;
      if (!victim || l.usedAtMs < victim.usedAtMs) victim = l;
    }
    if (victim) this.links.delete(victim.key);
  }

  /** A fresh cookie for the peer, or undefined after asking for one. */
  private cookieFor(now: number, link: PeerLink): Uint8Array | undefined {
    if (link.cookie && now - link.cookie.atMs < this.o.cookieReuseMs) return link.cookie.bytes;
    delete link.cookie;
    if (!link.hello) {
      link.hello = { nonce: this.random(16), attempt: 0, sentAtMs: now, deadline: now };
      this.sendHello(now, link);
    }
    return undefined;
  }

  private sendHello(now: number, link: PeerLink): void {
    const h = link.hello!;
    this.send1(link.addr, { type: MsgType.HELLO, nonce: h.nonce });
    h.sentAtMs = now;
    h.deadline = now + link.rtt.timeoutMs(h.attempt);
    h.attempt++;
  }

  // -------------------------------------------------------------------------------------------
  // outgoing messages

  private resolve(now: number, r: string): { fp: string; peer: string } {
    if (typeof r !== 'string') throw new UsageError('PEERPOST_RECIPIENT', 'recipient must be a string');
    let c = this.s.contacts.find((x) => x.petname === r || x.fingerprint === r);
    let peer: string | undefined;
    if (!c && r.includes('@')) {
      const a = parseContactAddress(r);
      c = this.s.contacts.find((x) => x.fingerprint === a.fingerprint);
      peer = a.peerKey;
      if (!c) return { fp: a.fingerprint, peer };
    }
    if (!c) throw new UsageError('PEERPOST_UNKNOWN_CONTACT', `no contact "${r}" (add it with fp@host:port)`);
    if (c.changed) throw new UsageError('PEERPOST_CONTACT_CHANGED', `contact "${c.petname}" changed identity; confirm it before sending`);
    if (c.verification === 'mismatch') throw new UsageError('PEERPOST_CONTACT_MISMATCH', `contact "${c.petname}" failed verification`);
    void now;
    return { fp: c.fingerprint, peer: peer ?? c.peer };
  }

  private checkOutboxRoom(n: number): void {
    const open = this.s.outbox.filter((m) => m.state === 'queued' || m.state === 'held').length;
    if (open + n > this.o.outboxMessagesMax) {
      throw new UsageError('PEERPOST_OUTBOX_FULL', `the outbox holds ${open} unfinished messages (at most ${this.o.outboxMessagesMax})`);
    }
  }

  private enqueue(now: number, t: { fp: string; peer: string }, kind: number, body: Uint8Array): string {
    const id = hex(this.random(16));
    const m: OutboxMessage = { id, to: t.fp, toPeer: t.peer, kind, createdAtMs: Math.floor(now), state: 'queued', body: hex(body), parts: [] };
    this.s.outbox.push(m);
    this.dirty = true;
    this.prepare(now, m);
    this.emitDelivery(m);
    return id;
  }

  private certOf(fp: string): string | undefined {
    if (fp === this.fingerprint) return hex(this.identity.cert);
    return this.s.contacts.find((c) => c.fingerprint === fp)?.cert ?? this.s.certs[fp];
  }

  /** Seal a message once its recipient's certificate is known; else look it up. */
  private prepare(now: number, m: OutboxMessage): void {
    if (m.body === undefined) return;
    const certHex = this.certOf(m.to);
    if (!certHex) {
      if (!m.reason) m.reason = 'certificate-pending';
      this.startLookup(now, m.to, m.toPeer, false);
      return;
    }
    const cert = unhex(certHex);
    const body = unhex(m.body);
    const sealOne = (id: Uint8Array, kind: number, b: Uint8Array): OutboxPart => ({
      id: hex(id),
      blob: hex(seal({ sender: this.identity, senderPeer: this.senderPeer, recipientCert: cert, content: { kind, id, sentAtMs: m.createdAtMs, body: b }, random: this.random })),
      peerStatus: 'none',
      receipt: false,
    });
    if (body.length <= SEAL_BODY_MAX_BYTES) {
      m.parts = [sealOne(unhex(m.id), m.kind, body)];
    } else {
      const pieces = splitBody(body);
      m.parts = pieces.map((data, index) =>
        sealOne(this.random(16), ContentKind.CHUNK, encodeChunk({ messageId: unhex(m.id), index, count: pieces.length, innerKind: m.kind, data })));
    }
    delete m.body;
    if (m.reason === 'certificate-pending' || m.reason === 'certificate-not-found') delete m.reason;
    this.dirty = true;
    this.restoreTransfers(now, m);
  }

  private restoreTransfers(now: number, m: OutboxMessage): void {
    if (m.state !== 'queued' && m.state !== 'held') return;
    if (m.body !== undefined) {
      this.startLookup(now, m.to, m.toPeer, false);
      return;
    }
    for (const p of m.parts) {
      if (p.receipt || this.transfers.has(p.id)) continue;
      this.transfers.set(p.id, {
        id: p.id, idBytes: unhex(p.id), to: m.to, toBytes: unhex(m.to), peerKey: m.toPeer, blob: unhex(p.blob), msg: m, part: p,
        awaiting: false, attempt: 0, sentAtMs: 0, sentOnce: p.peerStatus !== 'none', deadline: now, resends: 0, busy: 0, slotWait: false,
      });
    }
  }

  /** Parts sent to a recipient and not yet acknowledged by it (its peer's unacked count). */
  private inFlightTo(fp: string): number {
    let n = 0;
    for (const t of this.transfers.values()) {
      if (t.part && t.to === fp && (t.awaiting || t.part.peerStatus === 'held' || (t.sentOnce && t.part.peerStatus === 'none'))) n++;
    }
    return n;
  }

  /** Act on every transfer and lookup whose time has come, then save if anything changed. */
  private pump(now: number): void {
    const window = new Map<string, number>();
    for (const t of [...this.transfers.values()]) {
      if (t.deadline > now) continue;
      if (!t.part && t.attempt >= RECEIPT_TRIES_MAX) {
        // The sender's peer does not answer: the sender resends its message and gets a receipt then.
        this.transfers.delete(t.id);
        this.drops.add('receipt_unanswered');
        continue;
      }
      if (t.awaiting) {
        this.transmit(now, t);
        continue;
      }
      if (t.part && !t.sentOnce) {
        const used = window.get(t.to) ?? this.inFlightTo(t.to);
        if (used >= this.o.unackedPerRecipientMax) {
          this.setReason(t.msg!, 'waiting-for-recipient');
          window.set(t.to, used);
          t.deadline = Number.POSITIVE_INFINITY; // woken by wake() when a slot frees
          continue;
        }
        window.set(t.to, used + 1);
      }
      t.attempt = 0;
      this.transmit(now, t);
    }
    for (const l of this.lookups.values()) if (l.deadline <= now) this.sendLookup(now, l);
    if (this.dirty) this.persist(now);
  }

  /** A part to `fp` was acknowledged: let the parts waiting for a window slot try again. */
  /**
   * `slots` messages to `fp` were delivered (through the peer at `peerKey`, or anywhere when it is
   * not given: receipts): transfers to `fp` waiting for the window go now, and as many of those
   * refused there for want of a slot (one slot freed per delivered message, so the others do not
   * go only to be refused again).
   */
  private wake(now: number, fp: string, slots: number, peerKey?: string): void {
    for (const t of this.transfers.values()) {
      if (t.to !== fp) continue;
      if (t.deadline === Number.POSITIVE_INFINITY) t.deadline = now;
      else if (slots > 0 && t.slotWait && (peerKey === undefined || t.peerKey === peerKey)) {
        t.slotWait = false;
        slots--;
        if (t.deadline > now) t.deadline = now;
      }
    }
  }

  private transmit(now: number, t: Transfer): void {
    const link = this.link(now, t.peerKey);
    const cookie = this.cookieFor(now, link);
    if (!cookie) {
      t.awaiting = false;
      t.deadline = now + Math.max(this.o.busyBackoffInitialMs, link.rtt.timeoutMs(link.hello?.attempt ?? 0));
      return;
    }
    this.send1(link.addr, { type: MsgType.DELIVER, cookie, to: t.toBytes, id: t.idBytes, blob: t.blob });
    t.awaiting = true;
    t.slotWait = false;
    t.sentOnce = true;
    t.sentAtMs = now;
    t.deadline = now + link.rtt.timeoutMs(t.attempt);
    t.attempt++;
  }

  private onResult(now: number, fromKey: string, idBytes: Uint8Array, status: number): void {
    const t = this.transfers.get(hex(idBytes));
    if (!t || t.peerKey !== fromKey) return void this.drops.add('unexpected_result');
    const link = this.link(now, fromKey);
    if (!t.part || !t.msg) {
      this.transfers.delete(t.id);
      return;
    }
    const p = t.part;
    const was = p.peerStatus;
    if (status === DeliveryStatus.DELIVERED || was === 'none') p.peerStatus = status === DeliveryStatus.DELIVERED ? 'acked' : 'held';
    if (p.peerStatus !== was) this.dirty = true;
    if (p.peerStatus === 'acked') this.wake(now, t.to, 1, fromKey);
    if (!t.awaiting) {
      // A late answer to an earlier transmission: note the state, keep the schedule.
      this.updateState(t.msg);
      return;
    }
    if (t.attempt === 1) link.rtt.sample(now - t.sentAtMs);
    t.awaiting = false;
    t.busy = 0;
    const wait = Math.min(this.o.receiptWaitMaxMs, this.o.receiptWaitMs * 2 ** Math.min(t.resends, 20));
    t.resends++;
    t.deadline = now + wait;
    this.updateState(t.msg);
  }

  private onError(now: number, fromKey: string, e: ErrorMsg): void {
    const link = this.links.get(fromKey);
    if (fromKey === this.peerKey && e.ref.length === 0 && (this.reg.state === 'proof' || this.reg.state === 'challenge')) {
      this.drops.add(`register_error_${WIRE_ERROR_NAMES[e.code] ?? e.code}`);
      if (this.reg.deadline !== undefined) this.reg.deadline = Math.min(this.reg.deadline, now + this.o.registerInitialMs);
      return;
    }
    if (e.code === WireError.BAD_COOKIE && link) delete link.cookie;
    if (e.ref.length === 0 && (e.code === WireError.DIRECTORY_DISABLED || e.code === WireError.BAD_REQUEST) && this.dirPending.delete(fromKey)) {
      this.emit({ type: 'directory', peer: fromKey, page: 0, pages: 0, entries: [], error: e.code === WireError.DIRECTORY_DISABLED ? 'disabled' : 'bad-request' });
      return;
    }
    if (e.ref.length === 32) {
      const l = this.lookups.get(hex(e.ref));
      if (l && l.peerKey === fromKey) this.onLookupError(now, l, e.code);
      return;
    }
    if (e.ref.length !== 16) return void this.drops.add('unexpected_error');
    const t = this.transfers.get(hex(e.ref));
    if (!t || t.peerKey !== fromKey) return void this.drops.add('unexpected_error');
    t.awaiting = false;
    if (e.code === WireError.BAD_COOKIE) {
      t.deadline = now;
      t.attempt = 0;
      return;
    }
    if (BUSY_ERRORS.has(e.code)) {
      t.deadline = now + Math.min(this.o.busyBackoffMaxMs, this.o.busyBackoffInitialMs * 2 ** Math.min(t.busy, 20));
      t.busy++;
      t.slotWait = e.code === WireError.TOO_MANY_UNACKED || e.code === WireError.MAILBOX_FULL;
      if (t.msg) this.setReason(t.msg, (WIRE_ERROR_NAMES[e.code] ?? String(e.code)).toLowerCase().replaceAll('_', '-'));
      return;
    }
    // ID_CONFLICT, BAD_REQUEST and anything else: this message cannot go.
    this.transfers.delete(t.id);
    if (t.msg) this.finish(now, t.msg, 'failed', `peer-refused-${(WIRE_ERROR_NAMES[e.code] ?? String(e.code)).toLowerCase()}`);
  }

  private setReason(m: OutboxMessage, reason: string): void {
    if (m.reason === reason) return;
    m.reason = reason;
    this.dirty = true;
    this.emitDelivery(m);
  }

  /** Recompute the visible state of a message from its parts. */
  private updateState(m: OutboxMessage): void {
    if (m.state === 'delivered' || m.state === 'failed') return;
    if (m.parts.length > 0 && m.parts.every((p) => p.receipt)) {
      this.finish(0, m, 'delivered');
      return;
    }
    const held = m.parts.length > 0 && m.parts.every((p) => p.receipt || p.peerStatus !== 'none');
    const state: DeliveryState = held ? 'held' : 'queued';
    const reason = held ? (m.parts.every((p) => p.receipt || p.peerStatus === 'acked') ? 'delivered-to-device' : undefined) : m.reason;
    if (state !== m.state || reason !== m.reason) {
      m.state = state;
      if (reason === undefined) delete m.reason;
      else m.reason = reason;
      this.dirty = true;
      this.emitDelivery(m);
    }
  }

  private finish(now: number, m: OutboxMessage, state: 'delivered' | 'failed', reason?: string): void {
    void now;
    m.state = state;
    if (reason) m.reason = reason;
    else delete m.reason;
    for (const p of m.parts) this.transfers.delete(p.id);
    // Blobs are not needed any more; the part ids stay for the record.
    m.parts = m.parts.map((p) => ({ ...p, blob: '' }));
    delete m.body;
    this.dirty = true;
    this.emitDelivery(m);
    const finished = this.s.outbox.filter((x) => x.state === 'delivered' || x.state === 'failed');
    if (finished.length > this.o.sentHistoryMax) {
      const drop = new Set(finished.slice(0, finished.length - this.o.sentHistoryMax));
      this.s.outbox = this.s.outbox.filter((x) => !drop.has(x));
    }
  }

  private failMessagesTo(now: number, fp: string, reason: string): void {
    for (const m of this.s.outbox) if (m.to === fp && (m.state === 'queued' || m.state === 'held')) this.finish(now, m, 'failed', reason);
  }

  private emitDelivery(m: OutboxMessage): void {
    this.emit({ type: 'delivery', id: m.id, to: m.to, state: m.state, ...(m.reason ? { reason: m.reason } : {}) });
  }

  private onReceipt(now: number, fromFp: string, ids: Uint8Array[]): void {
    const touched = new Set<OutboxMessage>();
    for (const idb of ids) {
      const id = hex(idb);
      const t = this.transfers.get(id);
      if (!t?.part || !t.msg || t.to !== fromFp) continue;
      t.part.receipt = true;
      this.transfers.delete(id);
      touched.add(t.msg);
      this.dirty = true;
    }
    for (const m of touched) this.updateState(m);
    if (touched.size > 0) this.wake(now, fromFp, touched.size);
  }

  private expire(now: number): void {
    for (const m of this.s.outbox) {
      if ((m.state === 'queued' || m.state === 'held') && m.createdAtMs + this.o.messageTtlMs <= now) {
        this.finish(now, m, 'failed', m.reason === 'certificate-not-found' ? 'certificate-not-found' : 'expired');
      }
    }
    this.reassembler.expire(now);
    for (const [k, at] of this.dedupe) {
      if (at + this.o.dedupeTtlMs > now) break;
      this.dedupe.delete(k);
      this.dirty = true;
    }
  }

  // -------------------------------------------------------------------------------------------
  // certificate lookups

  private startLookup(now: number, fp: string, peerKey: string, forIncoming: boolean): void {
    const l = this.lookups.get(fp);
    if (l) {
      if (forIncoming) l.forIncoming = true;
      return;
    }
    this.lookups.set(fp, { fp, peerKey, awaiting: false, attempt: 0, tries: 0, deadline: now, forIncoming });
  }

  private sendLookup(now: number, l: Lookup): void {
    const link = this.link(now, l.peerKey);
    if (l.awaiting) {
      l.tries++;
      if (l.tries >= this.o.certLookupTriesMax) return this.lookupGaveUp(now, l, 'certificate-unreachable');
    }
    const cookie = this.cookieFor(now, link);
    if (!cookie) {
      l.awaiting = false;
      l.deadline = now + Math.max(this.o.busyBackoffInitialMs, link.rtt.timeoutMs(link.hello?.attempt ?? 0));
      return;
    }
    this.send1(link.addr, { type: MsgType.CERT_REQUEST, cookie, fingerprint: unhex(l.fp) });
    l.awaiting = true;
    l.deadline = now + link.rtt.timeoutMs(l.attempt);
    l.attempt++;
  }

  private onLookupError(now: number, l: Lookup, code: number): void {
    if (code === WireError.BAD_COOKIE) {
      l.awaiting = false;
      l.deadline = now;
      return;
    }
    // BAD_CERT: the peer holds this fingerprint's certificate but will not serve it (its
    // self-signature fails), so it is treated like a certificate that fails the check here.
    const reason = code === WireError.NOT_FOUND ? 'certificate-not-found' : code === WireError.BAD_CERT ? 'bad-certificate' : 'certificate-unreachable';
    this.lookupGaveUp(now, l, reason);
  }

  /** The lookup got no certificate: reject waiting pushes, mark messages, try again later. */
  private lookupGaveUp(now: number, l: Lookup, reason: string): void {
    // A sender's peer that does not answer may answer later: leave those pushes unacknowledged, so
    // the peer pushes them again and a new lookup starts then. An ACK would lose them for good.
    if (l.forIncoming && reason === 'certificate-unreachable') this.dropPending(l.fp, 'sender_unreachable');
    else if (l.forIncoming && reason === 'certificate-not-found' && this.withinUnknownGrace(now, l.fp)) {
      // The sender's peer may have restarted and not yet seen the sender register again.
      this.dropPending(l.fp, 'sender_not_found_yet');
    } else if (l.forIncoming) {
      this.unknownSince.delete(l.fp);
      this.rejectPending(l.fp, 'sender_unknown');
    }
    l.forIncoming = false;
    const waiting = this.s.outbox.filter((m) => m.to === l.fp && m.body !== undefined && (m.state === 'queued' || m.state === 'held'));
    const contact = this.s.contacts.some((c) => c.fingerprint === l.fp && !c.cert);
    if (waiting.length === 0 && !contact) {
      this.lookups.delete(l.fp);
      return;
    }
    for (const m of waiting) this.setReason(m, reason);
    l.awaiting = false;
    l.attempt = 0;
    l.tries = 0;
    l.deadline = now + this.o.certRetryMs;
  }

  /**
   * A sender's certificate was NOT_FOUND at its peer: true while the first such answer for it is
   * younger than unknownSenderGraceMs (its pushes stay unacknowledged, so its peer pushes them
   * again and they are looked up again); after that they are rejected and acknowledged, so that
   * messages claiming senders nobody knows cannot hold a mailbox for long. At most
   * UNKNOWN_SENDERS_MAX senders are remembered (the oldest is forgotten).
   */
  private withinUnknownGrace(now: number, fp: string): boolean {
    const first = this.unknownSince.get(fp);
    if (first === undefined) {
      if (this.unknownSince.size >= UNKNOWN_SENDERS_MAX) {
        const oldest = this.unknownSince.keys().next().value;
        if (oldest !== undefined) this.unknownSince.delete(oldest);
      }
      this.unknownSince.set(fp, now);
      return true;
    }
    return now - first < this.o.unknownSenderGraceMs;
  }

  private onCert(now: number, fromKey: string, fpBytes: Uint8Array, cert: Uint8Array): void {
    const fp = hex(fpBytes);
    const l = this.lookups.get(fp);
    if (!l || l.peerKey !== fromKey) return void this.drops.add('unexpected_cert');
    const actual = hex(fingerprintOf(cert));
    const check = checkCertificate(cert, now);
    if (actual !== fp || !check.ok) {
      const reason = actual !== fp ? 'fingerprint-mismatch' : `bad-certificate-${check.ok ? '' : check.reason}`;
      this.emit({ type: 'contact-cert', fingerprint: fp, ok: false, reason });
      this.drops.add('cert_mismatch');
      this.lookupGaveUp(now, l, reason);
      return;
    }
    this.lookups.delete(fp);
    this.unknownSince.delete(fp);
    const certHex = hex(cert);
    let stored = false;
    for (const c of this.s.contacts) {
      if (c.fingerprint === fp && !c.cert) {
        c.cert = certHex;
        stored = true;
      }
    }
    if (!stored) this.rememberCert(fp, certHex);
    this.dirty = true;
    this.emit({ type: 'contact-cert', fingerprint: fp, ok: true });
    for (const m of this.s.outbox) if (m.to === fp && m.body !== undefined && (m.state === 'queued' || m.state === 'held')) this.prepare(now, m);
    const pend = this.pendingIncoming.get(fp);
    if (pend) {
      this.pendingIncoming.delete(fp);
      this.pendingIncomingCount -= pend.length;
      for (const p of pend) this.acceptOpened(now, p.pushId, p.opened);
    }
  }

  private rememberCert(fp: string, certHex: string): void {
    delete this.s.certs[fp];
    this.s.certs[fp] = certHex;
    const keys = Object.keys(this.s.certs);
    for (let i = 0; i < keys.length - this.o.certsMax; i++) delete this.s.certs[keys[i]!];
  }

  private checkGivenCert(now: number, fp: string, cert: Uint8Array): void {
    if (!(cert instanceof Uint8Array) || hex(fingerprintOf(cert)) !== fp) {
      throw new UsageError('PEERPOST_CONTACT_CERT_MISMATCH', `the certificate given does not hash to ${fp}`);
    }
    const c = checkCertificate(cert, now);
    if (!c.ok) throw new UsageError('PEERPOST_CONTACT_BAD_CERT', `the certificate given is refused: ${c.detail}`);
  }

  // -------------------------------------------------------------------------------------------
  // incoming messages

  private onPush(now: number, pushId: Uint8Array, blob: Uint8Array): void {
    const r = openSealed(this.identity, blob);
    if (!r.ok) return this.reject(pushId, `open_${r.reason}`);
    const opened = r.opened;
    if (!Buffer.from(opened.id).equals(pushId)) return this.reject(pushId, 'id_mismatch', opened.fromHex);
    const certHex = this.certOf(opened.fromHex);
    if (!certHex) {
      if (this.pendingIncomingCount >= this.o.pendingVerifyMax) return void this.drops.add('pending_verify_full');
      const list = this.pendingIncoming.get(opened.fromHex) ?? [];
      if (list.some((p) => Buffer.from(p.pushId).equals(pushId))) return;
      list.push({ pushId, opened });
      this.pendingIncoming.set(opened.fromHex, list);
      this.pendingIncomingCount++;
      this.startLookup(now, opened.fromHex, opened.fromPeer, true);
      return;
    }
    this.acceptOpened(now, pushId, opened);
  }

  /** Forget pushes waiting for `fp`'s certificate without acknowledging them. */
  private dropPending(fp: string, reason: string): void {
    const pend = this.pendingIncoming.get(fp);
    if (!pend) return;
    this.pendingIncoming.delete(fp);
    this.pendingIncomingCount -= pend.length;
    for (let i = 0; i < pend.length; i++) this.drops.add(reason);
  }

  private rejectPending(fp: string, reason: string): void {
    const pend = this.pendingIncoming.get(fp);
    if (!pend) return;
    this.pendingIncoming.delete(fp);
    this.pendingIncomingCount -= pend.length;
    for (const p of pend) this.reject(p.pushId, reason, fp);
  }

  /** Drop what does not authenticate, and still ACK it so it leaves the peer's mailbox. */
  private reject(pushId: Uint8Array, reason: string, from?: string): void {
    this.drops.add(reason);
    this.emit({ type: 'rejected', reason, ...(from ? { from } : {}) });
    this.send1(this.peerAddr, { type: MsgType.ACK, ids: [pushId] });
  }

  private acceptOpened(now: number, pushId: Uint8Array, opened: Opened): void {
    const certHex = this.certOf(opened.fromHex);
    if (!certHex || !verifySender(opened, unhex(certHex), this.identity.fingerprint)) {
      return this.reject(pushId, 'bad_sender', opened.fromHex);
    }
    const from = opened.fromHex;
    const idHex = hex(opened.id);
    switch (opened.kind) {
      case ContentKind.RECEIPT: {
        const ids = decodeReceipt(opened.body);
        if (!ids) return this.reject(pushId, 'bad_receipt', from);
        this.onReceipt(now, from, ids);
        break;
      }
      case ContentKind.TEXT:
      case ContentKind.VERIFY: {
        if (!this.seen(`${from}:${idHex}`)) {
          if (!this.consume(now, opened, opened.kind, opened.body, idHex)) return this.reject(pushId, 'bad_body', from);
          this.markSeen(now, `${from}:${idHex}`);
        }
        this.queueReceipt(now, from, opened.fromPeer, [idHex]);
        break;
      }
      case ContentKind.CHUNK: {
        const c = decodeChunk(opened.body);
        if (!c) return this.reject(pushId, 'bad_chunk', from);
        const msgId = hex(c.messageId);
        if (this.seen(`${from}:${msgId}`)) {
          this.queueReceipt(now, from, opened.fromPeer, [idHex]);
          break;
        }
        this.addChunk(now, opened, from, msgId, idHex, c);
        break;
      }
      default:
        return this.reject(pushId, 'unknown_kind', from);
    }
    if (this.dirty) this.persist(now);
    this.send1(this.peerAddr, { type: MsgType.ACK, ids: [pushId] });
  }

  /** Show one complete message (TEXT or VERIFY body); false when the body is malformed. */
  private consume(now: number, opened: Opened, kind: number, body: Uint8Array, idHex: string): boolean {
    const from = opened.fromHex;
    const contact = this.s.contacts.find((c) => c.fingerprint === from && !c.changed);
    if (kind === ContentKind.VERIFY) {
      const v = decodeVerify(body);
      if (!v) return false;
      this.emit({ type: 'verify', from, body: v });
      return true;
    }
    const t = decodeText(body);
    if (!t) return false;
    if (t.group && !t.group.members.some((m) => m.fingerprint === from)) return false;
    const entry: InboxEntry = {
      id: idHex, from, ...(contact ? { fromName: contact.petname } : {}), fromPeer: opened.fromPeer, text: t.text,
      sentAtMs: opened.sentAtMs, receivedAtMs: now,
      ...(t.group ? { group: { id: t.group.id, name: t.group.name, members: [...t.group.members] } } : {}),
    };
    this.s.inbox.push(entry);
    if (this.s.inbox.length > this.o.inboxMessagesMax) this.s.inbox.splice(0, this.s.inbox.length - this.o.inboxMessagesMax);
    if (t.group) this.learnGroup(t.group);
    this.dirty = true;
    this.emit({
      type: 'message', from, ...(contact ? { fromName: contact.petname } : {}), fromPeer: opened.fromPeer, id: idHex,
      text: t.text, sentAt: opened.sentAtMs, ...(t.group ? { group: t.group } : {}),
    });
    return true;
  }

  private learnGroup(g: GroupInfo): void {
    const existing = this.s.groups.find((x) => x.id === g.id);
    const rec: GroupRecord = { id: g.id, name: g.name, members: g.members.map((m) => ({ ...m })) };
    if (existing) {
      if (JSON.stringify(existing) === JSON.stringify(rec)) return;
      existing.name = rec.name;
      existing.members = rec.members;
    } else {
      if (this.s.groups.length >= this.o.groupsMax) return void this.drops.add('groups_full');
      let name = rec.name;
      for (let i = 2; this.s.groups.some((x) => x.name === name); i++) name = `${rec.name} (${i})`;
      rec.name = name;
      this.s.groups.push(rec);
    }
    this.emit({ type: 'group', group: g });
  }

  private addChunk(now: number, opened: Opened, from: string, msgId: string, chunkId: string, c: ChunkIn): void {
    const key = `${from}:${msgId}`;
    const r = this.reassembler.add(now, key, chunkId, c, { fromPeer: opened.fromPeer, sentAtMs: opened.sentAtMs });
    if (r.status === 'mismatch') return void this.drops.add('chunk_mismatch');
    if (r.status !== 'complete') return;
    const m = r.message;
    const whole = { ...opened, sentAtMs: m.sentAtMs, fromPeer: m.fromPeer };
    if (!this.consume(now, whole, m.innerKind, m.body, msgId)) return void this.drops.add('bad_chunked_body');
    this.markSeen(now, key);
    this.queueReceipt(now, from, m.fromPeer, m.chunkIds);
  }

  private seen(key: string): boolean {
    return this.dedupe.has(key);
  }

  private markSeen(now: number, key: string): void {
    this.dedupe.set(key, now);
    while (this.dedupe.size > this.o.dedupeEntriesMax) {
      const first = this.dedupe.keys().next();
      if (first.done) break;
      this.dedupe.delete(first.value);
    }
    this.dirty = true;
  }

  // -------------------------------------------------------------------------------------------
  // receipts

  private queueReceipt(now: number, to: string, peer: string, ids: string[]): void {
    let q = this.receiptQueue.get(to);
    if (!q) {
      q = { peer, ids: new Set() };
      this.receiptQueue.set(to, q);
    }
    for (const id of ids) q.ids.add(id);
    if (this.receiptFlushAt === undefined) this.receiptFlushAt = now + this.o.receiptBatchDelayMs;
  }

  private flushReceipts(now: number): void {
    this.receiptFlushAt = undefined;
    let receipts = 0;
    for (const t of this.transfers.values()) if (!t.part) receipts++;
    for (const [to, q] of this.receiptQueue) {
      const certHex = this.certOf(to);
      if (!certHex) continue;
      const ids = [...q.ids];
      for (let i = 0; i < ids.length; i += RECEIPT_IDS_MAX) {
        if (receipts >= this.o.receiptTransfersMax) {
          this.drops.add('receipts_full');
          break;
        }
        const idBytes = this.random(16);
        const body = encodeReceipt(ids.slice(i, i + RECEIPT_IDS_MAX).map(unhex));
        const blob = seal({
          sender: this.identity, senderPeer: this.senderPeer, recipientCert: unhex(certHex),
          content: { kind: ContentKind.RECEIPT, id: idBytes, sentAtMs: Math.floor(now), body }, random: this.random,
        });
        const id = hex(idBytes);
        this.transfers.set(id, {
          id, idBytes, to, toBytes: unhex(to), peerKey: q.peer, blob, awaiting: false, attempt: 0, sentAtMs: 0,
          sentOnce: false, deadline: now, resends: 0, busy: 0, slotWait: false,
        });
        receipts++;
      }
    }
    this.receiptQueue.clear();
  }

  // -------------------------------------------------------------------------------------------
  // plumbing

  private contactByName(petname: string): ContactRecord {
    const c = this.s.contacts.find((x) => x.petname === petname);
    if (!c) throw new UsageError('PEERPOST_UNKNOWN_CONTACT', `no contact "${petname}"`);
    return c;
  }

  private send1(to: Addr, m: Message): void {
    this.out.push({ to, data: encode(m) });
  }

  private emit(e: ClientEvent): void {
    this.events.push(e);
    if (this.events.length > this.o.eventsMax) {
      this.events.shift();
      this.drops.add('events_dropped');
    }
  }

  private persist(now: number): void {
    void now;
    this.s.dedupe = [...this.dedupe].map(([key, atMs]) => ({ key, atMs }));
    this.store.save(this.s);
    this.dirty = false;
  }
}

function min(a: number | undefined, b: number): number {
  return a === undefined || b < a ? b : a;
}
