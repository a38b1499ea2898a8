/**
 * The peerpost client as a sans-I/O state machine. Same surface as the peer (`handle`,
 * `pollTransmit`, `pollTimeout`, `handleTimeout`), plus `pollEvent` and user calls that take `now`.
 * It registers with each of its home peers (one or more, setPeers()) and keeps every registration
 * alive, seals every outgoing message to its recipient (src/crypto/seal.ts) and DELIVERs it to a
 * peer of the recipient's home, retransmitting until the peer answers (or failing over to the
 * next peer of that home) and again until the end-to-end RECEIPT comes back, and opens, checks,
 * stores and acknowledges what any of its peers pushes (a message pushed by two peers is shown
 * once: dedupe by sender and id). Time, randomness and persistence are injected.
 *
 * The Client keeps the public surface and the dispatch of datagrams; its parts share one
 * ClientContext (context.ts: settings, snapshot, transmit and event queues, drop counters):
 *   registration.ts  REGISTER / CHALLENGE / REGISTER_PROOF, keepalive, REGISTER_AGAIN (one per home peer)
 *   homes.ts         contacts' homes (HomeRecord peers), failover, the home-resolution port
 *   peer-links.ts    per-peer cookies (HELLO) and RTT
 *   outgoing.ts      outgoing messages: sealing, DELIVER retransmission, RESULT / ERROR, window
 *   receipts.ts      receipts to send, batched
 *   lookups.ts       certificate lookups (CERT_REQUEST)
 *   contacts.ts      the contact list, recipients
 *   groups.ts        groups: created, learned from messages, sent to
 *   incoming.ts      pushes: open, check, dedupe, reassemble, store, acknowledge
 *   directory.ts     DIR_LIST / DIR_JOIN
 *   requests.ts      message requests: strangers' receipts withheld until accepted, blocked senders
 *
 * Persistence (src/client/changes.ts): what a datagram or a timeout changed is committed to the
 * ClientStore, as one batch, by the first pollTransmit() or pollEvent() after it, so a driver that
 * handles several datagrams (or user calls) before it drains commits once for all of them, and no
 * datagram (an ACK in particular) or event leaves before what it depends on is committed. Reads
 * of the history (history(), inbox()) and commit() commit first. The history (every text message
 * sent and received) is only in the store: history(), inbox() and deleteHistory() read and change
 * it there.
 *
 * Timers (closed set, see deadlines(); each part's doc has the details): register
 * (REGISTER/REGISTER_PROOF retry, exponential from registerInitialMs to registerRetryMaxMs),
 * keepalive (keepaliveIntervalMs +-20%; after an unanswered one a quarter of that;
 * keepaliveMissesBeforeReregister unanswered in a row -> register again), hello (cookie requests
 * per peer, RFC 6298 RTO), lookup (CERT_REQUEST retries), transfer (DELIVER retransmission by RTO,
 * resend after receiptWaitMs doubling to receiptWaitMaxMs, busy backoff, cut short for
 * MAILBOX_FULL and TOO_MANY_UNACKED when a message to the same recipient is delivered),
 * receiptFlush (receipts batched for receiptBatchDelayMs), expiry (message TTL and partial-message
 * age), restartWait (parts waiting SESSION_RESTART_WAIT_MS for a session we restarted go sealed),
 * home (a home resolution unanswered after homeResolveTimeoutMs).
 *
 * Home resolution (a sans-I/O port): pollHomeRequest() names a fingerprint whose home record the
 * embedding should look up; it answers with homeResolved(now, fp, record | null). Our own home:
 * `home-changed` events (peers added or removed, a new peer's identity pinned) and homePeers().
 *
 * Bounds (CLIENT_DEFAULTS; behaviour at the bound):
 *   outboxMessagesMax (1000)      unfinished outgoing messages; send() throws PEERPOST_OUTBOX_FULL
 *   sentHistoryMax (500)          finished (delivered/failed) messages kept for status; oldest dropped
 *   unackedPerRecipientMax (8)    parts in flight per recipient not yet acked by it; others wait `queued`
 *                                 (a quarter of the peer's unackedPerSenderMax, which counts this
 *                                 client's receipts to that recipient too)
 *   inboxMessagesMax (1000)       received messages inbox() returns (the newest); the history keeps all
 *   historyRetainMs (0: forever)  history older than this is deleted at start and every RETENTION_INTERVAL_MS
 *   dedupeEntriesMax (8192), dedupeTtlMs (8 days)   (sender, id) seen; oldest/expired forgotten
 *   partialMessagesMax (16), partialBytesMax (2 MiB), partialAgeMaxMs (30 min)   chunk buffers; the
 *                                 oldest is dropped (no receipt was sent for its chunks, so the sender
 *                                 sends them again)
 *   pendingVerifyMax (64)         pushes waiting for their sender's CARD; beyond, a push is rejected
 *                                 and acknowledged at once (`pending_full`)
 *   dedupeFloorsMax (10000)       senders with a dedupe floor (src/client/incoming.ts)
 *   capWindowMax (100)            parts in flight to a recipient whose capability we hold
 *   receiptTransfersMax (256)     receipt DELIVERs in flight; beyond, a receipt is not sent now (the
 *                                 sender resends its message and gets the receipt then)
 *   peerLinksMax (1024)           per-peer cookie and RTT state; the least recently used idle link is forgotten
 *   contactsMax, groupsMax, certsMax   addContact/createGroup throw; certificates of strangers: oldest forgotten
 *   eventsMax (10000)             unread events; the oldest is dropped and counted (`events_dropped`)
 *   homePeersMax (8)              our peers (setPeers throws PEERPOST_TOO_MANY_PEERS), and peers of a
 *                                 contact's record used (the rest ignored)
 *   homeFailoverTries (4)         unanswered DELIVERs (or HELLOs) to a recipient's peer before the next
 *   homeResolveIntervalMs (15 s), homeResolutionsMax (16), homeResolveTimeoutMs (20 s), homesMax (4096)
 *                                 resolutions: see src/client/homes.ts
 *   certLookupTriesMax (6)        CERT_REQUEST tries before waiting certRetryMs; unknown senders are
 *                                 rejected after that many tries
 *   messageTtlMs (7 days)         an unfinished message fails with reason `expired`
 *   unknownSenderGraceMs (2 min)  the longest a push waits, unacknowledged, for its sender's CARD;
 *                                 then it is rejected and acknowledged (`sender_unknown`)
 *   HELLO_TRIES_MAX (8)           HELLOs for one cookie; then given up until something needs that peer again
 *   RECEIPT_TRIES_MAX (10)        transmissions of one receipt DELIVER in all (unanswered, or refused
 *                                 busy: MAILBOX_FULL and the like); then dropped
 *                                 (the sender resends its message after receiptWaitMs and gets a new receipt)
 *   transmit queue                holds the datagrams of the calls made since the last pollTransmit
 *
 * Chunked messages are receipted only once complete and stored, so a chunk buffer lost to a bound
 * or a restart costs retransmissions, never the message.
 */
