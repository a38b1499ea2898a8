/**
 * What the embedding Client and Node have in common: a client state machine on a UDP socket,
 * with contacts, sending, groups, codes and live verification, and typed events.
 *
 * Events:
 *   'registered'            { peer }                              registered with one of our peers
 *   'home-changed'          { peers }                             our peers changed (setPeers / addPeer / removePeer,
 *                                                                 or a new peer's identity pinned): republish the home record
 *   'peer-unavailable'      { peer, tries }                       our peer does not answer (we keep trying)
 *   'peer-identity-changed' { peer, expected, actual }            our peer's certificate changed; see acceptPeerIdentity()
 *   'message'               { from, fromName?, fromPeer, id, text, sentAt, group? }
 *   'delivery'              { id, to, state, reason? }            state: queued | held | delivered | failed
 *   'contact-changed'       { petname, fingerprint, previous }    a contact's identity changed; nothing is sent until confirmed
 *   'contact-cert'          { fingerprint, ok, reason? }          a contact's certificate was fetched and checked (or not)
 *   'group'                 { group }                             we learned of a group (a member wrote to it)
 *   'rejected'              { reason, from? }                     an incoming message did not authenticate
 *   'session-restarted'     { with, by }                          the encrypted session with a contact got out of step and
 *                                                                 was restarted (by: 'us' | 'them'); unopened messages go again
 *   'directory'             { peer, page, pages, entries, error? }  a page of a peer's directory (listDirectory)
 *   'verify-started' | 'verify-code' | 'verify-answer' | 'verify-failed' | 'verify-done'   live safety-code check (VerifyNotice)
 * A 'message' with `request: true` comes from a stranger (not a contact): its receipt is withheld
 * until acceptRequest(); block() silences a sender. Delivery states of the VERIFY messages of a
 * live check are not emitted (they are not the user's messages).
 */
import { EventEmitter } from 'node:events';
import { networkInterfaces } from 'node:os';
import type { Client as ClientMachine, ClientEvent, ContactRecord, DeliveryState, HistoryEntry, InboxEntry } from '../client/index.js';
import type { GroupInfo } from '../client/content.js';
import { identityCodeAsync } from '../codes/identity-code.js';
import { formatSafetyNumber, safetyNumber } from '../codes/safety-number.js';
import { fingerprintFromHex, type Identity } from '../identity/certificate.js';
import { UsageError } from '../core/errors.js';
import type { UdpDriver } from '../net/udp-driver.js';
import { VerifyManager, type VerifyNotice } from './verify-manager.js';
import { cryptoRandom, type EventedMachine } from './host.js';
import type { HomeLock } from './home-lock.js';
import { parsePeerAddress } from './peer-address.js';
import { addrKey } from '../core/types.js';
import type { HomePeer, HomeRecord } from '../core/home.js';

type Ev<T extends ClientEvent['type']> = Omit<Extract<ClientEvent, { type: T }>, 'type'>;
type Vn<T extends VerifyNotice['type']> = Omit<Extract<VerifyNotice, { type: T }>, 'type'>;

export interface MessengerEvents {
  registered: [Ev<'registered'>];
  'home-changed': [Ev<'home-changed'>];
  'peer-unavailable': [Ev<'peer-unavailable'>];
  'peer-identity-changed': [Ev<'peer-identity-changed'>];
  message: [Ev<'message'>];
  delivery: [Ev<'delivery'>];
  'contact-changed': [Ev<'contact-changed'>];
  'contact-cert': [Ev<'contact-cert'>];
  group: [Ev<'group'>];
  rejected: [Ev<'rejected'>];
  'session-restarted': [Ev<'session-restarted'>];
  directory: [Ev<'directory'>];
  'verify-started': [Vn<'verify-started'>];
  'verify-code': [Vn<'verify-code'>];
  'verify-answer': [Vn<'verify-answer'>];
  'verify-failed': [Vn<'verify-failed'>];
  'verify-done': [Vn<'verify-done'>];
}

export interface Codes {
  /** Our own 6-digit identity code. */
  mine: string;
  /** The contact's 6-digit identity code. */
  theirs: string;
  /** The 60-digit safety number of the pair, in groups of five. */
  safetyNumber: string;
}

export class Messenger extends EventEmitter<MessengerEvents> {
  /** @internal */ protected readonly verifier: VerifyManager;
  private closing: Promise<void> | undefined;
  private netTimer: NodeJS.Timeout | undefined;
  private netShape = interfacesShape();

