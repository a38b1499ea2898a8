/**
 * The peer (relay) of peerpost as a sans-I/O state machine: it takes `(now, from, bytes)`, queues
 * datagrams to send, and names its next deadline. It never touches a socket, a timer, the clock
 * or Math.random. `now` is milliseconds on the Unix epoch clock (certificate validity and cookie
 * epochs are read from it) and must not run backwards by much: timers are kept in FIFO order.
 *
 * Timers (a closed set; the next wakeup is the minimum of this deadline table):
 *   pushAck            a PUSH waits pushAckTimeoutMs for its ACK, then the sender gets RESULT 300
 *                      and, while the recipient stays registered, the message is pushed again,
 *                      pushTriesMax pushes in a row at most (a lost PUSH or ACK costs one timeout,
 *                      not a wait for the recipient's next KEEPALIVE)
 *   mailboxExpiry      a waiting message is dropped mailboxTtlMs after it was stored
 *   registrationExpiry a registration is dropped registrationTtlMs after the client's last datagram
 * All three have one fixed duration each, so their items expire in insertion order: each lives in
 * an insertion-ordered Map and its deadline is the front item's (cached as a lower bound). One
 * handleTimeout call processes at most TIMEOUT_BATCH_MAX items per timer; the rest keep the
 * deadline at `now` so the driver calls again.
 *
 * Bounds (what happens at the bound):
 *   | name                | default    | at the bound                                                   |
 *   |---------------------|------------|----------------------------------------------------------------|
 *   | registryMax         | 1,000,000  | REGISTER_PROOF of a new fingerprint -> ERROR REGISTRY_FULL     |
 *   | mailboxMessagesMax  | 1024       | DELIVER of a new message to that recipient -> MAILBOX_FULL     |
 *   | contactMessagesMax, strangerMessagesMax, strangerPrefixMessagesMax, recipientBytesMax,     |
 *   | senderPrefixBytesMax, registeredPrefixBytesMax, departedBytesMax: storage quotas, quota.ts |
 *   | unackedPerSenderMax | 32         | per (sender IP:PORT, recipient) -> TOO_MANY_UNACKED            |
 *   | pushTriesMax        | 3          | pushes in a row by the pushAck timer; then KEEPALIVE/POLL only |
 *   | storageBytesMax     | 64 MiB     | blobs + 768 B per message; departed evicted, then STORAGE_FULL |
 *   | newIdentityRate     | 1/s, burst 64, 65,536 prefixes | new fingerprint from that range -> RATE_LIMITED |
 *   | mailboxTtlMs        | 24 h       | the message is dropped                                         |
 *   | rateLimit           | 2000/s, burst 4000, 65,536 IPs | request -> RATE_LIMITED; oldest bucket forgotten |
 *   | replayMax           | 2,097,152  | registration -> RATE_LIMITED until the cookie window moves     |
 *   | recentDeliveredMax  | 65,536     | the oldest acknowledged id (and its recipient) is forgotten     |
 *   | directoryMax        | 10,000     | DIR_JOIN of a new name -> BAD_REQUEST "directory is full"      |
 *   | dirJoinIntervalMs, dirJoinsPerSecondMax | 10 s, 100/s | DIR_JOIN (not a leave) -> RATE_LIMITED    |
 *   | certKeysMax         | 16,384     | the least recently used checked certificate key is forgotten   |
 *   | waiters per message | 4          | a further duplicate DELIVER is answered RESULT 300 at once      |
 *   | transmit queue      | per call   | holds the answers of one handle/handleTimeout call only         |
 *
 * Amplification: to an address that has not shown a valid cookie the peer never sends more bytes
 * than the datagram it answers (CHALLENGE only to padded REGISTER/HELLO, 2-byte REGISTER_AGAIN,
 * ERROR with an empty detail); send() enforces it and counts a refusal as `amplification_guard`.
 *
 * Memory per registered client: two Map entries (fingerprint -> entry, address -> fingerprint),
 * a 32-char latin1 key, the entry object (lastSeen as a small integer), the flat address text, and
 * the certificate DER as a latin1 string (no ArrayBuffer, no KeyObject: keys live in certKeys).
 * Measured with 1,000,000 entries and 211-byte certificates: ~433 B of heap and 275-289 B of RSS per client beyond the DER bytes.
 *
 * Checked certificates: a REGISTER_PROOF costs a strict DER walk of the certificate (X.509 v3,
 * RFC 5280 validity times, exactly an Ed25519 key and signature algorithm: readCertificateKey),
 * a JWK import of its key, the validity check against `now` and the proof verification, which
 * shows that the client holds the certificate's key. The self-signature adds nothing to that, so
 * it is not checked at registration: it is checked (with a full X.509 parse, checkSelfSignature)
 * once per certificate, before the peer first serves it in a CERT answer, and a certificate that
 * fails is never served (CERT_REQUEST gets ERROR BAD_CERT). The key, validity and serving verdict
 * of the last certKeysMax certificates are kept by fingerprint (SHA-256 of the DER, so equal
 * fingerprints mean equal DER), so a client registering again (new address, REGISTER_AGAIN,
 * restart) costs one SHA-256 and the proof verification; the validity period is still checked.
 * Through handle() in process on one core, first registrations went from ~1.3k/s (full X.509
 * parse, self-signature) to ~2.9k/s; the CHALLENGE signature (~64 us) and the proof verification
 * (~170 us, OpenSSL's own speed on this machine) are now most of the cost.
 */