import { MsgType, WireError } from '../protocol/constants.js';
import { decode } from '../protocol/codec.js';
import type { CookieMsg, ErrorMsg, Message, SessionInner } from '../protocol/messages.js';
import { addrKey, parseAddr, silentLogger, type Addr, type Logger, type Transmit } from '../core/types.js';
import type { HomePeer, HomeRecord } from '../core/home.js';
import { UsageError } from '../core/errors.js';
import { ContentKind, TEXT_MAX_BYTES, VERIFY_BODY_MAX_BYTES, encodeText, encodeVerify, utf8Length, type GroupInfo } from './content.js';
import type { ContactRecord, DeliveryState, HistoryDeletion, HistoryEntry, HistoryQuery, InboxEntry } from './store.js';
import type { ClientEvent, ClientOptions, ClientStats, ClientTimer } from './types.js';
import { ClientContext, earlier, unhex } from './context.js';
import { HomeBook } from './homes.js';
import { PeerLinks } from './peer-links.js';
import { Registration } from './registration.js';
import { CertLookups } from './lookups.js';
import { Outgoing } from './outgoing.js';
import { ReceiptBatch } from './receipts.js';
import { Ratchets } from './ratchets.js';
import { Incoming } from './incoming.js';
import { ContactBook } from './contacts.js';
import { GroupBook } from './groups.js';
import { DirectoryRequests } from './directory.js';
import { MessageRequests } from './requests.js';

