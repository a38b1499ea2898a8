/**
 * What a client persists, and the synchronous store interface that keeps it. The client keeps its
 * small state (contacts, groups, certificates, outbox, dedupe entries, pinned fingerprints) in
 * memory as a snapshot and hands the store only the rows that changed, plus the history changes,
 * in one commit (src/client/changes.ts); the commit happens before any datagram that depends on it
 * can be taken with pollTransmit, so an ACK never leaves before what it acknowledges is on disk.
 * The history (every message sent and received) lives only in the store. All bytes are lowercase
 * hex so every record is plain JSON.
 */
import type { GroupMember } from './content.js';

export const CLIENT_STATE_VERSION = 1;

export type Verification = 'unverified' | 'verified' | 'mismatch';

export interface ContactRecord {
  petname: string;
  /** 64 lowercase hex. */
  fingerprint: string;
  /** host:port of the contact's peer. */
  peer: string;
  /** Certificate DER (hex) once fetched and checked against the fingerprint. */
  cert?: string;
  verification: Verification;
  /** Re-added with another fingerprint: nothing is sent to it until confirmContact(). */
  changed: boolean;
  /** The fingerprint before the change, while `changed`. */
  previousFingerprint?: string;
  addedAtMs: number;
}

export interface GroupRecord {
  id: string;
  name: string;
  members: GroupMember[];
}

export type DeliveryState = 'queued' | 'held' | 'delivered' | 'failed';

/** One DELIVER of an outgoing message: the whole message, or one of its chunks. */
export interface OutboxPart {
  /** DELIVER id, 32 hex. */
  id: string;
  /** The sealed blob (hex), fixed once made so every resend is identical (until the session it went through is restarted). */
  blob: string;
  /** What the recipient's peer last said: nothing yet, held (300) or pushed and acked (200). */
  peerStatus: 'none' | 'held' | 'acked';
  /** The end-to-end receipt for this part came back. */
  receipt: boolean;
  /** Made again for a new session: a peer still holding the old blob answers ID_CONFLICT, which is waited out. */
  again?: boolean;
  /** Through a session: the sending chain (first 16 hex of its ratchet key) and the message counter in it. */
  chain?: string;
  n?: number;
  /**
   * Since when (ms) this part waits, not sent, for the session we restarted to be able to send
   * (src/client/outgoing.ts, SESSION_RESTART_WAIT_MS); its blob is the old session's.
   */
  waiting?: number;
}

export interface OutboxMessage {
  /** Message id shown to the user, 32 hex (the DELIVER id when the message is one part). */
  id: string;
  /** Recipient fingerprint, 64 hex. */
  to: string;
  /** Recipient's peer, host:port. */
  toPeer: string;
  kind: number;
  createdAtMs: number;
  state: DeliveryState;
  reason?: string;
  /** The plain body (hex) kept until sealed (the certificate may not be known yet). */
  body?: string;
  /**
   * The plain body (hex) of a one-part message that went through a ratcheted session, kept while it
   * is unfinished: if the session gets out of step it goes again under a new one, with the same id.
   */
  plain?: string;
  parts: OutboxPart[];
}

export interface InboxEntry {
  /** Message id, 32 hex. */
  id: string;
  from: string;
  fromName?: string;
  fromPeer: string;
  text: string;
  sentAtMs: number;
  receivedAtMs: number;
  group?: { id: string; name: string; members: GroupMember[] };
}

export interface DedupeEntry {
  /** sender fingerprint hex + ':' + message id hex */
  key: string;
  atMs: number;
  /** The message's sending time (sender's clock), for the sender's floor when the entry goes early. */
  sentAtMs?: number;
}

/** A ratcheted session with one client (src/client/ratchets.ts). */
export interface RatchetRecord {
  /** encodeRatchetState, hex. */
  s: string;
  /** The start key (hex) this session began from, to recognise a CARD sent again. */
  start: string;
  /**
   * The newest sending time (the contact's clock) of the CARD whose start key we took and of the
   * messages opened through this session; absent while none. A CARD sent no later than it does
   * not restart the session.
   */
  at?: number;
  /**
   * Start keys (hex, space-separated, newest last, at most RATCHET_OLD_STARTS_MAX) this client
   * ignored or replaced: a late or replayed CARD carrying one does not restart the session.
   */
  old?: string;
  /**
   * The session this one replaced when it was running (encodeRatchetState, hex), kept to open
   * messages still on their way under it, and when it was replaced (RATCHET_SKIPPED_KEY_AGE_MAX_MS).
   */
  prev?: string;
  prevAt?: number;
}