import { MsgType, DeliveryStatus, WireError, WIRE_ERROR_NAMES, ERROR_DETAIL_MAX_BYTES, CAP_ID_BYTES, BLOB_MAX_BYTES, SESSION_ID_BYTES, SESSION_TAG_BYTES } from '../protocol/constants.js';
import { DropCounter, decode, encode, isSessionDatagram, sessionCounter, sessionInner } from '../protocol/codec.js';
import type { AckMsg, DeliverMsg, Message, RegisterProofMsg, SessionInner, SessionMsg } from '../protocol/messages.js';
import { checkSelfSignature, checkValidity, fingerprintOf, readCertificateKey, toHex, verifyWith, type Identity } from '../identity/certificate.js';
import { BoundedLru } from '../crypto/lru.js';
import {
  capabilityKey, capabilityTagOk, deriveSession, registerSigned, replayCheck, replayCommit, sealSession, sealSessionPush, sessionDatagramTagValid, unwrapDeliveryKey, x25519,
} from '../crypto/session.js';
import { createHmac, type KeyObject } from 'node:crypto';
import { addrIs, addrKey, parseAddrKey, silentLogger, type Addr, type Logger, type Random, type Transmit } from '../core/types.js';
import { CookieJar } from './cookies.js';
import { RateLimiter, type RateLimitOptions } from './rate-limit.js';
import { KEYS_BYTES, KEYS_C2P, KEYS_DELIVERY, KEYS_NONCE, KEYS_P2C, Registry, type RegistryEntry } from './registry.js';
import { MESSAGE_OVERHEAD_BYTES, MessageStore, WAITERS_PER_MESSAGE_MAX, type Waiting } from './mailbox.js';
import { FifoMap, ReplayGuard } from './bounded-sets.js';
import { DIRECTORY_DEFAULTS, Directory, type DirectoryLimits } from './directory.js';
import { HandshakeKeys } from './handshake-keys.js';
import { QUOTA_DEFAULTS, deriveQuotaLimits, type QuotaLimits } from './quota.js';
import { sourcePrefix } from './prefix.js';
import { bytesKey, keyBytes, latin1 } from './keys.js';

export interface PeerOptions extends Partial<QuotaLimits>, Partial<DirectoryLimits> {
  identity: Identity;
  random: Random;
  logger?: Logger;
  /** Serve DIR_JOIN / DIR_LIST (default false). */
  directory?: boolean;
  cookieEpochMs?: number;
  registrationTtlMs?: number;
  registryMax?: number;
  unackedPerSenderMax?: number;
  mailboxTtlMs?: number;
  pushAckTimeoutMs?: number;
  /**
   * Pushes of one message in a row, each after the previous one timed out, while its recipient
   * stays registered (default 3); after that it is pushed again on KEEPALIVE, POLL or a new
   * registration.
   */
  pushTriesMax?: number;
  /** Least time between two pushes of one waiting message on KEEPALIVE. */
  pushRetryMs?: number;
  pollBatchMax?: number;
  /** Per source IP token bucket; null turns it off. */
  rateLimit?: RateLimitOptions | null;
  /** Registrations of fingerprints not registered here, per source prefix (/24, /48); null turns it off. */
  newIdentityRate?: RateLimitOptions | null;
  replayMax?: number;
  recentDeliveredMax?: number;
  /** Checked certificate keys kept for registrations again (default 16,384). */
  certKeysMax?: number;
  /**
   * Registration proofs verified per second, all sources together (each costs an Ed25519
   * verification); beyond, REGISTER_PROOF is answered ERROR BUSY. null turns it off.
   */
  proofRate?: { perSecond: number; burst: number } | null;
  /** Delivery keys of clients kept after their registration ended, to check capabilities (default 262,144). */
  deliveryKeysMax?: number;
  /** Capability keys kept derived (default 65,536). */
  capKeysMax?: number;
}

export interface PeerStats {
  registered: number;
  waitingMessages: number;
  /** Sum of the waiting blobs' lengths. */
  waitingBytes: number;
  datagramsIn: number;
  datagramsOut: number;
  bytesIn: number;
  bytesOut: number;
  /**
   * Refusals by reason: the codec's drop reasons, the peer's own (unpadded, rate_limited,
   * unexpected_type, amplification_guard), message_expired for messages that reached their TTL,
   * and message_evicted for departed messages evicted to make room.
   */
  drops: Record<string, number>;
  /** ERROR datagrams sent, by WireError name. */
  errorsSent: Record<string, number>;
}

export const PEER_DEFAULTS = {
  directory: false,
  cookieEpochMs: 120_000,
  registrationTtlMs: 90_000,
  registryMax: 1_000_000,
  ...QUOTA_DEFAULTS,
  unackedPerSenderMax: 32,
  mailboxTtlMs: 24 * 3600_000,
  pushAckTimeoutMs: 3000,
  pushTriesMax: 3,
  pushRetryMs: 5000,
  pollBatchMax: 16,
  rateLimit: { perSecond: 2000, burst: 4000, bucketsMax: 65_536 } as RateLimitOptions | null,
  newIdentityRate: { perSecond: 1, burst: 64, bucketsMax: 65_536 } as RateLimitOptions | null,
  replayMax: 2_097_152,
  recentDeliveredMax: 65_536,
  ...DIRECTORY_DEFAULTS,
  certKeysMax: 16_384,
  proofRate: { perSecond: 2000, burst: 4000 } as { perSecond: number; burst: number } | null,
  deliveryKeysMax: 262_144,
  capKeysMax: 65_536,
};

/**
 * Pushes of an acknowledged message again (a capability holder's duplicate DELIVER: its receipt
 * was lost) allowed per recipient: a token bucket per recipient fingerprint.
 */
export const REPUSH_RATE = { perSecond: 4, burst: 32, bucketsMax: 65_536 };
/** (sender address, recipient, capability) triples remembered as verified; the oldest is forgotten. */
export const CAP_VERIFIED_MAX = 65_536;
/** Registered clients' addresses kept parsed for sending; the oldest is forgotten (and parsed again when needed). */
export const PARSED_ADDRS_MAX = 4096;
/** Source hosts whose address range (sourcePrefix) is remembered; the oldest is forgotten (and computed again). */
export const PREFIXES_MAX = 4096;

/** Most items one timer processes in one handleTimeout call. */
export const TIMEOUT_BATCH_MAX = 1024;

/** A certificate that passed readCertificateKey: what a registration with it again needs. */
interface CheckedCert {
  publicKey: KeyObject;
  notBeforeMs: number;
  notAfterMs: number;
  /**
   * Why the certificate is not served (CERT_REQUEST answered BAD_CERT): its self-signature or
   * X.509 parse fails. null: served. undefined: not checked yet (done before it is first served).
   */
  serveRefusal: string | null | undefined;
}