  /** @internal */
  protected constructor(
    readonly identity: Identity,
    protected readonly machine: ClientMachine,
    protected readonly evented: EventedMachine<ClientEvent>,
    protected readonly driver: UdpDriver,
    private readonly lock: HomeLock | undefined,
    protected readonly clock: () => number,
  ) {
    super();
    this.verifier = new VerifyManager(machine, cryptoRandom, (n) => this.emitVerify(n));
    // A new local address (another network, a VPN, DHCP) means a new public mapping: register again.
    this.netTimer = setInterval(() => {
      const shape = interfacesShape();
      if (shape === this.netShape) return;
      this.netShape = shape;
      this.networkChanged();
    }, NETWORK_CHECK_INTERVAL_MS);
    this.netTimer.unref();
  }

  /** @internal Route one client event to listeners (and the verification manager). */
  dispatchEvent(e: ClientEvent): void {
    if (e.type === 'verify') {
      this.verifier.receive(this.clock(), e.from, e.body);
      this.wake();
      return;
    }
    if (e.type === 'delivery' && this.verifier.isInternal(e.id)) return;
    const { type, ...rest } = e;
    (this.emit as (t: string, v: unknown) => boolean)(type, rest);
  }

  private emitVerify(n: VerifyNotice): void {
    const { type, ...rest } = n;
    queueMicrotask(() => (this.emit as (t: string, v: unknown) => boolean)(type, rest));
  }

  private wakeQueued = false;

  /**
   * @internal Let the driver send what user calls queued, and collect events: once, in a
   * microtask after the current synchronous code, so that a burst of calls (a loop of send())
   * is committed to the store in one transaction before its datagrams leave.
   */
  protected wake(): void {
    this.evented.schedule();
    if (this.wakeQueued) return;
    this.wakeQueued = true;
    queueMicrotask(() => {
      this.wakeQueued = false;
      this.driver.wake();
    });
  }

  private call<T>(f: (now: number) => T): T {
    try {
      return f(this.clock());
    } finally {
      this.wake();
    }
  }

  /** 64 lowercase hex. */
  get fingerprint(): string {
    return this.machine.fingerprint;
  }

  /** `fingerprint@host:port`: what another user passes to contacts add or send. */
  get address(): string {
    return this.machine.address;
  }

  get registered(): boolean {
    return this.machine.registered;
  }

  /** The certificate fingerprint (64 hex) of our own peer, once it answered. */
  get peerFingerprint(): string | undefined {
    return this.machine.pinnedPeerFingerprint;
  }

  /** Send text to one or more recipients (petnames, contact fingerprints or fp@host:port). Returns one id per recipient. */
  send(to: string | readonly string[], text: string): string[] {
    const list = typeof to === 'string' ? [to] : to;
    return this.call((now) => this.machine.send(now, list, text));
  }

  /**
   * Add a contact `fp@host:port` under a petname; its certificate is fetched from its peer and
   * checked, unless `cert` is given (it must hash to fp: one from a verified home record).
   */
  addContact(address: string, petname?: string, cert?: Uint8Array): ContactRecord {
    return this.call((now) => this.machine.addContact(now, address, petname, cert));
  }

  /** Accept a message request from the stranger `fp` (64 hex): add them as a contact and send the withheld receipts. */
  acceptRequest(fp: string, petname?: string): ContactRecord {
    return this.call((now) => this.machine.acceptRequest(now, fp, petname));
  }

  /** Drop every further message from `fp` silently. Not saved: an embedder keeps its own list (the CLI keeps it in config.json). */
  block(fp: string): void {
    if (!fingerprintFromHex(fp)) throw new UsageError('PEERPOST_BAD_FINGERPRINT', 'a fingerprint is 64 lowercase hex digits');
    this.call((now) => this.machine.block(now, fp));
  }

  unblock(fp: string): void {
    this.call((now) => this.machine.unblock(now, fp));
  }

  blocked(): string[] {
    return this.machine.blocked();
  }

  removeContact(petname: string): void {
    this.call((now) => this.machine.removeContact(now, petname));
  }

  /** Accept a contact flagged as changed. */
  confirmContact(petname: string): void {
    this.call((now) => this.machine.confirmContact(now, petname));
  }

  contacts(): ContactRecord[] {
    return this.machine.contacts();
  }

