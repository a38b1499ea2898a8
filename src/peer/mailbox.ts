/**
 * Waiting messages of a peer, in RAM only: one mailbox per recipient fingerprint (present only
 * while it holds a message), a global set in store order (the expiry order, since every message
 * lives the same mailboxTtlMs), the count of un-acknowledged messages per (sender address,
 * recipient) of strangers, and the storage accounting (Quota: per recipient, contact, source prefix and
 * class). A message leaves when its recipient acks it, when it expires, or when it is evicted:
 * only messages whose recipient is not registered (the departed class) are evicted, oldest first
 * (in the order they entered the class), to make room for a new message that does not fit under
 * storageBytesMax or departedBytesMax, or when recipients leave and the class is over
 * departedBytesMax. The store tells its owner of each eviction (onEvict).
 */
import type { Addr } from '../core/types.js';
import { Quota, type Charge, type Charged, type QuotaLimits, type Refusal } from './quota.js';

/**
 * Bookkeeping cost charged per message against storageBytesMax, on top of its blob: the heap of
 * a waiting message beyond its blob when every message goes to a different recipient and comes
 * from a stranger (the worst case: a Waiting, its mailbox, its recipient's quota record, its
 * place in the expiry and eviction orders, its keys), measured at about 670 B.
 */
export const MESSAGE_OVERHEAD_BYTES = 768;
/** Most senders waiting for the answer to one message (a duplicate DELIVER from another address). */
export const WAITERS_PER_MESSAGE_MAX = 4;

export interface Waiting extends Charged {
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
  /** Sender address | recipient of a stranger's message (counted against unackedPerSenderMax); '' for a contact's. */
  readonly senderKey: string;
  readonly expiresAt: number;
  /** Time of the last PUSH, -Infinity before the first. */
  lastPushAt: number;
  /** A PUSH is waiting for its ACK (the pushAck timer runs). */
  inFlight: boolean;
  /** Pushes made by the pushAck timer since the last push that started a series. */
  timerPushes: number;
  /** Senders to answer with RESULT when the push resolves. */
  waiters: Addr[] | null;
}

/** The mailbox of a recipient with no message (shared: nothing is ever added to it). */
const NO_MESSAGES: readonly Waiting[] = Object.freeze([]);

export class MessageStore {
  /** Per recipient, in arrival order. An array, not a Map: most mailboxes hold one message. */
  private readonly mailboxes = new Map<string, Waiting[]>();
  private readonly all = new Set<Waiting>();
  /**
   * Message id -> the message: found in O(1) by a DELIVER again and by an ACK, however many
   * messages the recipient's mailbox holds (a scan of a full mailbox per datagram made the relay's
   * cost grow with its backlog, and the backlog with its cost, until it collapsed). Keyed by the
   * id alone (16 bytes, no composed string to build and hash per lookup); a message whose id is
   * already taken by another recipient's goes in `byRecipientId` (recipient + id) instead.
   */
  private readonly byId = new Map<string, Waiting>();
  private readonly byRecipientId = new Map<string, Waiting>();
  private readonly unacked = new Map<string, number>();
  /** Messages whose recipient is not registered, in the order they entered that class. */
  private readonly departed = new Set<Waiting>();
  readonly quota: Quota;
  /** Sum of blob lengths. */
  blobBytes = 0;

  constructor(
    readonly mailboxTtlMs: number,
    limits: QuotaLimits,
    private readonly onEvict: (w: Waiting) => void,
  ) {
    this.quota = new Quota(limits);
  }

  get count(): number {
    return this.all.size;
  }

  /** Bytes charged against storageBytesMax: blobs plus MESSAGE_OVERHEAD_BYTES each. */
  get chargedBytes(): number {
    return this.quota.totalBytes;
  }

  /** Bytes charged by messages whose recipient is not registered. */
  get departedBytes(): number {
    return this.quota.departedBytes;
  }

  /** The bound a new message with charge `c` would pass, or null when add() can store it. */
  admit(c: Charge): Refusal | null {
    return this.quota.check(c);
  }

  find(to: string, idKey: string): Waiting | undefined {
    const w = this.byId.get(idKey);
    if (w !== undefined && w.to === to) return w;
    return this.byRecipientId.size === 0 ? undefined : this.byRecipientId.get(to + idKey);
  }

  mailboxSize(to: string): number {
    return this.mailboxes.get(to)?.length ?? 0;
  }

  /** Un-acknowledged messages of a stranger (a message without a verified capability) by its senderKey. */
  unackedOf(senderKey: string): number {
    return this.unacked.get(senderKey) ?? 0;
  }

  /** The recipient's messages in arrival order (a live view: copy before removing). */
  mailbox(to: string): Iterable<Waiting> {
    return this.mailboxes.get(to) ?? NO_MESSAGES;
  }

  /**
   * Store `w` (admitted by admit()), evicting the oldest departed messages first as far as its
   * bytes need. `recipientPrefix`: as in Charge.
   */
  add(w: Waiting, recipientPrefix: string): void {
    const c: Charge = { to: w.to, contact: w.contact, senderPrefix: w.senderPrefix, bytes: w.bytes, recipientPrefix };
    this.evict(this.quota.evictBytes(c));
    this.quota.add(c);
    if (this.quota.classOf(c) === '') this.departed.add(w);
    const box = this.mailboxes.get(w.to);
    if (box) box.push(w);
    else this.mailboxes.set(w.to, [w]); // a literal: no spare capacity for the common single message
    this.all.add(w);
    if (this.byId.has(w.idKey)) this.byRecipientId.set(w.to + w.idKey, w);
    else this.byId.set(w.idKey, w);
    // Counted for strangers only: a contact's messages are bounded by its own quota instead.
    if (w.contact === '') this.unacked.set(w.senderKey, this.unackedOf(w.senderKey) + 1);
    this.blobBytes += w.blob.length;
  }

  remove(w: Waiting): void {
    if (!this.all.delete(w)) return;
    if (this.byId.get(w.idKey) === w) this.byId.delete(w.idKey);
    else this.byRecipientId.delete(w.to + w.idKey);
    this.departed.delete(w);
    this.quota.remove(w);
    const box = this.mailboxes.get(w.to);
    if (box) {
      const i = box.indexOf(w);
      if (i >= 0) box.splice(i, 1);
      if (box.length === 0) this.mailboxes.delete(w.to);
    }
    if (w.contact === '') {
      const n = this.unackedOf(w.senderKey) - 1;
      if (n > 0) this.unacked.set(w.senderKey, n);
      else this.unacked.delete(w.senderKey);
    }
    this.blobBytes -= w.blob.length;
  }

  /** `to` registered (or moved) from the address range `prefix`: its messages leave the departed class. */
  recipientRegistered(to: string, prefix: string): void {
    const box = this.mailboxes.get(to);
    if (box) for (const w of box) this.departed.delete(w);
    this.quota.recipientRegistered(to, prefix);
  }

  /** `to` is no longer registered: its messages join the departed class, which is evicted down to its bound. */
  recipientLeft(to: string): void {
    const box = this.mailboxes.get(to);
    if (!box) return;
    for (const w of box) this.departed.add(w);
    this.quota.recipientLeft(to);
    this.evict(this.quota.departedExcess());
  }

  /** Evict the oldest departed messages until at least `bytes` are freed. */
  private evict(bytes: number): void {
    let freed = 0;
    while (freed < bytes) {
      const w = this.departed.values().next();
      if (w.done) return;
      freed += w.value.bytes;
      this.remove(w.value);
      this.onEvict(w.value);
    }
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