type TimerName = 'pushAck' | 'mailboxExpiry' | 'registrationExpiry';
type Settings = Omit<typeof PEER_DEFAULTS, 'rateLimit' | 'proofRate' | 'newIdentityRate'>;

const EMPTY = new Uint8Array(0);

export class Peer {
  readonly fingerprint: Uint8Array;
  private readonly o: Settings;
  private readonly identity: Identity;
  private readonly log: Logger;
  private readonly cookies: CookieJar;
  private readonly registry: Registry;
  private readonly store: MessageStore;
  /**
   * Recently acknowledged messages: id (latin1) -> recipient fingerprint (latin1). Keyed by the id
   * alone (16 random bytes) so that a lookup hashes no composed string; an id acknowledged again by
   * another recipient replaces the entry, and a late duplicate to the first recipient is then
   * handled as a new message (stored and pushed; its recipient drops it by id).
   */
  private readonly recent: FifoMap<string>;
  private readonly replay: ReplayGuard;
  private readonly limiter: RateLimiter | null;
  /** Registrations of new fingerprints per source prefix. */
  private readonly newIdentities: RateLimiter | null;
  private readonly dir: Directory | null;
  private readonly hs: HandshakeKeys;
  /** Global bucket of registration proofs verified (one key: ''). */
  private readonly proofLimiter: RateLimiter | null;
  private readonly repushLimiter = new RateLimiter(REPUSH_RATE);
  /** Fingerprint (latin1) -> delivery key (latin1) of every client registered lately, registered or not now. */
  private readonly deliveryKeys: FifoMap<string>;
  /** Recipient fingerprint + capability id (latin1) -> capability key. */
  private readonly capKeys: BoundedLru<string, Uint8Array>;
  /** Sender address | recipient + capability id -> the cookie epoch in which its tag verified (CAP_VERIFIED_MAX). */
  private readonly capVerified = new FifoMap<number>(CAP_VERIFIED_MAX);
  /** Registered addresses (addrKey text) parsed for sending (PARSED_ADDRS_MAX; beyond, parsed again). */
  private readonly parsedAddrs = new FifoMap<Addr>(PARSED_ADDRS_MAX);
  /** Host -> sourcePrefix(host) (PREFIXES_MAX; beyond, computed again). */
  private readonly prefixes = new FifoMap<string>(PREFIXES_MAX);
  /** Length of every COOKIE this peer sends. */
  private readonly cookieBytes: number;
  /** Fingerprint (latin1) -> key, validity and serving verdict of a certificate that passed readCertificateKey. */
  private readonly certKeys: BoundedLru<string, CheckedCert>;
  /** Messages whose PUSH waits for an ACK -> deadline, in deadline order. */
  private readonly inFlight = new Map<Waiting, number>();
  private readonly deadlines: Record<TimerName, number | undefined> = {
    pushAck: undefined,
    mailboxExpiry: undefined,
    registrationExpiry: undefined,
  };
  private out: Transmit[] = [];
  private outHead = 0;
  /** Length of every CHALLENGE this peer sends (its certificate has a fixed size). */
  private readonly challengeBytes: number;
  private readonly drops = new DropCounter();
  private readonly errorsSent = new Map<string, number>();
  private datagramsIn = 0;
  private datagramsOut = 0;
  private bytesIn = 0;
  private bytesOut = 0;

  constructor(opts: PeerOptions, now: number) {
    if (!opts || typeof opts !== 'object') throw new TypeError('peer options are required');
    if (!opts.identity || !(opts.identity.cert instanceof Uint8Array)) throw new TypeError('opts.identity must be an Identity');
    if (typeof opts.random !== 'function') throw new TypeError('opts.random must be a function');
    if (!Number.isFinite(now)) throw new TypeError('now must be a finite number of milliseconds');
    const { rateLimit: _defaultRateLimit, proofRate: _defaultProofRate, newIdentityRate: _defaultNewIdentityRate, ...defaults } = PEER_DEFAULTS;
    const o: Settings = defaults;
    for (const k of Object.keys(o) as Array<keyof Settings>) {
      const v = opts[k];
      if (v === undefined) continue;
      if (k === 'directory') {
        if (typeof v !== 'boolean') throw new TypeError('opts.directory must be a boolean');
        o.directory = v;
      } else {
        if (!(typeof v === 'number' && Number.isInteger(v) && v >= 1)) throw new TypeError(`opts.${k} must be a positive integer`);
        (o as Record<string, unknown>)[k] = v;
      }
    }
    deriveQuotaLimits(o, opts, BLOB_MAX_BYTES + MESSAGE_OVERHEAD_BYTES);
    this.o = o;
    this.identity = opts.identity;
    this.fingerprint = opts.identity.fingerprint;
    this.log = opts.logger ?? silentLogger;
    const master = opts.random(32);
    this.cookies = new CookieJar(master, o.cookieEpochMs);
    this.registry = new Registry(o.registrationTtlMs, now, (e) => {
      this.dir?.leave(e.fp);
      this.store.recipientLeft(e.fp);
    });
    this.store = new MessageStore(o.mailboxTtlMs, o, (w) => this.onEvict(w));
    this.recent = new FifoMap<string>(o.recentDeliveredMax);
    this.replay = new ReplayGuard(o.replayMax, createHmac('sha256', master).update('peerpost/1 replay').digest());
    const rl = opts.rateLimit === undefined ? PEER_DEFAULTS.rateLimit : opts.rateLimit;
    this.limiter = rl ? new RateLimiter(rl) : null;
    const nir = opts.newIdentityRate === undefined ? PEER_DEFAULTS.newIdentityRate : opts.newIdentityRate;
    this.newIdentities = nir ? new RateLimiter(nir) : null;
    this.dir = o.directory ? new Directory(o, now) : null;
    this.certKeys = new BoundedLru(o.certKeysMax);
    this.hs = new HandshakeKeys(opts.identity, opts.random);
    const pr = opts.proofRate === undefined ? PEER_DEFAULTS.proofRate : opts.proofRate;
    this.proofLimiter = pr ? new RateLimiter({ ...pr, bucketsMax: 1 }) : null;
    this.deliveryKeys = new FifoMap<string>(o.deliveryKeysMax);
    this.capKeys = new BoundedLru(o.capKeysMax);
    this.challengeBytes = encode({
      type: MsgType.CHALLENGE, nonce: new Uint8Array(16), cookie: new Uint8Array(20), peerCert: this.identity.cert,
      peerKey: new Uint8Array(32), keySig: new Uint8Array(64),
    }).length;
    this.cookieBytes = encode({ type: MsgType.COOKIE, nonce: new Uint8Array(16), cookie: new Uint8Array(20) }).length;
  }