  createGroup(name: string, members: readonly string[]): string {
    return this.call((now) => this.machine.createGroup(now, name, members));
  }

  sendGroup(group: string, text: string): string[] {
    return this.call((now) => this.machine.sendGroup(now, group, text));
  }

  groups(): GroupInfo[] {
    return this.machine.groups();
  }

  inbox(): InboxEntry[] {
    return this.machine.inbox();
  }

  /**
   * Messages sent and received, with one contact (petname, fingerprint or fp@host:port) or with
   * everyone: the newest `limit` (default HISTORY_LIMIT_DEFAULT), oldest first; `before` a message
   * id pages back; `search` keeps the messages whose text has those words.
   */
  history(contact?: string, opts: HistoryOptions = {}): HistoryEntry[] {
    const limit = opts.limit ?? HISTORY_LIMIT_DEFAULT;
    if (!Number.isInteger(limit) || limit < 1) throw new UsageError('PEERPOST_BAD_LIMIT', 'limit must be an integer >= 1');
    return this.machine.history({
      limit,
      ...(contact !== undefined ? { contact: this.resolveFingerprint(contact) } : {}),
      ...(opts.before !== undefined ? { beforeId: checkMessageId(opts.before) } : {}),
      ...(opts.search !== undefined ? { search: opts.search } : {}),
    });
  }

  /** Delete a contact's messages, or one message by id, from the history; returns how many. */
  deleteHistory(what: { contact: string } | { id: string }): number {
    if ('contact' in what) return this.machine.deleteHistory({ contact: this.resolveFingerprint(what.contact) });
    return this.machine.deleteHistory({ id: checkMessageId(what.id) });
  }

  outbox(): ReturnType<ClientMachine['outbox']> {
    return this.machine.outbox();
  }

  messageState(id: string): { state: DeliveryState; reason?: string } | undefined {
    return this.machine.messageState(id);
  }

  /** Ask a peer (default ours) for a page of its directory; a 'directory' event answers. */
  listDirectory(peer?: string, page = 0): void {
    this.call((now) => this.machine.listDirectory(now, peer, page));
  }

  /** Be listed in our peer's directory under `name` (empty string: leave it). */
  joinDirectory(name: string): void {
    this.call((now) => this.machine.joinDirectory(now, name));
  }

  /** Our home peers in order, each with whether we are registered there and its pinned fingerprint. */
  peers(): ReturnType<ClientMachine['peers']> {
    return this.machine.peers();
  }

  /** Register with these peers (`host:port`, literal IPs), in this order; 'home-changed' follows. */
  setPeers(peers: readonly string[]): void {
    if (!Array.isArray(peers)) throw new UsageError('PEERPOST_NO_PEER', 'peers must be a list of HOST:PORT');
    const addrs = peers.map((p) => parsePeerAddress(p));
    this.call((now) => this.machine.setPeers(now, addrs));
  }

  /** Add a home peer at the end of the list (nothing when it is there already). */
  addPeer(peer: string): void {
    const key = addrKey(parsePeerAddress(peer));
    const list = this.peers().map((p) => p.peer);
    if (!list.includes(key)) this.setPeers([...list, key]);
  }

  /** Remove a home peer; the last one cannot be removed (PEERPOST_NO_PEER). */
  removePeer(peer: string): void {
    const key = addrKey(parsePeerAddress(peer));
    const list = this.peers().map((p) => p.peer);
    if (!list.includes(key)) throw new UsageError('PEERPOST_UNKNOWN_PEER', `${key} is not one of our peers (${list.join(', ')})`);
    this.setPeers(list.filter((p) => p !== key));
  }

  /** Our home as a home record announces it: our peers whose identity we pinned, in order. */
  homePeers(): HomePeer[] {
    return this.machine.homePeers();
  }

  private resolver: ((fp: string) => Promise<HomeRecord | null>) | undefined;
  private resolving = 0;

  /**
   * Resolve contacts' home records with `resolve` (a DHT lookup that checks the record's
   * signature): the client asks when a peer of a contact's home stops answering or says the
   * contact is not there. Without one, the hint address stays a contact's only home.
   */
  setHomeResolver(resolve: ((fp: string) => Promise<HomeRecord | null>) | undefined): void {
    this.resolver = resolve;
    this.machine.resolveHomes(resolve !== undefined);
    this.answerHomeRequests();
  }

