/**
 * What a client persists, and the synchronous store interface that keeps it. The client hands the
 * whole snapshot to save() at the end of every call that changed it (before any datagram of that
 * call can be sent, so an ACK never leaves before the message it acknowledges is on disk). All
 * bytes are lowercase hex so a snapshot is plain JSON.
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
  /** The sealed blob (hex), fixed once made so every resend is identical. */
  blob: string;
  /** What the recipient's peer last said: nothing yet, held (300) or pushed and acked (200). */
  peerStatus: 'none' | 'held' | 'acked';
  /** The end-to-end receipt for this part came back. */
  receipt: boolean;
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

export interface ClientSnapshot {
  version: typeof CLIENT_STATE_VERSION;
  /**
   * Our delivery key (64 hex), given to our peer at every registration; the capabilities we hand
   * our contacts are derived from it (src/crypto/session.ts). Made on first use.
   */
  deliveryKey?: string;
  /** Fingerprint of our own peer, pinned on first registration. */
  peerFingerprint?: string;
  contacts: ContactRecord[];
  groups: GroupRecord[];
  /** Certificates (hex) of senders and group members that are not contacts, by fingerprint. */
  certs: Record<string, string>;
  outbox: OutboxMessage[];
  inbox: InboxEntry[];
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
}

export function emptySnapshot(): ClientSnapshot {
  return { version: CLIENT_STATE_VERSION, contacts: [], groups: [], certs: {}, outbox: [], inbox: [], dedupe: [] };
}

/** Synchronous persistence. load() returns undefined when nothing was saved yet. */
export interface ClientStore {
  load(): ClientSnapshot | undefined;
  save(snapshot: ClientSnapshot): void;
}

/** Structural check of a parsed snapshot; returns a reason or null. */
export function snapshotProblem(v: unknown): string | null {
  if (typeof v !== 'object' || v === null) return 'not an object';
  const s = v as Partial<ClientSnapshot>;
  if (s.version !== CLIENT_STATE_VERSION) return `unknown version ${String(s.version)}`;
  for (const k of ['contacts', 'groups', 'outbox', 'inbox', 'dedupe'] as const) {
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
