/**
 * Waiting messages of a peer, in RAM only: one mailbox per recipient fingerprint (present only
 * while it holds a message), a global set in store order (the expiry order, since every message
 * lives the same mailboxTtlMs), the count of un-acknowledged messages per (sender address,
 * recipient), and the bytes held. A message leaves only when its recipient acks it or it expires.
 */
import type { Addr } from '../core/types.js';

/**
 * Bookkeeping cost charged per message against storageBytesMax, on top of its blob: measured
 * ~450 B of heap per message when every message goes to a different recipient (the worst case).
 */
export const MESSAGE_OVERHEAD_BYTES = 512;
/** Most senders waiting for the answer to one message (a duplicate DELIVER from another address). */
export const WAITERS_PER_MESSAGE_MAX = 4;

export interface Waiting {
  /** Recipient fingerprint (latin1 key). */
  readonly to: string;
  /** Message id, latin1 string of its 16 bytes. */
  readonly idKey: string;
  /**
   * The sealed blob. During its first push, a view of the DELIVER datagram that brought it (no
   * copy for a message that is acknowledged at once); once it waits (stored for a recipient away,
   * or its first push timed out), a latin1 string, one char per byte: no ArrayBuffer per waiting
   * message.
   */
  blob: string | Uint8Array;
  /** Key of the un-acknowledged counter: sender addrKey + recipient. */
  readonly senderKey: string;
  readonly expiresAt: number;
  /** The recipient was not registered when the message was stored (counted in unregisteredChargedBytes). */
  readonly unregistered: boolean;
  /** Time of the last PUSH, -Infinity before the first. */
  lastPushAt: number;
  /** A PUSH is waiting for its ACK (the pushAck timer runs). */
  inFlight: boolean;
  /** Pushes made by the pushAck timer since the last push that started a series. */
  timerPushes: number;
  /** Senders to answer with RESULT when the push resolves. */
  waiters: Addr[] | null;
}

export class MessageStore {
  /** Per recipient, in arrival order. An array, not a Map: most mailboxes hold one message. */
  private readonly mailboxes = new Map<string, Waiting[]>();
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
    const box = this.mailboxes.get(to);
    if (box) for (const w of box) if (w.idKey === idKey) return w;
    return undefined;
  }

  mailboxSize(to: string): number {
    return this.mailboxes.get(to)?.length ?? 0;
  }

  unackedOf(senderKey: string): number {
    return this.unacked.get(senderKey) ?? 0;
  }

  /** The recipient's messages in arrival order (a live view: copy before removing). */
  mailbox(to: string): Iterable<Waiting> {
    return this.mailboxes.get(to) ?? [];
  }

  add(w: Waiting): void {
    const box = this.mailboxes.get(w.to);
    if (box) box.push(w);
    else this.mailboxes.set(w.to, [w]); // a literal: no spare capacity for the common single message
    this.all.add(w);
    this.unacked.set(w.senderKey, this.unackedOf(w.senderKey) + 1);
    this.blobBytes += w.blob.length;
    if (w.unregistered) this.unregisteredChargedBytes += w.blob.length + MESSAGE_OVERHEAD_BYTES;
  }

  remove(w: Waiting): void {
    if (!this.all.delete(w)) return;
    const box = this.mailboxes.get(w.to);
    if (box) {
      const i = box.indexOf(w);
      if (i >= 0) box.splice(i, 1);
      if (box.length === 0) this.mailboxes.delete(w.to);
    }
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