export { HELLO_TRIES_MAX } from './peer-links.js';
export { DIRECTORY_REQUESTS_MAX } from './directory.js';
export { RECEIPT_TRIES_MAX } from './outgoing.js';

/** How often old history is deleted when historyRetainMs is set. */
export const RETENTION_INTERVAL_MS = 3600_000;

export class Client {
  readonly fingerprint: string;
  private readonly ctx: ClientContext;
  private readonly log: Logger;
  private readonly links: PeerLinks;
  /** One registration per home peer, in order (the first is our first peer). */
  private readonly registrations = new Map<string, Registration>();
  private readonly homes: HomeBook;
  private readonly lookups: CertLookups;
  private readonly outgoing: Outgoing;
  private readonly receipts: ReceiptBatch;
  private readonly incoming: Incoming;
  private readonly contactBook: ContactBook;
  private readonly groupBook: GroupBook;
  private readonly directory: DirectoryRequests;
  private readonly requests = new MessageRequests();
  private datagramsIn = 0;
  private datagramsOut = 0;
  private retentionAt: number | undefined;

  constructor(opts: ClientOptions, now: number) {
    const ctx = new ClientContext(opts, now);
    this.ctx = ctx;
    this.fingerprint = ctx.fingerprint;
    this.log = opts.logger ?? silentLogger;
    this.links = new PeerLinks(ctx);
    for (const a of ctx.peerAddrs.values()) this.registrations.set(addrKey(a), new Registration(ctx, this.links, a));
    this.homes = new HomeBook(ctx, {
      rehome: (at, fp) => {
        this.outgoing.rehome(at, fp);
        this.lookups.rehome(at, fp, (hint) => this.homes.peerFor(at, fp, hint));
      },
    });
    this.lookups = new CertLookups(ctx, this.links, {
      found: (at, fp) => {
        this.outgoing.certificateKnown(at, fp);
        this.incoming.certificateKnown(at, fp);
      },
      senderMissing: (at, fp, reason) => this.incoming.senderMissing(at, fp, reason),
      recipientMissing: (m, reason) => this.outgoing.setReason(m, reason),
      recipientFailed: (fp, reason) => this.outgoing.failMessagesTo(fp, reason),
      nextPeer: (at, fp, hint, peerKey) => this.homes.failed(at, fp, hint, peerKey),
      resolving: (fp) => this.homes.resolving(fp),
    });
    const ratchets = new Ratchets(ctx);
    this.outgoing = new Outgoing(ctx, this.links, this.lookups, ratchets, this.homes);
    this.receipts = new ReceiptBatch(ctx, this.outgoing, ratchets);
    this.contactBook = new ContactBook(ctx, this.lookups, this.outgoing);
    this.groupBook = new GroupBook(ctx, this.contactBook, this.outgoing);
    this.incoming = new Incoming(ctx, this.lookups, this.outgoing, this.receipts, this.groupBook, this.requests, ratchets);
    this.directory = new DirectoryRequests(ctx, this.links);
    for (const m of ctx.s.outbox) this.outgoing.restore(now, m);
    for (const r of this.registrations.values()) r.start(now);
    if (ctx.o.historyRetainMs > 0) this.retain(now);
  }