/**
 * The small state the client works on in memory: everything but the history. Top-level fields
 * other than the keyed collections below are kept as they are (one JSON value each), so a new
 * optional field needs no change of the stores.
 */
export interface ClientSnapshot {
  version: typeof CLIENT_STATE_VERSION;
  /**
   * Our delivery key (64 hex), given to our peer at every registration; the capabilities we hand
   * our contacts are derived from it (src/crypto/session.ts). Made on first use.
   */
  deliveryKey?: string;
  /** Fingerprint of our own (first) peer, pinned on first registration. */
  peerFingerprint?: string;
  /** Fingerprints of each of our peers by host:port, pinned on first registration there. */
  peerPins?: Record<string, string>;
  /** Contacts' homes from their records (by fingerprint): peers in order, seq, time; least recently used first. */
  homes?: Record<string, { peers: string[]; seq: number; timeMs: number }>;
  contacts: ContactRecord[];
  groups: GroupRecord[];
  /** Certificates (hex) of senders and group members that are not contacts, by fingerprint. */
  certs: Record<string, string>;
  outbox: OutboxMessage[];
  dedupe: DedupeEntry[];
  /**
   * Capabilities others gave us (capId || capKey, 72 hex) by their fingerprint: DELIVERs to them
   * carry one. Bounded like certs (certsMax).
   */
  caps?: Record<string, string>;
  /** Fingerprints whose receipt for our CARD came back (they have our certificate and, if a contact, our capability), with when. */
  cardsAcked?: Record<string, number>;
  /**
   * Per sender: the sending time of the newest message forgotten from the dedupe window before its
   * time (the window was full). A message from that sender sent at or before it is refused as a
   * possible replay, since its id may have been forgotten.
   */
  dedupeFloors?: Record<string, number>;
  /** Ratcheted sessions by fingerprint, least recently used first (at most certsMax). */
  ratchets?: Record<string, RatchetRecord>;
  /** Push ids (hex) opened through a session -> "senderFingerprint senderPeer" (and " r" for a receipt); at most dedupeEntriesMax. */
  ratchetSeen?: Record<string, string>;
}

/** The snapshot fields kept as keyed rows; every other top-level field is one JSON value. */
export const SNAPSHOT_COLLECTIONS: ReadonlySet<string> = new Set(['version', 'contacts', 'groups', 'certs', 'outbox', 'dedupe', 'inbox']);

/**
 * Top-level fields that are maps from a key to a value, kept by the stores as one row per key
 * (StoreBatch.keyed) rather than as one JSON value: they change a key at a time, on the message
 * path (a session moves on with every message, every opened push is remembered), and can hold
 * thousands of keys. The client sets and deletes their keys in place; the change tracker finds
 * the keys whose value changed by comparing each value with the one last committed (===): an
 * object value is replaced, never changed in place (committed ones are frozen). A key whose value
 * changes is written again at the end of the rows, so the rows keep the map's order of last
 * change, which is the order its bound forgets keys in (least recently used first).
 */
export const KEYED_FIELDS = ['caps', 'cardsAcked', 'dedupeFloors', 'ratchets', 'ratchetSeen'] as const;
export type KeyedField = (typeof KEYED_FIELDS)[number];
const KEYED_SET: ReadonlySet<string> = new Set(KEYED_FIELDS);

/** Whether top-level field `k` is kept as keyed rows. */
export function isKeyedField(k: string): k is KeyedField {
  return KEYED_SET.has(k);
}

/** A snapshot's other top-level fields as batch rows: keyed fields row by row, the rest as meta. */
export function topLevelRows(fields: Record<string, unknown>): Pick<StoreBatch, 'meta' | 'keyed'> {
  const meta: StoreBatch['meta'] = [];
  const keyed: StoreBatch['keyed'] = [];
  for (const [k, v] of Object.entries(fields)) {
    if (v === undefined || k === 'inbox' || k === 'history') continue;
    if (isKeyedField(k)) {
      if (typeof v === 'object' && v !== null && !Array.isArray(v)) for (const [key, x] of Object.entries(v)) keyed.push([k, key, x]);
    } else {
      meta.push([k, v]);
    }
  }
  return { meta, keyed };
}

export function emptySnapshot(): ClientSnapshot {
  return { version: CLIENT_STATE_VERSION, contacts: [], groups: [], certs: {}, outbox: [], dedupe: [] };
}