  // -------------------------------------------------------------------------------------------
  // sans-I/O surface

  /** One received datagram. Never throws on remote input. */
  handle(now: number, from: Addr, data: Uint8Array): void {
    this.datagramsIn++;
    this.bytesIn += data.length;
    if (isSessionDatagram(data)) {
      // A registered client's datagram: found by its session id and authenticated before anything
      // in it is read. An unknown session id goes on to be decoded and answered REGISTER_AGAIN.
      const e = this.registry.atSession(now, latin1(data, 2, SESSION_ID_BYTES));
      if (e) return this.onSession(now, from, data, e);
    }
    const r = decode(data, this.drops);
    if (!r.ok) return;
    this.dispatch(now, from, data.length, r.msg);
  }

  pollTransmit(): Transmit | undefined {
    if (this.outHead >= this.out.length) {
      if (this.out.length) {
        this.out = [];
        this.outHead = 0;
      }
      return undefined;
    }
    const t = this.out[this.outHead]!;
    this.out[this.outHead++] = undefined as unknown as Transmit;
    return t;
  }

  pollTimeout(): number | undefined {
    const { pushAck, mailboxExpiry, registrationExpiry } = this.deadlines;
    let min = pushAck;
    if (mailboxExpiry !== undefined && (min === undefined || mailboxExpiry < min)) min = mailboxExpiry;
    if (registrationExpiry !== undefined && (min === undefined || registrationExpiry < min)) min = registrationExpiry;
    return min;
  }

  handleTimeout(now: number): void {
    const d = this.deadlines;
    if (d.pushAck !== undefined && d.pushAck <= now) d.pushAck = this.expirePushes(now);
    if (d.mailboxExpiry !== undefined && d.mailboxExpiry <= now) {
      d.mailboxExpiry = this.store.sweep(now, TIMEOUT_BATCH_MAX, (w) => {
        this.inFlight.delete(w);
        this.drops.add('message_expired');
      });
    }
    if (d.registrationExpiry !== undefined && d.registrationExpiry <= now) {
      d.registrationExpiry = this.registry.sweep(now, TIMEOUT_BATCH_MAX);
    }
  }

  stats(): PeerStats {
    return {
      registered: this.registry.size,
      waitingMessages: this.store.count,
      waitingBytes: this.store.blobBytes,
      datagramsIn: this.datagramsIn,
      datagramsOut: this.datagramsOut,
      bytesIn: this.bytesIn,
      bytesOut: this.bytesOut,
      drops: this.drops.toJSON(),
      errorsSent: Object.fromEntries(this.errorsSent),
    };
  }

  // -------------------------------------------------------------------------------------------
  // requests

  private dispatch(now: number, from: Addr, size: number, m: Message): void {
    const a = addrKey(from);
    switch (m.type) {
      case MsgType.REGISTER:
        return this.onRegister(now, from, size, m.nonce);
      case MsgType.HELLO:
        return this.onHello(now, from, size, m.nonce);
      case MsgType.REGISTER_PROOF:
        return this.onProof(now, from, a, size, m);
      case MsgType.SESSION:
        // Known sessions were taken in handle(): this one is unknown here (expired, or the peer restarted).
        if (!this.rateOk(now, from)) return;
        return this.send(from, { type: MsgType.REGISTER_AGAIN, sessionId: m.sessionId }, size);
      case MsgType.KEEPALIVE:
      case MsgType.POLL:
      case MsgType.ACK:
      case MsgType.DIR_JOIN:
        // Only inside a SESSION: an address is no credential.
        return this.drops.add('not_in_session');
      case MsgType.DELIVER:
        return this.onDeliver(now, from, a, size, m);
      case MsgType.CERT_REQUEST: {
        if (this.cookies.check(now, a, m.cookie) < 0) return this.sendError(from, WireError.BAD_COOKIE, m.fingerprint, '', size);
        if (!this.rateOk(now, from)) return this.sendError(from, WireError.RATE_LIMITED, m.fingerprint, '');
        const e = this.registry.lookup(now, bytesKey(m.fingerprint));
        if (!e) return this.sendError(from, WireError.NOT_FOUND, m.fingerprint, 'no client with this fingerprint');
        const cert = keyBytes(e.cert);
        const refusal = this.serveRefusal(e.fp, cert);
        if (refusal !== null) return this.sendError(from, WireError.BAD_CERT, m.fingerprint, refusal);
        return this.send(from, { type: MsgType.CERT, fingerprint: m.fingerprint, cert });
      }
      case MsgType.DIR_LIST: {
        if (this.cookies.check(now, a, m.cookie) < 0) return this.sendError(from, WireError.BAD_COOKIE, EMPTY, '', size);
        if (!this.rateOk(now, from)) return this.sendError(from, WireError.RATE_LIMITED, EMPTY, '');
        if (!this.dir) return this.sendError(from, WireError.DIRECTORY_DISABLED, EMPTY, 'this peer has no directory');
        const page = this.dir.page(m.page);
        if (!page) return this.sendError(from, WireError.BAD_REQUEST, EMPTY, 'no such directory page');
        return this.send(from, { type: MsgType.DIR_PAGE, ...page });
      }
      default:
        this.drops.add('unexpected_type');
    }
  }