  /** Our first peer (host:port): the one senders try first. */
  get peerKey(): string {
    return this.ctx.peerKey;
  }

  /** Our first peer's address as others reach it, named in every sealed message. */
  get senderPeer(): string {
    return this.ctx.senderPeer;
  }

  // -------------------------------------------------------------------------------------------
  // sans-I/O surface

  handle(now: number, from: Addr, data: Uint8Array): void {
    this.datagramsIn++;
    const r = decode(data, this.ctx.drops);
    if (r.ok) {
      try {
        this.dispatch(now, from, r.msg);
      } catch (e) {
        this.ctx.drops.add('internal_error');
        this.log.error({ err: (e as Error).message }, 'client failed to handle a datagram');
      }
    }
    this.pump(now);
  }

  /** The next datagram to send; commits what changed first (throws what the store throws, keeping the datagrams). */
  pollTransmit(): Transmit | undefined {
    if (this.ctx.uncommitted) this.ctx.persist();
    this.ctx.flushAcks();
    const t = this.ctx.out.shift();
    if (t) this.datagramsOut++;
    return t;
  }

  /** The next event for the user; commits what changed first. */
  pollEvent(): ClientEvent | undefined {
    if (this.ctx.uncommitted && this.ctx.events.length > 0) this.ctx.persist();
    return this.ctx.events.shift();
  }

  /** Commit what changed now (a driver calls this when it has nothing to send). */
  commit(): void {
    this.ctx.persist();
  }

  pollTimeout(): number | undefined {
    let min: number | undefined;
    for (const d of Object.values(this.deadlines())) if (d !== undefined && (min === undefined || d < min)) min = d;
    return min;
  }

  handleTimeout(now: number): void {
    for (const r of this.registrations.values()) r.handleTimeout(now);
    this.homes.handleTimeout(now);
    this.links.handleTimeout(now);
    this.receipts.handleTimeout(now);
    this.outgoing.expire(now);
    this.outgoing.endRestartWaits(now);
    this.incoming.expire(now);
    if (this.retentionAt !== undefined && now >= this.retentionAt) this.retain(now);
    this.pump(now);
  }

  /** The deadline table of the named timers. */
  deadlines(): Record<ClientTimer, number | undefined> {
    let register: number | undefined;
    let keepalive: number | undefined;
    for (const r of this.registrations.values()) {
      const d = r.deadlines();
      if (d.register !== undefined) register = earlier(register, d.register);
      if (d.keepalive !== undefined) keepalive = earlier(keepalive, d.keepalive);
    }
    let expiry = this.outgoing.nextExpiry();
    const partial = this.incoming.nextExpiry();
    if (partial !== undefined) expiry = earlier(expiry, partial);
    const pending = this.incoming.nextPendingExpiry();
    if (pending !== undefined) expiry = earlier(expiry, pending);
    return {
      register,
      keepalive,
      hello: this.links.deadline(),
      lookup: this.lookups.deadline(),
      transfer: this.outgoing.deadline(),
      receiptFlush: this.receipts.deadline,
      expiry,
      restartWait: this.outgoing.restartWaitDeadline(),
      retention: this.retentionAt,
      home: this.homes.deadline(),
    };
  }

  stats(): ClientStats {
    const s = this.ctx.s;
    return {
      registered: this.registered,
      outboxUnfinished: s.outbox.filter((m) => m.state === 'queued' || m.state === 'held').length,
      transfers: this.outgoing.size,
      inbox: this.ctx.store.historyCount('in'),
      partials: this.incoming.partials,
      datagramsIn: this.datagramsIn,
      datagramsOut: this.datagramsOut,
      drops: this.ctx.drops.toJSON(),
    };
  }

  // -------------------------------------------------------------------------------------------
  // user calls

  /** Registered with at least one of our peers. */
  get registered(): boolean {
    for (const r of this.registrations.values()) if (r.registered) return true;
    return false;
  }

