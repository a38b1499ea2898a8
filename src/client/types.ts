/**
 * Options, events and defaults of the client state machine (src/client/client.ts).
 */
import type { Addr, Logger, Random } from '../core/types.js';
import type { Identity } from '../identity/certificate.js';
import type { GroupInfo } from './content.js';
import type { ClientStore, DeliveryState } from './store.js';

export interface ClientOptions {
  identity: Identity;
  /** Our own peer: the first of our home peers (senders try it first). */
  peer: Addr;
  /**
   * Further peers to register with at the same time (in the order senders should try them after
   * `peer`); at most homePeersMax in all. Messages are collected from every one.
   */
  morePeers?: readonly Addr[];
  store: ClientStore;
  random: Random;
  logger?: Logger;
  /** Our peer's address as others reach it (written into every sealed message); default addrKey(peer). */
  senderPeer?: string;
  registerInitialMs?: number;
  registerRetryMaxMs?: number;
  registerTriesBeforeUnavailable?: number;
  /** 0 disables keepalives. */
  keepaliveIntervalMs?: number;
  keepaliveMissesBeforeReregister?: number;
  /** Every this many keepalives one asks the peer for an OK (the others cost the peer no answer). */
  keepaliveAnswerEvery?: number;
  messageTtlMs?: number;
  receiptWaitMs?: number;
  receiptWaitMaxMs?: number;
  unackedPerRecipientMax?: number;
  /** Parts in flight to a recipient whose capability we hold (its peer keeps them on our own quota). */
  capWindowMax?: number;
  /** Most time (ms) into the future a message's sending time may be and still be shown. */
  clockSkewMaxMs?: number;
  busyBackoffInitialMs?: number;
  busyBackoffMaxMs?: number;
  cookieReuseMs?: number;
  certRetryMs?: number;
  certLookupTriesMax?: number;
  unknownSenderGraceMs?: number;
  receiptBatchDelayMs?: number;
  outboxMessagesMax?: number;
  sentHistoryMax?: number;
  inboxMessagesMax?: number;
  /** History older than this is deleted (at start and every hour); 0 keeps it forever. */
  historyRetainMs?: number;
  dedupeEntriesMax?: number;
  dedupeTtlMs?: number;
  dedupeFloorsMax?: number;
  partialMessagesMax?: number;
  partialBytesMax?: number;
  partialAgeMaxMs?: number;
  pendingVerifyMax?: number;
  receiptTransfersMax?: number;
  peerLinksMax?: number;
  contactsMax?: number;
  groupsMax?: number;
  certsMax?: number;
  eventsMax?: number;
  /** Peers this client registers with at once, and peers of a contact's home that are tried. */
  homePeersMax?: number;
  /** DELIVERs (or cookie requests) to a recipient's peer without any answer before the next peer of its home is tried. */
  homeFailoverTries?: number;
  /** Least time between two resolutions of the same contact's home. */
  homeResolveIntervalMs?: number;
  /** Home resolutions asked for and not answered yet; beyond, a failover waits for a slot. */
  homeResolutionsMax?: number;
  /** A resolution not answered in this time counts as answered with no record. */
  homeResolveTimeoutMs?: number;
  /** Contacts' home records kept (the least recently used is forgotten; the hint address stays). */
  homesMax?: number;
}

export const CLIENT_DEFAULTS = {
  registerInitialMs: 1000,
  registerRetryMaxMs: 60_000,
  registerTriesBeforeUnavailable: 4,
  keepaliveIntervalMs: 25_000,
  keepaliveMissesBeforeReregister: 3,
  keepaliveAnswerEvery: 4,
  messageTtlMs: 7 * 24 * 3600_000,
  receiptWaitMs: 60_000,
  receiptWaitMaxMs: 10 * 60_000,
  unackedPerRecipientMax: 8,
  capWindowMax: 100,
  clockSkewMaxMs: 24 * 3600_000,
  busyBackoffInitialMs: 1000,
  busyBackoffMaxMs: 60_000,
  cookieReuseMs: 90_000,
  certRetryMs: 30_000,
  certLookupTriesMax: 6,
  unknownSenderGraceMs: 2 * 60_000,
  receiptBatchDelayMs: 20,
  outboxMessagesMax: 1000,
  sentHistoryMax: 500,
  inboxMessagesMax: 1000,
  historyRetainMs: 0,
  dedupeEntriesMax: 8192,
  dedupeTtlMs: 8 * 24 * 3600_000,
  dedupeFloorsMax: 10_000,
  partialMessagesMax: 16,
  partialBytesMax: 2 * 1024 * 1024,
  partialAgeMaxMs: 30 * 60_000,
  pendingVerifyMax: 64,
  receiptTransfersMax: 256,
  peerLinksMax: 1024,
  contactsMax: 10_000,
  groupsMax: 1000,
  certsMax: 4096,
  eventsMax: 10_000,
  homePeersMax: 8,
  homeFailoverTries: 4,
  homeResolveIntervalMs: 15_000,
  homeResolutionsMax: 16,
  homeResolveTimeoutMs: 20_000,
  homesMax: 4096,
};
export type ClientSettings = typeof CLIENT_DEFAULTS;

export type ClientEvent =
  | { type: 'registered'; peer: string }
  /** Our list of peers changed (setPeers): a home record announcing it should be published. */
  | { type: 'home-changed'; peers: string[] }
  | { type: 'peer-unavailable'; peer: string; tries: number }
  | { type: 'peer-identity-changed'; peer: string; expected: string; actual: string }
  | {
      type: 'message';
      from: string;
      fromName?: string;
      fromPeer: string;
      id: string;
      text: string;
      sentAt: number;
      group?: GroupInfo;
      /** The sender is not a contact: a message request (its receipt waits for acceptRequest). */
      request?: boolean;
    }
  | { type: 'delivery'; id: string; to: string; state: DeliveryState; reason?: string }
  | { type: 'contact-changed'; petname: string; fingerprint: string; previous: string }
  | { type: 'contact-cert'; fingerprint: string; ok: boolean; reason?: string }
  | { type: 'verify'; from: string; body: Uint8Array }
  | { type: 'group'; group: GroupInfo }
  | { type: 'rejected'; reason: string; from?: string }
  /**
   * The ratcheted session with `with` got out of step and was restarted: `by` 'us' when our
   * messages stopped getting through, 'them' when their CARD started a new one (they lost or
   * restored their side). Messages it had not opened go again under the new session.
   */
  | { type: 'session-restarted'; with: string; by: 'us' | 'them' }
  | {
      type: 'directory';
      peer: string;
      page: number;
      pages: number;
      entries: Array<{ name: string; fingerprint: string; address: string }>;
      error?: 'disabled' | 'bad-request';
    };

/** The closed set of client timers. */
export type ClientTimer =
  | 'register' | 'keepalive' | 'hello' | 'lookup' | 'transfer' | 'receiptFlush' | 'expiry' | 'restartWait' | 'retention' | 'home';

export interface ClientStats {
  registered: boolean;
  outboxUnfinished: number;
  transfers: number;
  inbox: number;
  partials: number;
  datagramsIn: number;
  datagramsOut: number;
  /** Incoming datagrams or messages not used, by reason. */
  drops: Record<string, number>;
}