  /**
   * A datagram of a registered client: found by its session id (an unknown one is answered
   * REGISTER_AGAIN with that id, never larger than the request), refused when its counter was
   * seen or its MAC fails (counted), and only then acted on. An authenticated datagram from
   * another address than the client's does not move it (it may be a copy an on-path attacker
   * sent first): the peer validates the new path, as QUIC does, with a KEEPALIVE asking for an
   * answer sent there, and moves the client when the OK naming it comes back from there.
   */
  private onSession(now: number, from: Addr, data: Uint8Array, e: RegistryEntry): void {
    const counter = sessionCounter(data);
    if (counter < 0) return this.drops.add('bad_schema');
    if (!replayCheck(e, counter)) return this.drops.add('session_replay');
    if (!sessionDatagramTagValid(this.registry.c2pKey(e), data)) return this.drops.add('bad_session_tag');
    const r = sessionInner(data, this.drops);
    if (!r.ok) return;
    replayCommit(e, counter);
    this.registry.touch(now, e);
    const inner = r.msg as SessionInner;
    let moved = false;
    const here0 = addrIs(e.addr, from);
    const a = here0 ? e.addr : addrKey(from);
    if (!here0) {
      if (inner.type === MsgType.OK && e.probe?.addr === a && inner.ref.length === 8 && readCounter(inner.ref) === e.probe.counter) {
        this.registry.move(e, a);
        this.store.recipientRegistered(e.fp, this.prefixOf(from.host));
        this.log.debug({ fingerprint: toHex(keyBytes(e.fp)) }, 'client moved');
        moved = true;
      } else if (e.probe?.addr !== a || inner.type === MsgType.KEEPALIVE) {
        this.sendSession(e, { type: MsgType.KEEPALIVE, answer: true }, from);
        e.probe = { addr: a, counter: e.tx };
        this.drops.add('path_probe');
      }
    }
    const here = e.addr === a;
    switch (inner.type) {
      case MsgType.KEEPALIVE:
        if (inner.answer) this.sendSession(e, { type: MsgType.OK, ref: counterRef(data) }, from);
        if (here) this.pushWaiting(now, e, !moved, moved);
        return;
      case MsgType.POLL:
        if (here) this.pushWaiting(now, e, false, moved);
        return;
      case MsgType.ACK:
        this.onAck(e, inner);
        if (moved) this.pushWaiting(now, e, false, true);
        return;
      case MsgType.DIR_JOIN:
        return this.onDirJoin(now, e, inner.name, counterRef(data), from);
      case MsgType.OK:
        if (moved) this.pushWaiting(now, e, false, true);
        return;
      default:
        this.drops.add('unexpected_type');
    }
  }

  /**
   * REGISTER: a CHALLENGE with a cookie, our certificate and the epoch's handshake key, signed
   * once per epoch (no signature per request), only to a datagram at least as long as the answer.
   */
  private onRegister(now: number, from: Addr, size: number, nonce: Uint8Array): void {
    if (size < this.challengeBytes) return this.drops.add('unpadded');
    if (!this.rateOk(now, from)) return this.sendError(from, WireError.RATE_LIMITED, EMPTY, '', size);
    const cookie = this.cookies.issue(now, addrKey(from));
    const k = this.hs.current(this.cookies.epochAt(now));
    this.send(from, { type: MsgType.CHALLENGE, nonce, cookie, peerCert: this.identity.cert, peerKey: k.publicKey, keySig: k.keySig }, size);
  }

  /** HELLO: a COOKIE, one MAC, only to a datagram at least as long as the answer. */
  private onHello(now: number, from: Addr, size: number, nonce: Uint8Array): void {
    if (size < this.cookieBytes) return this.drops.add('unpadded');
    if (!this.rateOk(now, from)) return this.sendError(from, WireError.RATE_LIMITED, EMPTY, '', size);
    this.send(from, { type: MsgType.COOKIE, nonce, cookie: this.cookies.issue(now, addrKey(from)) }, size);
  }