  /** Our peers (host:port) in order, each with whether we are registered there and its pinned fingerprint. */
  peers(): Array<{ peer: string; registered: boolean; fingerprint?: string }> {
    return [...this.registrations.values()].map((r) => ({ peer: r.key, registered: r.registered, ...(r.pinned ? { fingerprint: r.pinned } : {}) }));
  }

  /**
   * Register with these peers, in this order (the first is the one senders try first): new ones
   * are registered with now, those left out are no longer kept alive. Emits `home-changed`.
   * At most homePeersMax; at least one.
   */
  setPeers(now: number, peers: readonly Addr[]): void {
    if (!Array.isArray(peers) || peers.length === 0) throw new UsageError('PEERPOST_NO_PEER', 'at least one peer is required');
    if (peers.length > this.ctx.o.homePeersMax) throw new UsageError('PEERPOST_TOO_MANY_PEERS', `at most ${this.ctx.o.homePeersMax} peers`);
    const keys = peers.map((a) => {
      const k = a && typeof a.host === 'string' && Number.isInteger(a.port) ? addrKey(a) : '';
      if (!parseAddr(k)) throw new UsageError('PEERPOST_PEER_ADDRESS', `bad peer address ${k || String(a)}`);
      return k;
    });
    if (new Set(keys).size !== keys.length) throw new UsageError('PEERPOST_PEER_ADDRESS', 'a peer is named twice');
    const before = [...this.registrations.keys()];
    if (before.join(' ') === keys.join(' ')) return;
    for (const [k, r] of this.registrations) if (!keys.includes(k)) r.stop();
    this.ctx.setPeers(peers);
    const old = new Map(this.registrations);
    this.registrations.clear();
    keys.forEach((k, i) => {
      const r = old.get(k) ?? new Registration(this.ctx, this.links, peers[i]!);
      this.registrations.set(k, r);
      if (!old.has(k)) r.start(now);
    });
    this.ctx.emit({ type: 'home-changed', peers: keys });
    this.settle(now);
  }

  /** Our home as a record would announce it: our peers whose certificate we pinned, in order. */
  homePeers(): HomePeer[] {
    const out: HomePeer[] = [];
    for (const r of this.registrations.values()) {
      const fp = r.pinned;
      if (fp) out.push({ host: r.addr.host, port: r.addr.port, fingerprint: unhex(fp) });
    }
    return out;
  }

  /** Whether the embedding answers home resolutions (pollHomeRequest / homeResolved); off by default. */
  resolveHomes(enabled: boolean): void {
    this.homes.enabled = enabled;
  }

  /** The next fingerprint whose home record the embedding should resolve (answer with homeResolved). */
  pollHomeRequest(): string | undefined {
    return this.homes.pollRequest();
  }

  /**
   * The answer to a resolution (or a record learned otherwise): `record` checked by the caller
   * (signature, fingerprint), or null when none was found. A newer record than the one held moves
   * the messages to `fp` to its peers at once. Returns whether the record was taken.
   */
  homeResolved(now: number, fp: string, record: HomeRecord | null): boolean {
    const taken = this.homes.resolved(now, fp, record);
    this.settle(now);
    return taken;
  }

  /** The peers tried for `fp`, in order (its record's, then the hint). */
  homeOf(fp: string, hint: string): string[] {
    return this.homes.peersOf(fp, hint);
  }

  /** The address others use to reach this client: `fingerprint@senderPeer`. */
  get address(): string {
    return `${this.fingerprint}@${this.senderPeer}`;
  }

  /** The network may have changed (new address, NAT): register again now. */
  networkChanged(now: number): void {
    for (const r of this.registrations.values()) r.start(now);
    this.links.forgetCookies();
    this.settle(now);
  }

  /** Ask each of our peers for waiting messages. */
  poll(now: number): void {
    for (const r of this.registrations.values()) if (r.registered) this.ctx.sendToPeer({ type: MsgType.POLL }, r.key);
    this.settle(now);
  }

