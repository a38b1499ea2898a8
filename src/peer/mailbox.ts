/**
 * Waiting messages of a peer, in RAM only: one mailbox per recipient fingerprint (present only
 * while it holds a message), a global set in store order (the expiry order, since every message
 * lives the same mailboxTtlMs), the count of un-acknowledged messages per (sender address,
 * recipient), and the bytes held. A message leaves only when its recipient acks it or it expires.
 */
import type { Addr } from '../core/types.js';

/** Bookkeeping cost charged per message against storageBytesMax, on top of its blob. */
export const MESSAGE_OVERHEAD_BYTES = 256;
/** Most senders waiting for the answer to one message (a duplicate DELIVER from another address). */
export const WAITERS_PER_MESSAGE_MAX = 4;

export interface Waiting {
  /** Recipient fingerprint (latin1 key). */
  readonly to: string;
  /** Message id (latin1 key) and bytes. */
  readonly idKey: string;
  readonly id: Uint8Array;
  readonly blob: Uint8Array;
  /** Key of the un-acknowledged counter: sender addrKey + recipient. */
  readonly senderKey: string;
  readonly expiresAt: number;
  /** The recipient was not registered when the message was stored (counted in unregisteredBytes). */
  readonly unregistered: boolean;
  /** Time of the last PUSH, -Infinity before the first. */
  lastPushAt: number;
  /** A PUSH is waiting for its ACK (the pushAck timer runs). */
  inFlight: boolean;
  /** Senders to answer with RESULT when the push resolves. */
  waiters: Addr[] | null;
}

export class MessageStore {
  private readonly mailboxes = new Map<string, Map<string, Waiting>>();
  private readonly all = new Set<Waiting>();
  private readonly unacked = new Map<string, number>();
  /** Sum of blob lengths. */
  blobBytes = 0;
  /** Bytes charged (blob + overhead) by messages stored for unregistered recipients. */
  unregisteredChargedBytes = 0;

  constructor(readonly mailboxTtlMs: number) {}

  get count(): number {
    return this.all.size;
  }

  /** Bytes charged against storageBytesMax: blobs plus MESSAGE_OVERHEAD_BYTES each. */
  get chargedBytes(): number {
    return this.blobBytes + this.all.size * MESSAGE_OVERHEAD_BYTES;
  }

  find(to: string, idKey: string): Waiting | undefined {
    return this.mailboxes.get(to)?.get(idKey);
  }

  mailboxSize(to: string): number {
    return this.mailboxes.get(to)?.size ?? 0;
  }

  unackedOf(senderKey: string): number {
    return this.unacked.get(senderKey) ?? 0;
  }

  /** The recipient's messages in arrival order (a live view: copy before removing). */
  mailbox(to: string): Iterable<Waiting> {
    return this.mailboxes.get(to)?.values() ?? [];
  }

  add(w: Waiting): void {
    let box = this.mailboxes.get(w.to);
    if (!box) {
      box = new Map();
      this.mailboxes.set(w.to, box);
    }
    box.set(w.idKey, w);
    this.all.add(w);
    this.unacked.set(w.senderKey, this.unackedOf(w.senderKey) + 1);
    this.blobBytes += w.blob.length;
    if (w.unregistered) this.unregisteredChargedBytes += w.blob.length + MESSAGE_OVERHEAD_BYTES;
  }

  remove(w: Waiting): void {
    if (!this.all.delete(w)) return;
    const box = this.mailboxes.get(w.to);
    box?.delete(w.idKey);
    if (box && box.size === 0) this.mailboxes.delete(w.to);
    const n = this.unackedOf(w.senderKey) - 1;
    if (n > 0) this.unacked.set(w.senderKey, n);
    else this.unacked.delete(w.senderKey);
    this.blobBytes -= w.blob.length;
    if (w.unregistered) this.unregisteredChargedBytes -= w.blob.length + MESSAGE_OVERHEAD_BYTES;
  }

  /**
   * Remove up to `max` expired messages from the front, calling `onExpire` for each. Returns the
   * earliest time another message can expire, or undefined when the store is empty.
   */
  sweep(now: number, max: number, onExpire: (w: Waiting) => void): number | undefined {
    let n = 0;
    for (const w of this.all) {
      if (w.expiresAt > now) return w.expiresAt;
      if (n++ >= max) return now;
      this.remove(w);
      onExpire(w);
    }
    return undefined;
  }
}