  private onProof(now: number, from: Addr, a: string, size: number, m: RegisterProofMsg): void {
    const epoch = this.cookies.check(now, a, m.cookie);
    if (epoch < 0) return this.sendError(from, WireError.BAD_COOKIE, EMPTY, '', size);
    if (!this.rateOk(now, from)) return this.sendError(from, WireError.RATE_LIMITED, EMPTY, '');
    const hk = this.hs.find(this.cookies.epochAt(now), m.peerKey);
    if (!hk) return this.sendError(from, WireError.BAD_COOKIE, EMPTY, 'handshake key expired: register again');
    const fingerprint = fingerprintOf(m.cert);
    const fp = bytesKey(fingerprint);
    const cert = this.checkedCert(now, fp, m.cert);
    if (typeof cert === 'string') return this.sendError(from, WireError.BAD_CERT, EMPTY, cert);
    const current = this.registry.lookup(now, fp);
    if (current && current.addr === a && this.registry.nonce(current).equals(m.nonce)) {
      // The same proof again (its OK was lost): the same OK again, nothing changed.
      return this.sendRegistrationOk(current, m.nonce);
    }
    if (this.proofLimiter && !this.proofLimiter.take(now, '')) {
      return this.sendError(from, WireError.BUSY, EMPTY, 'peer is busy: register again later');
    }
    const signed = registerSigned({ cookie: m.cookie, peerFingerprint: this.fingerprint, nonce: m.nonce, peerKey: m.peerKey, clientKey: m.clientKey, wrappedKey: m.wrappedKey });
    if (!verifyWith(cert.publicKey, signed, m.sig)) {
      return this.sendError(from, WireError.BAD_SIGNATURE, EMPTY, 'registration proof does not verify with the certificate key');
    }
    const used = this.replay.use(this.cookies.epochAt(now), epoch, fp + bytesKey(m.nonce));
    if (used === 'replay') return this.sendError(from, WireError.REPLAY, EMPTY, 'registration proof already used');
    if (used === 'full') return this.sendError(from, WireError.RATE_LIMITED, EMPTY, 'too many registrations, retry later');
    const prefix = sourcePrefix(from.host);
    if (!current && this.newIdentities && !this.newIdentities.take(now, prefix)) {
      this.drops.add('new_identity_rate');
      return this.sendError(from, WireError.RATE_LIMITED, EMPTY, 'too many new identities from this address range');
    }
    const shared = x25519(hk.privateKey, m.clientKey);
    if (!shared) return this.sendError(from, WireError.BAD_REQUEST, EMPTY, 'client key gives no shared secret');
    const keys = deriveSession({ shared, nonce: m.nonce, clientFingerprint: fingerprint, peerFingerprint: this.fingerprint, clientKey: m.clientKey, peerKey: m.peerKey });
    const deliveryKey = unwrapDeliveryKey(keys.wrap, m.wrappedKey);
    if (!deliveryKey) return this.sendError(from, WireError.BAD_REQUEST, EMPTY, 'delivery key does not open');
    if (!current && this.registry.size >= this.o.registryMax) {
      this.registry.sweep(now, TIMEOUT_BATCH_MAX);
      if (this.registry.size >= this.o.registryMax) {
        return this.sendError(from, WireError.REGISTRY_FULL, fingerprint, 'registry is full');
      }
    }
    const sid = bytesKey(keys.sessionId);
    if (this.registry.sidTaken(sid, fp)) return this.sendError(from, WireError.BUSY, EMPTY, 'session id in use: register again');
    const secrets = new Uint8Array(KEYS_BYTES);
    secrets.set(keys.c2p, KEYS_C2P);
    secrets.set(keys.p2c, KEYS_P2C);
    secrets.set(deliveryKey, KEYS_DELIVERY);
    secrets.set(m.nonce, KEYS_NONCE);
    const { entry, previousAddr } = this.registry.put(now, fp, bytesKey(m.cert), a, sid, secrets);
    secrets.fill(0); // copied into the registry's slab
    this.store.recipientRegistered(fp, prefix);
    this.deliveryKeys.set(fp, bytesKey(deliveryKey));
    this.deadlines.registrationExpiry ??= now + this.o.registrationTtlMs;
    this.log.debug({ fingerprint: toHex(fingerprint) }, 'client registered');
    this.sendRegistrationOk(entry, m.nonce);
    // Pushes in flight went to the old session or address: push them again now.
    this.pushWaiting(now, entry, false, previousAddr !== undefined || current !== undefined);
  }

  /** The OK of a registration: SESSION counter 0 naming the proof's nonce (the same bytes each time). */
  private sendRegistrationOk(e: RegistryEntry, nonce: Uint8Array): void {
    const data = sealSession(this.registry.p2c(e), this.registry.sidBytes(e), 0, { type: MsgType.OK, ref: new Uint8Array(nonce) });
    this.transmit(this.addrOf(e), data);
  }

  /**
   * The key of a certificate that passes readCertificateKey and is valid at `now` (from certKeys
   * if seen), or why not. The self-signature is left to serveRefusal.
   */
  private checkedCert(now: number, fp: string, der: Uint8Array): CheckedCert | string {
    const c = this.certKeys.get(fp) ?? this.readCert(fp, der);
    if (typeof c === 'string') return c;
    const bad = checkValidity(c.notBeforeMs, c.notAfterMs, now);
    return bad ? `${bad.reason}: ${bad.detail}` : c;
  }

  private readCert(fp: string, der: Uint8Array): CheckedCert | string {
    const r = readCertificateKey(der);
    if (!r.ok) return `${r.reason}: ${r.detail}`;
    const c: CheckedCert = { publicKey: r.publicKey, notBeforeMs: r.notBeforeMs, notAfterMs: r.notAfterMs, serveRefusal: undefined };
    this.certKeys.set(fp, c);
    return c;
  }

  /**
   * Why a registered certificate must not be served, or null: checkSelfSignature once per
   * certificate, the verdict kept in certKeys. The registration proof showed that the client holds
   * the key; this keeps a certificate that is not self-signed from reaching anyone.
   */
  private serveRefusal(fp: string, der: Uint8Array): string | null {
    const c = this.certKeys.get(fp) ?? this.readCert(fp, der);
    if (typeof c === 'string') return c;
    if (c.serveRefusal === undefined) {
      const s = checkSelfSignature(der, c.publicKey);
      c.serveRefusal = s.ok ? null : `${s.reason}: ${s.detail}`;
      if (!s.ok) this.log.debug({ fingerprint: toHex(keyBytes(fp)), reason: s.reason }, 'registered certificate not served');
    }
    return c.serveRefusal;
  }

  private onAck(e: RegistryEntry, m: AckMsg): void {
    for (const id of m.ids) {
      const idKey = bytesKey(id);
      const w = this.store.find(e.fp, idKey);
      if (!w) continue;
      this.store.remove(w);
      this.inFlight.delete(w);
      this.recent.set(idKey, e.fp);
      this.answer(w, DeliveryStatus.DELIVERED, id);
    }
  }

  /** DIR_JOIN in a session: answered OK or ERROR in the session, naming the request's counter. */
  private onDirJoin(now: number, e: RegistryEntry, name: string, ref: Uint8Array, from: Addr): void {
    const fail = (code: WireError, detail: string): void => {
      this.countError(code);
      this.sendSession(e, { type: MsgType.ERROR, code, ref: EMPTY, detail: clip(detail) }, from);
    };
    if (!this.dir) return fail(WireError.DIRECTORY_DISABLED, 'this peer has no directory');
    // Listed clients are looked up with CERT_REQUEST: a certificate that is never served is not listed.
    const refusal = name === '' ? null : this.serveRefusal(e.fp, keyBytes(e.cert));
    if (refusal !== null) return fail(WireError.BAD_CERT, refusal);
    const r = this.dir.join(now, e.fp, name);
    if (r === 'bad_name') return fail(WireError.BAD_REQUEST, 'invalid directory name');
    if (r === 'full') return fail(WireError.BAD_REQUEST, 'directory is full');
    if (r === 'rate_limited') return fail(WireError.RATE_LIMITED, 'directory changes too frequent, retry later');
    this.sendSession(e, { type: MsgType.OK, ref }, from);
  }