  /** Whether a SESSION datagram with this id is ours (from our peer), for a node routing datagrams. */
  ownsSession(sid: Uint8Array): boolean {
    for (const r of this.registrations.values()) if (r.ownsSession(sid)) return true;
    return false;
  }

  /** Accept the new identity of one of our peers (default: the first blocked one) after a `peer-identity-changed` event. */
  acceptPeerIdentity(now: number, peer?: string): void {
    const r = peer !== undefined ? this.registrations.get(peer) : [...this.registrations.values()].find((x) => x.blocked);
    if (!r) throw new UsageError('PEERPOST_NO_IDENTITY_CHANGE', 'no changed peer identity is waiting for acceptance');
    r.acceptPeerIdentity(now);
    this.settle(now);
  }

  get pinnedPeerFingerprint(): string | undefined {
    return this.registrations.get(this.ctx.peerKey)?.pinned;
  }

  /**
   * Add a contact `fp@host:port` under a unique petname (default: the first 12 hex digits). The
   * same petname with another fingerprint flags the contact `changed`. A certificate may be given
   * (checked against the fingerprint); otherwise it is fetched from the contact's peer.
   */
  addContact(now: number, address: string, petname?: string, cert?: Uint8Array): ContactRecord {
    const c = this.contactBook.add(now, address, petname, cert);
    this.releaseRequest(now, c.fingerprint);
    this.settle(now);
    return { ...c };
  }

  /**
   * Accept a message request: add the stranger `fp` as a contact (at the peer its messages came
   * from) and send the receipts withheld until now. Returns the new contact.
   */
  acceptRequest(now: number, fp: string, petname?: string): ContactRecord {
    const known = this.ctx.s.contacts.find((c) => c.fingerprint === fp);
    if (known) return { ...known };
    const from = this.history({ contact: fp, dir: 'in', limit: 1 })[0];
    if (!from?.fromPeer) throw new UsageError('PEERPOST_NO_REQUEST', `no message request from ${fp.slice(0, 12)}`);
    return this.addContact(now, `${fp}@${from.fromPeer}`, petname);
  }

  /** Drop every further message from `fp` silently (acknowledged to our peer, counted `blocked_sender`). */
  block(now: number, fp: string): void {
    this.requests.block(fp);
    this.pump(now);
  }

  unblock(now: number, fp: string): void {
    this.requests.unblock(fp);
    this.pump(now);
  }

  blocked(): string[] {
    return this.requests.blocked();
  }

  private releaseRequest(now: number, fp: string): void {
    const w = this.requests.release(fp);
    if (w && w.ids.length > 0) this.receipts.add(now, fp, w.peer, w.ids);
  }

  /** Accept a contact flagged `changed`. */
  confirmContact(now: number, petname: string): void {
    this.contactBook.confirm(petname);
    this.settle(now);
  }

  /** Set a contact's verification state (the safety-code exchange uses this). */
  setVerification(now: number, petnameOrFp: string, state: ContactRecord['verification']): void {
    this.contactBook.setVerification(petnameOrFp, state);
    this.settle(now);
  }

  removeContact(now: number, petname: string): void {
    this.contactBook.remove(petname);
    this.settle(now);
  }

  contacts(): ContactRecord[] {
    return this.ctx.s.contacts.map((c) => ({ ...c }));
  }

  groups(): GroupInfo[] {
    return this.groupBook.list();
  }

  /** The newest inboxMessagesMax received messages, oldest first. */
  inbox(): InboxEntry[] {
    return this.history({ dir: 'in', limit: this.ctx.o.inboxMessagesMax }).map((m) => ({
      id: m.id, from: m.contact, ...(m.fromName !== undefined ? { fromName: m.fromName } : {}), fromPeer: m.fromPeer ?? '',
      text: m.text, sentAtMs: m.sentAtMs, receivedAtMs: m.atMs, ...(m.group ? { group: m.group } : {}),
    }));
  }