/** One message of the history, sent ('out') or received ('in'). */
export interface HistoryEntry {
  /** Message id, 32 hex. */
  id: string;
  /** The other side: the recipient of a sent message, the sender of a received one (64 hex). */
  contact: string;
  dir: 'in' | 'out';
  /** When it was stored: sent (out) or received (in), ms since the epoch. */
  atMs: number;
  /** The sender's time. */
  sentAtMs: number;
  text: string;
  /** Sent messages: the delivery state, and why it waits or failed. */
  state?: DeliveryState;
  reason?: string;
  /** Received messages: the sender's petname then, and its peer. */
  fromName?: string;
  fromPeer?: string;
  group?: { id: string; name: string; members: GroupMember[] };
}

/** A dedupe entry's values: when it was seen, and when the message was sent (the sender's clock). */
export interface DedupeValue {
  atMs: number;
  sentAtMs?: number;
}

/** A change of the history in a commit. */
export type HistoryOp =
  | { op: 'add'; entry: HistoryEntry }
  | { op: 'state'; id: string; contact: string; state: DeliveryState; reason?: string };

/**
 * One commit: the rows that changed since the last one. `undefined` as a value deletes the row.
 * Keys: meta by field name, contacts by petname, groups by id, certs by fingerprint, outbox by
 * message id, dedupe by `sender:id`, keyed rows by field and key.
 */
export interface StoreBatch {
  meta: Array<[string, unknown]>;
  contacts: Array<[string, ContactRecord | undefined]>;
  groups: Array<[string, GroupRecord | undefined]>;
  certs: Array<[string, string | undefined]>;
  outbox: Array<[string, OutboxMessage | undefined]>;
  dedupe: Array<[string, DedupeValue | undefined]>;
  /** Rows of the KEYED_FIELDS maps: field, key, value (undefined deletes). */
  keyed: Array<[KeyedField, string, unknown]>;
  history: HistoryOp[];
}

/** A batch that changes nothing (to fill in). */
export function emptyBatch(): StoreBatch {
  return { meta: [], contacts: [], groups: [], certs: [], outbox: [], dedupe: [], keyed: [], history: [] };
}

export interface HistoryQuery {
  /** Only messages with this contact (fingerprint). */
  contact?: string;
  /** Only sent or received ones. */
  dir?: 'in' | 'out';
  /** At most this many: the newest ones, returned oldest first. */
  limit: number;
  /** Only messages stored before the message with this id. */
  beforeId?: string;
  /** Only messages whose text contains these words (full-text search where the store has it). */
  search?: string;
}

/** What to delete from the history. */
export type HistoryDeletion = { contact: string } | { id: string } | { beforeMs: number };

/**
 * Synchronous persistence. load() returns undefined when nothing was saved yet. commit() applies
 * one batch atomically (all of it or, when it throws, none of it); the client calls it before any
 * datagram that depends on the batch can leave (an ACK in particular). The history is read and
 * deleted through the store, never held whole in memory.
 */
export interface ClientStore {
  load(): ClientSnapshot | undefined;
  commit(batch: StoreBatch): void;
  history(q: HistoryQuery): HistoryEntry[];
  /** Deletes messages from the history; returns how many. */
  deleteHistory(what: HistoryDeletion): number;
  /** How many messages the history holds (received ones with dir 'in'). */
  historyCount(dir?: 'in' | 'out'): number;
}

/** Structural check of a parsed snapshot; returns a reason or null. */
export function snapshotProblem(v: unknown): string | null {
  if (typeof v !== 'object' || v === null) return 'not an object';
  const s = v as Partial<ClientSnapshot>;
  if (s.version !== CLIENT_STATE_VERSION) return `unknown version ${String(s.version)}`;
  for (const k of ['contacts', 'groups', 'outbox', 'dedupe'] as const) {
    if (!Array.isArray(s[k])) return `field ${k} is not a list`;
  }
  if (typeof s.certs !== 'object' || s.certs === null || Array.isArray(s.certs)) return 'field certs is not an object';
  if (s.peerFingerprint !== undefined && (typeof s.peerFingerprint !== 'string' || !/^[0-9a-f]{64}$/.test(s.peerFingerprint))) {
    return 'field peerFingerprint is not a fingerprint';
  }
  if (s.deliveryKey !== undefined && (typeof s.deliveryKey !== 'string' || !/^[0-9a-f]{64}$/.test(s.deliveryKey))) {
    return 'field deliveryKey is not 32 bytes of hex';
  }
  return null;
}