  /**
   * The contact a DELIVER's capability names (its capability id, latin1), or '' when it has none,
   * or one this peer cannot check (the recipient's delivery key is unknown here) or that fails.
   */
  private capContact(now: number, a: string, e: RegistryEntry | undefined, to: string, m: DeliverMsg): string {
    if (!m.cap) return '';
    // A capability whose tag verified from this (cookie-validated) address in this cookie window is
    // taken from it again without a MAC: only who receives at that address could use it.
    const vk = a + '|' + to + bytesKey(m.cap.subarray(0, CAP_ID_BYTES));
    const at = this.capVerified.get(vk);
    const epoch = this.cookies.epochAt(now);
    if (at !== undefined && (at === epoch || at === ((epoch - 1) >>> 0))) return vk.slice(vk.length - CAP_ID_BYTES);
    let dk: Uint8Array | undefined = e && this.registry.deliveryKey(e);
    if (!dk) {
      const known = this.deliveryKeys.get(to);
      if (known === undefined) {
        this.drops.add('capability_unchecked');
        return '';
      }
      dk = keyBytes(known);
    }
    const capId = m.cap.subarray(0, CAP_ID_BYTES);
    const ck = to + bytesKey(capId);
    let key = this.capKeys.get(ck);
    if (!key) {
      key = capabilityKey(dk, capId);
      this.capKeys.set(ck, key);
    }
    if (!capabilityTagOk(key, m.cap, m.to, m.id)) {
      this.drops.add('bad_capability');
      return '';
    }
    this.capVerified.set(vk, epoch);
    return bytesKey(capId);
  }

  private onDeliver(now: number, from: Addr, a: string, size: number, m: DeliverMsg): void {
    if (this.cookies.check(now, a, m.cookie) < 0) return this.sendError(from, WireError.BAD_COOKIE, m.id, '', size);
    const to = bytesKey(m.to);
    const idKey = bytesKey(m.id);
    const old = this.store.find(to, idKey);
    if (old) {
      if (!sameBlob(old.blob, m.blob)) return this.sendError(from, WireError.ID_CONFLICT, m.id, 'message id reused with another blob');
      return this.onDuplicate(from, old);
    }
    const e = this.registry.lookup(now, to);
    const contact = this.capContact(now, a, e, to, m);
    if (this.recent.get(idKey) === to) {
      // Acknowledged already, yet its sender sends it again: the end-to-end receipt did not reach
      // the sender. A contact's copy (valid capability) is passed on once more, not stored, within
      // the recipient's re-push bucket: the recipient shows it at most once and answers with a new
      // receipt. A stranger's copy only gets its answer.
      if (e && contact !== '' && this.repushLimiter.take(now, to) && this.rateOk(now, from)) {
        this.sendSession(e, { type: MsgType.PUSH, id: m.id, blob: m.blob });
      }
      return this.result(from, m.id, DeliveryStatus.DELIVERED);
    }
    // A contact's messages are bounded by its own quota, not by the sender's address: only a
    // stranger's are counted by sender address and recipient.
    const senderKey = contact !== '' ? '' : `${a}|${to}`;
    const charge = {
      to, contact, senderPrefix: this.prefixOf(from.host), bytes: m.blob.length + MESSAGE_OVERHEAD_BYTES,
      recipientPrefix: e ? this.prefixOf(this.addrOf(e).host) : '',
    };
    const refusal = this.store.admit(charge);
    if (refusal) return this.sendError(from, refusal.code, m.id, refusal.detail);
    if (contact === '' && this.store.unackedOf(senderKey) >= this.o.unackedPerSenderMax) {
      return this.sendError(from, WireError.TOO_MANY_UNACKED, m.id, 'too many unacknowledged messages for this recipient');
    }
    if (!this.rateOk(now, from)) return this.sendError(from, WireError.RATE_LIMITED, m.id, '');
    const w: Waiting = {
      to, contact: charge.contact, senderPrefix: charge.senderPrefix, bytes: charge.bytes,
      idKey, blob: e ? m.blob : bytesKey(m.blob), senderKey, expiresAt: now + this.o.mailboxTtlMs,
      lastPushAt: -Infinity, inFlight: false, timerPushes: 0, waiters: null,
    };
    this.store.add(w, charge.recipientPrefix);
    this.deadlines.mailboxExpiry ??= w.expiresAt;
    if (!e) return this.result(from, m.id, DeliveryStatus.HELD);
    w.waiters = [from];
    this.push(now, e, w, false, m.id);
  }

  /** A departed message evicted to make room: its senders keep it and retransmit after their receipt wait. */
  private onEvict(w: Waiting): void {
    this.inFlight.delete(w);
    this.drops.add('message_evicted');
    this.answer(w, DeliveryStatus.HELD);
  }

  /**
   * The same (recipient, id, blob) again: answer with the message's current state. Not in flight
   * (recipient away, or the push timed out): RESULT 300 now. In flight: when the push resolves.
   */
  private onDuplicate(from: Addr, w: Waiting): void {
    if (!w.inFlight) return this.result(from, keyBytes(w.idKey), DeliveryStatus.HELD);
    w.waiters ??= [];
    if (w.waiters.some((x) => x.port === from.port && x.host === from.host)) return;
    if (w.waiters.length >= WAITERS_PER_MESSAGE_MAX) return this.result(from, keyBytes(w.idKey), DeliveryStatus.HELD);
    w.waiters.push(from);
  }

  // -------------------------------------------------------------------------------------------
  // pushes and timers

  /**
   * Push up to pollBatchMax waiting messages that are not in flight (unless `inFlightToo`: the
   * client moved) and, on retry, not pushed lately.
   */
  private pushWaiting(now: number, e: RegistryEntry, retryGap: boolean, inFlightToo = false): void {
    let n = 0;
    for (const w of this.store.mailbox(e.fp)) {
      if (n >= this.o.pollBatchMax) break;
      if ((w.inFlight && !inFlightToo) || (retryGap && now - w.lastPushAt < this.o.pushRetryMs)) continue;
      this.push(now, e, w);
      n++;
    }
  }