  /** @internal Hand the client's home resolutions to the resolver (each answered once; the client bounds how many are out). */
  answerHomeRequests(): void {
    const resolve = this.resolver;
    if (!resolve) return;
    for (let fp = this.machine.pollHomeRequest(); fp; fp = this.machine.pollHomeRequest()) {
      const asked = fp;
      this.resolving++;
      resolve(asked)
        .catch(() => null)
        .then((rec) => {
          this.resolving--;
          if (this.closing) return;
          try {
            this.call((now) => this.machine.homeResolved(now, asked, rec));
          } catch {
            this.call((now) => this.machine.homeResolved(now, asked, null));
          }
        });
    }
  }

  /** Ask our peer for waiting messages now. */
  poll(): void {
    this.call((now) => this.machine.poll(now));
  }

  /** Our address or network changed: register again. */
  networkChanged(): void {
    this.call((now) => this.machine.networkChanged(now));
  }

  acceptPeerIdentity(): void {
    this.call((now) => this.machine.acceptPeerIdentity(now));
  }

  /** Both 6-digit identity codes and the 60-digit safety number for a contact (petname, fingerprint or fp@host:port). */
  async codes(contact: string): Promise<Codes> {
    return codesFor(this.fingerprint, this.resolveFingerprint(contact));
  }

  /** Start a live check with an online contact: 'verify-code' follows on both sides; then confirmVerification(). */
  verify(contact: string): void {
    this.call((now) => this.verifier.start(now, contact));
  }

  /** Record whether the users saw the same code. */
  confirmVerification(contact: string, codesMatch: boolean): void {
    this.call((now) => this.verifier.confirm(now, contact, codesMatch));
  }

  stats(): ReturnType<ClientMachine['stats']> {
    return this.machine.stats();
  }

  /** Resolve a petname, a contact fingerprint or `fp@host:port` to a fingerprint. */
  resolveFingerprint(ref: string): string {
    const c = this.machine.contacts().find((x) => x.petname === ref || x.fingerprint === ref);
    if (c) return c.fingerprint;
    const fp = ref.split('@')[0] ?? '';
    if (fingerprintFromHex(fp)) return fp;
    throw new UsageError('PEERPOST_UNKNOWN_CONTACT', `no contact "${ref}" (give a petname, or fingerprint@host:port)`);
  }

  /** Stop: send what is queued, close the socket, release the home folder. */
  close(): Promise<void> {
    this.closing ??= this.shutdown().finally(() => this.lock?.release());
    return this.closing;
  }

  /** @internal */
  protected async shutdown(): Promise<void> {
    if (this.netTimer) clearInterval(this.netTimer);
    this.driver.wake(); // what the last calls queued goes out before the socket closes
    await this.driver.close();
  }
}

export interface HistoryOptions {
  limit?: number;
  /** A message id: only messages before it. */
  before?: string;
  search?: string;
}

/** Messages history() returns when no limit is given. */
export const HISTORY_LIMIT_DEFAULT = 50;

/** A message id is 32 lowercase hex digits. */
export function checkMessageId(id: string): string {
  if (typeof id !== 'string' || !/^[0-9a-f]{32}$/.test(id)) throw new UsageError('PEERPOST_BAD_MESSAGE_ID', `a message id is 32 lowercase hex digits, not "${String(id).slice(0, 40)}"`);
  return id;
}

/** How often the local addresses are compared with the last ones seen. */
export const NETWORK_CHECK_INTERVAL_MS = 5000;

/** The set of local non-internal addresses, as one comparable string. */
function interfacesShape(): string {
  const out: string[] = [];
  for (const [name, list] of Object.entries(networkInterfaces())) {
    for (const a of list ?? []) if (!a.internal) out.push(`${name}/${a.address}`);
  }
  return out.sort().join(',');
}

/** The codes of a pair, computed locally (no network). */
export async function codesFor(myFp: string, theirFp: string): Promise<Codes> {
  const a = fingerprintFromHex(myFp);
  const b = fingerprintFromHex(theirFp);
  if (!a || !b) throw new UsageError('PEERPOST_BAD_FINGERPRINT', 'a fingerprint is 64 lowercase hex digits');
  const [mine, theirs] = await Promise.all([identityCodeAsync(a), identityCodeAsync(b)]);
  return { mine, theirs, safetyNumber: formatSafetyNumber(safetyNumber(a, b)) };
}