  /** Messages of the history (sent and received), the newest `q.limit`, oldest first. */
  history(q: HistoryQuery): HistoryEntry[] {
    if (!q || !Number.isInteger(q.limit) || q.limit < 1) throw new UsageError('PEERPOST_BAD_LIMIT', 'limit must be an integer >= 1');
    this.ctx.persist();
    return this.ctx.store.history(q);
  }

  /** Delete messages from the history (a contact's, one message, or those before a time); returns how many. */
  deleteHistory(what: HistoryDeletion): number {
    this.ctx.persist();
    return this.ctx.store.deleteHistory(what);
  }

  /** Outgoing messages (unfinished and recent finished ones), without their blobs and without internal CARDs. */
  outbox(): Array<{ id: string; to: string; state: DeliveryState; reason?: string; parts: number; receipts: number; createdAtMs: number }> {
    return this.ctx.s.outbox.filter((m) => m.kind !== ContentKind.CARD).map((m) => ({
      id: m.id, to: m.to, state: m.state, ...(m.reason ? { reason: m.reason } : {}), parts: m.parts.length,
      receipts: m.parts.filter((p) => p.receipt).length, createdAtMs: m.createdAtMs,
    }));
  }

  messageState(id: string): { state: DeliveryState; reason?: string } | undefined {
    const m = this.ctx.s.outbox.find((x) => x.id === id);
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
    const targets = recipients.map((r) => this.contactBook.resolve(r));
    this.outgoing.checkRoom(targets.length);
    const body = encodeText({ text });
    const ids = targets.map((t) => this.outgoing.enqueue(now, t, ContentKind.TEXT, body));
    this.settle(now);
    return ids;
  }

  /** Create a group of contacts (and `fp@host:port` addresses); this client is a member. Returns its id. */
  createGroup(now: number, name: string, members: readonly string[]): string {
    const id = this.groupBook.create(name, members);
    this.settle(now);
    return id;
  }

  /** Send `text` to every member of a group (by id or name). Returns one id per other member. */
  sendGroup(now: number, group: string, text: string): string[] {
    const ids = this.groupBook.send(now, group, text);
    this.settle(now);
    return ids;
  }

  /**
   * Ask a peer (default our own) for a page of its directory; the answer comes as a `directory`
   * event. One request per peer at a time (DIRECTORY_REQUESTS_MAX peers); a lost request is not
   * retried: ask again.
   */
  listDirectory(now: number, peer?: string, page = 0): void {
    this.directory.list(now, peer, page);
    this.settle(now);
  }

  /** List this client in its own peer's directory under `name` (empty: leave it). */
  joinDirectory(now: number, name: string): void {
    if (!this.registrations.get(this.ctx.peerKey)?.registered) throw new UsageError('PEERPOST_NOT_REGISTERED', 'not registered with the peer yet; try again in a moment');
    this.directory.join(name);
    this.settle(now);
  }

  /** Send an opaque VERIFY body (safety-code exchange) to a contact. Returns the message id. */
  sendVerify(now: number, contact: string, body: Uint8Array): string {
    if (!(body instanceof Uint8Array) || body.length > VERIFY_BODY_MAX_BYTES) {
      throw new UsageError('PEERPOST_VERIFY_BODY', `verify body must be at most ${VERIFY_BODY_MAX_BYTES} bytes`);
    }
    const t = this.contactBook.resolve(contact, true);
    this.outgoing.checkRoom(1);
    const id = this.outgoing.enqueue(now, t, ContentKind.VERIFY, encodeVerify(body));
    this.settle(now);
    return id;
  }

  // -------------------------------------------------------------------------------------------
  // dispatch