  /**
   * `byTimer`: the previous push of `w` timed out; otherwise a new series of pushes starts. `id`:
   * the message id's bytes when the caller has them (the DELIVER that brought it).
   */
  private push(now: number, e: RegistryEntry, w: Waiting, byTimer = false, id?: Uint8Array): void {
    w.timerPushes = byTimer ? w.timerPushes + 1 : 0;
    const blob = typeof w.blob === 'string' ? keyBytes(w.blob) : w.blob;
    e.tx++;
    this.transmit(this.addrOf(e), sealSessionPush(this.registry.p2c(e), this.registry.sidBytes(e), e.tx, id ?? keyBytes(w.idKey), blob));
    w.lastPushAt = now;
    w.inFlight = true;
    const at = now + this.o.pushAckTimeoutMs;
    this.inFlight.delete(w); // a push again goes to the back: deadlines stay in insertion order
    this.inFlight.set(w, at);
    this.deadlines.pushAck ??= at;
  }

  /**
   * Resolve timed-out pushes: their senders learn RESULT 300, the messages stay, and each is
   * pushed again while its recipient is registered and its series is under pushTriesMax. A push
   * again goes to the back of inFlight with a later deadline, so this loop meets it only to stop.
   */
  private expirePushes(now: number): number | undefined {
    let n = 0;
    for (const [w, at] of this.inFlight) {
      if (at > now) return at;
      if (n++ >= TIMEOUT_BATCH_MAX) return now;
      this.inFlight.delete(w);
      w.inFlight = false;
      if (typeof w.blob !== 'string') w.blob = bytesKey(w.blob); // it waits now: keep no datagram
      this.answer(w, DeliveryStatus.HELD);
      if (w.timerPushes + 1 >= this.o.pushTriesMax) continue;
      const e = this.registry.lookup(now, w.to);
      if (e) this.push(now, e, w, true);
    }
    return undefined;
  }

  /** `id`: the message id's bytes when the caller has them. */
  private answer(w: Waiting, status: DeliveryStatus, id?: Uint8Array): void {
    const waiters = w.waiters;
    w.waiters = null;
    if (waiters) for (const to of waiters) this.result(to, id ?? keyBytes(w.idKey), status);
  }

  // -------------------------------------------------------------------------------------------
  // output

  private rateOk(now: number, from: Addr): boolean {
    if (!this.limiter || this.limiter.take(now, from.host)) return true;
    this.drops.add('rate_limited');
    return false;
  }

  private result(to: Addr, id: Uint8Array, status: DeliveryStatus): void {
    this.send(to, { type: MsgType.RESULT, id, status });
  }

  /** `limit`: the size of the datagram being answered, for an address not yet validated. */
  private sendError(to: Addr, code: WireError, ref: Uint8Array, detail: string, limit?: number): void {
    this.countError(code);
    this.send(to, { type: MsgType.ERROR, code, ref, detail: limit === undefined ? clip(detail) : '' }, limit);
  }

  private countError(code: WireError): void {
    const name = WIRE_ERROR_NAMES[code] ?? String(code);
    this.errorsSent.set(name, (this.errorsSent.get(name) ?? 0) + 1);
  }

  /**
   * A datagram to a registered client, in its session (the next counter, our MAC), to its address
   * or, for an answer, to where the request came from.
   */
  private sendSession(e: RegistryEntry, inner: SessionInner, to?: Addr): void {
    e.tx++;
    this.transmit(to ?? this.addrOf(e), sealSession(this.registry.p2c(e), this.registry.sidBytes(e), e.tx, inner));
  }

  private send(to: Addr, msg: Message, limit?: number): void {
    const data = encode(msg);
    if (limit !== undefined && data.length > limit) return this.drops.add('amplification_guard');
    this.transmit(to, data);
  }

  /** Where `e`'s datagrams go: its address text, parsed once while it stays among the last PARSED_ADDRS_MAX. */
  private addrOf(e: RegistryEntry): Addr {
    let at = this.parsedAddrs.get(e.addr);
    if (at === undefined) {
      at = parseAddrKey(e.addr);
      this.parsedAddrs.set(e.addr, at);
    }
    return at;
  }

  /** sourcePrefix(host), remembered for the last PREFIXES_MAX hosts. */
  private prefixOf(host: string): string {
    let p = this.prefixes.get(host);
    if (p === undefined) {
      p = sourcePrefix(host);
      this.prefixes.set(host, p);
    }
    return p;
  }

  private transmit(to: Addr, data: Uint8Array): void {
    this.out.push({ to, data });
    this.datagramsOut++;
    this.bytesOut += data.length;
  }
}

/** The counter in an 8-byte OK ref. */
function readCounter(ref: Uint8Array): number {
  return ((ref[0]! << 24) | (ref[1]! << 16) | (ref[2]! << 8) | ref[3]!) * 0x1_0000_0000 + (((ref[4]! << 24) | (ref[5]! << 16) | (ref[6]! << 8) | ref[7]!) >>> 0);
}

/** The 8 counter bytes of a SESSION datagram, as the ref of its answer. */
function counterRef(data: Uint8Array): Uint8Array {
  return new Uint8Array(data.subarray(10, 18));
}

/** The stored blob of a message equals `b`. */
function sameBlob(stored: string | Uint8Array, b: Uint8Array): boolean {
  if (stored.length !== b.length) return false;
  if (typeof stored === 'string') return stored === bytesKey(b);
  return Buffer.from(stored.buffer, stored.byteOffset, stored.byteLength).equals(b);
}

/** Cut an ERROR detail to ERROR_DETAIL_MAX_BYTES of UTF-8 without splitting a character. */
function clip(s: string): string {
  if (Buffer.byteLength(s) <= ERROR_DETAIL_MAX_BYTES) return s;
  let out = '';
  let n = 0;
  for (const ch of s) {
    const b = Buffer.byteLength(ch);
    if (n + b > ERROR_DETAIL_MAX_BYTES) break;
    out += ch;
    n += b;
  }
  return out;
}