  private dispatch(now: number, from: Addr, m: Message): void {
    const fromKey = addrKey(from);
    const reg = this.registrations.get(fromKey);
    switch (m.type) {
      case MsgType.CHALLENGE:
        if (reg && reg.isRegistrationChallenge(m)) reg.onChallenge(now, m);
        else this.ctx.drops.add('unexpected_challenge');
        return;
      case MsgType.COOKIE:
        this.onCookie(now, fromKey, m);
        return;
      case MsgType.SESSION: {
        if (!reg) return void this.ctx.drops.add('session_not_from_own_peer');
        const inner = reg.onSession(now, m);
        if (inner) this.dispatchSession(now, inner, reg);
        return;
      }
      case MsgType.REGISTER_AGAIN:
        if (reg) reg.onRegisterAgain(now, m.sessionId);
        return;
      case MsgType.RESULT:
        this.outgoing.onResult(now, fromKey, m.id, m.status);
        return;
      case MsgType.ERROR:
        this.onError(now, fromKey, m, reg);
        return;
      case MsgType.CERT:
        this.lookups.onCert(now, fromKey, m.fingerprint, m.cert);
        return;
      case MsgType.DIR_PAGE:
        this.directory.onPage(fromKey, m);
        return;
      default:
        this.ctx.drops.add(`unexpected_${m.type}`);
    }
  }

  /** What one of our peers sent in our session there (already authenticated). */
  private dispatchSession(now: number, m: SessionInner, reg: Registration): void {
    switch (m.type) {
      case MsgType.PUSH:
        this.incoming.onPush(now, m.id, m.blob, reg.key);
        return;
      case MsgType.ERROR:
        if (m.ref.length === 0 && this.directory.onError(reg.key, m.code)) return;
        this.ctx.drops.add('unexpected_error');
        return;
      case MsgType.OK:
        return; // keepalive answers are taken by the registration; a DIR_JOIN's needs nothing
      case MsgType.KEEPALIVE:
        // Our peer checks our new address (path validation): answer from here, naming its counter.
        if (m.answer) this.ctx.sendToPeer({ type: MsgType.OK, ref: reg.lastPeerCounter() }, reg.key);
        return;
      default:
        this.ctx.drops.add(`unexpected_${m.type}`);
    }
  }

  /** A cookie asked for with HELLO: whatever waited for it goes now. */
  private onCookie(now: number, fromKey: string, m: CookieMsg): void {
    const link = this.links.onCookie(now, fromKey, m);
    if (!link) return;
    this.outgoing.cookieArrived(now, fromKey);
    this.lookups.cookieArrived(now, fromKey);
    this.directory.cookieArrived(link, m.cookie);
  }

  /** An ERROR: its reference says what it answers (nothing, a fingerprint, a DELIVER id). */
  private onError(now: number, fromKey: string, e: ErrorMsg, reg: Registration | undefined): void {
    if (reg && reg.onError(now, e)) return;
    if (e.code === WireError.BAD_COOKIE) this.links.forgetCookie(fromKey);
    if (e.ref.length === 0 && this.directory.onError(fromKey, e.code)) return;
    if (e.ref.length === 32) return this.lookups.onError(now, fromKey, e.ref, e.code);
    if (e.ref.length !== 16) return void this.ctx.drops.add('unexpected_error');
    this.outgoing.onError(now, fromKey, e);
  }

  /** Act on every transfer and lookup whose time has come (committed by the next pollTransmit). */
  private pump(now: number): void {
    this.outgoing.pump(now);
    this.lookups.pump(now);
  }

  /** After a user call: pump (its changes are committed by the next pollTransmit, before its datagrams leave). */
  private settle(now: number): void {
    this.pump(now);
  }

  /** Delete history older than historyRetainMs; next time in RETENTION_INTERVAL_MS. */
  private retain(now: number): void {
    this.ctx.persist();
    this.ctx.store.deleteHistory({ beforeMs: now - this.ctx.o.historyRetainMs });
    this.retentionAt = now + RETENTION_INTERVAL_MS;
  }
}
