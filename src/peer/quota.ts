/**
 * Storage accounting of a peer's waiting messages: pure bookkeeping (no messages, no clock, no
 * I/O). Every waiting message is charged its bytes (blob + MESSAGE_OVERHEAD_BYTES) to
 *   - its recipient (count and bytes), and within the recipient to its contact key: an opaque
 *     string naming a capability the peer verified, or '' for a message without one (a
 *     stranger's: a first contact or a message request); strangers' messages are also counted
 *     per (recipient, sender prefix);
 *   - the sender's source prefix (sourcePrefix: IPv4 /24, IPv6 /48);
 *   - its class: the prefix its recipient registered from, or "departed" when the recipient is not
 *     registered (never registered since the start, or registered and left);
 *   - the whole store.
 *
 * Bounds (QuotaLimits; check() names the first one a new message would pass, in this order):
 *   | bound                      | per                            | refusal                       |
 *   |----------------------------|--------------------------------|-------------------------------|
 *   | mailboxMessagesMax         | recipient, messages            | MAILBOX_FULL                  |
 *   | contactMessagesMax         | (recipient, contact), messages | MAILBOX_FULL                  |
 *   | strangerMessagesMax        | recipient, messages without a contact | MAILBOX_FULL           |
 *   | strangerPrefixMessagesMax  | (recipient, sender prefix) among those | TOO_MANY_UNACKED      |
 *   | recipientBytesMax          | recipient, bytes               | MAILBOX_FULL                  |
 *   | senderPrefixBytesMax       | sender prefix, bytes           | STORAGE_FULL                  |
 *   | registeredPrefixBytesMax   | recipients' registration prefix, bytes | STORAGE_FULL          |
 *   | departedBytesMax           | departed class, bytes          | evicts the oldest departed    |
 *   | storageBytesMax            | all, bytes                     | evicts the oldest departed, then STORAGE_FULL |
 * The departed class is the only one that is ever evicted: a message that does not fit under
 * storageBytesMax (or, itself departed, under departedBytesMax) fits when enough departed bytes
 * are freed first; evictBytes() says how many, the store picks the messages. A registered
 * recipient's message is never evicted to make room.
 */
import { WireError } from '../protocol/constants.js';

/** What one waiting message is charged to, as kept with the message. */
export interface Charged {
  /** Recipient key. */
  readonly to: string;
  /** Verified capability id, or '' for a message without one (a stranger's). */
  readonly contact: string;
  /** sourcePrefix() of the sending address. */
  readonly senderPrefix: string;
  /** Bytes charged: blob + per-message overhead. */
  readonly bytes: number;
}

/** What a new message is charged to. */
export interface Charge extends Charged {
  /**
   * sourcePrefix() of the address the recipient is registered at, '' when it is not registered.
   * Read when the recipient holds no message yet; after that recipientRegistered/recipientLeft
   * keep its class.
   */
  readonly recipientPrefix: string;
}

/** The storage bounds (peer options; defaults in QUOTA_DEFAULTS, behaviour in the table above). */
export interface QuotaLimits {
  /** Messages waiting per recipient; beyond, MAILBOX_FULL. */
  mailboxMessagesMax: number;
  /** Messages waiting per (recipient, contact capability); beyond, MAILBOX_FULL "contact quota full". */
  contactMessagesMax: number;
  /** Messages without a capability waiting per recipient; beyond, MAILBOX_FULL "first-contact quota full". */
  strangerMessagesMax: number;
  /** Of those, per (recipient, sender prefix); beyond, TOO_MANY_UNACKED. */
  strangerPrefixMessagesMax: number;
  /** Bytes charged per recipient; beyond, MAILBOX_FULL. */
  recipientBytesMax: number;
  /** Bytes charged per sender prefix; beyond, STORAGE_FULL. */
  senderPrefixBytesMax: number;
  /** Bytes charged per prefix that recipients registered from; beyond, STORAGE_FULL. */
  registeredPrefixBytesMax: number;
  /** Bytes charged to recipients not registered; beyond, their oldest messages are evicted. */
  departedBytesMax: number;
  /** Bytes charged in all; beyond, departed messages are evicted, then STORAGE_FULL. */
  storageBytesMax: number;
}

/** Why a message is not admitted: the bound, its wire code and a specific ERROR detail. */
export interface Refusal {
  readonly bound: keyof QuotaLimits;
  readonly code: WireError;
  readonly detail: string;
}

const refusals: { [K in keyof QuotaLimits]: Refusal } = {
  mailboxMessagesMax: { bound: 'mailboxMessagesMax', code: WireError.MAILBOX_FULL, detail: 'recipient mailbox is full' },
  contactMessagesMax: { bound: 'contactMessagesMax', code: WireError.MAILBOX_FULL, detail: 'contact quota full' },
  strangerMessagesMax: { bound: 'strangerMessagesMax', code: WireError.MAILBOX_FULL, detail: 'first-contact quota full' },
  strangerPrefixMessagesMax: {
    bound: 'strangerPrefixMessagesMax', code: WireError.TOO_MANY_UNACKED, detail: 'first-contact quota of this source prefix full',
  },
  recipientBytesMax: { bound: 'recipientBytesMax', code: WireError.MAILBOX_FULL, detail: 'recipient byte quota full' },
  senderPrefixBytesMax: { bound: 'senderPrefixBytesMax', code: WireError.STORAGE_FULL, detail: 'storage quota of this source prefix full' },
  registeredPrefixBytesMax: {
    bound: 'registeredPrefixBytesMax', code: WireError.STORAGE_FULL, detail: "storage quota of the recipient's address range full",
  },
  departedBytesMax: { bound: 'departedBytesMax', code: WireError.STORAGE_FULL, detail: 'message larger than the storage for absent recipients' },
  storageBytesMax: { bound: 'storageBytesMax', code: WireError.STORAGE_FULL, detail: 'peer storage is full' },
};

/** The usage of one recipient that holds at least one message. */
interface RecipientUsage {
  /** The prefix the recipient registered from, or '' while it is not registered (departed). */
  prefix: string;
  count: number;
  bytes: number;
  strangers: number;
  /** Messages per contact key (not ''), created with the first one. */
  contacts: Map<string, number> | null;
  /**
   * The sender prefix of each stranger message (at most strangerMessagesMax): a short array
   * costs far less than a Map for the usual one or two.
   */
  strangerPrefixes: string[] | null;
  /** Its key is in the ring of idle usages (put there once until the ring drops it). */
  idleQueued: boolean;
}

/**
 * Recipients whose last message left that keep their (empty) usage a while, so that a recipient
 * that gets one message at a time does not make and drop its usage per message; the oldest idle
 * one is dropped beyond this many.
 */
export const IDLE_USAGE_MAX = 1024;

export class Quota {
  private readonly recipients = new Map<string, RecipientUsage>();
  /** Recipients whose usage went to zero messages, oldest first (a ring of IDLE_USAGE_MAX). */
  private readonly idle: string[] = [];
  private idleHead = 0;
  private readonly senderPrefixes = new Map<string, number>();
  private readonly registeredPrefixes = new Map<string, number>();
  /** Bytes charged in all. */
  totalBytes = 0;
  /** Bytes charged by messages whose recipient is not registered. */
  departedBytes = 0;

  readonly limits: Readonly<QuotaLimits>;

  /** `limits`: read once (other properties of the object are ignored). */
  constructor(limits: QuotaLimits) {
    const own = { ...QUOTA_DEFAULTS };
    for (const k of Object.keys(own) as Array<keyof QuotaLimits>) {
      const v = limits[k];
      if (!(Number.isInteger(v) && v >= 1)) throw new TypeError(`${k} must be a positive integer`);
      own[k] = v;
    }
    this.limits = own;
  }

  /** Messages waiting for `to`. */
  countOf(to: string): number {
    return this.recipients.get(to)?.count ?? 0;
  }

  /** The class a message with charge `c` goes to: a registration prefix, or '' (departed). */
  classOf(c: Charge): string {
    return this.recipients.get(c.to)?.prefix ?? c.recipientPrefix;
  }

  senderPrefixBytes(prefix: string): number {
    return this.senderPrefixes.get(prefix) ?? 0;
  }

  registeredPrefixBytes(prefix: string): number {
    return this.registeredPrefixes.get(prefix) ?? 0;
  }

  /**
   * The first bound a new message with charge `c` would pass, or null when it fits (possibly
   * after evictBytes(c) departed bytes are freed).
   */
  check(c: Charge): Refusal | null {
    const L = this.limits;
    const u = this.recipients.get(c.to);
    if (u && u.count >= L.mailboxMessagesMax) return refusals.mailboxMessagesMax;
    if (c.contact === '') {
      if (u && u.strangers >= L.strangerMessagesMax) return refusals.strangerMessagesMax;
      if (u?.strangerPrefixes && countOf(u.strangerPrefixes, c.senderPrefix) >= L.strangerPrefixMessagesMax) {
        return refusals.strangerPrefixMessagesMax;
      }
    } else if ((u?.contacts?.get(c.contact) ?? 0) >= L.contactMessagesMax) {
      return refusals.contactMessagesMax;
    }
    if ((u?.bytes ?? 0) + c.bytes > L.recipientBytesMax) return refusals.recipientBytesMax;
    if (this.senderPrefixBytes(c.senderPrefix) + c.bytes > L.senderPrefixBytesMax) return refusals.senderPrefixBytesMax;
    const prefix = u?.prefix ?? c.recipientPrefix;
    if (prefix !== '') {
      if (this.registeredPrefixBytes(prefix) + c.bytes > L.registeredPrefixBytesMax) return refusals.registeredPrefixBytesMax;
    } else if (c.bytes > L.departedBytesMax) {
      return refusals.departedBytesMax;
    }
    if (this.totalBytes - this.departedBytes + c.bytes > L.storageBytesMax) return refusals.storageBytesMax;
    return null;
  }

  /** Departed bytes to evict before a message with charge `c` (that passed check()) fits. */
  evictBytes(c: Charge): number {
    const overTotal = this.totalBytes + c.bytes - this.limits.storageBytesMax;
    const overDeparted = this.classOf(c) === '' ? this.departedBytes + c.bytes - this.limits.departedBytesMax : 0;
    return Math.max(0, overTotal, overDeparted);
  }

  /** Departed bytes beyond departedBytesMax (after recipients left), to evict. */
  departedExcess(): number {
    return Math.max(0, this.departedBytes - this.limits.departedBytesMax);
  }

  add(c: Charge): void {
    let u = this.recipients.get(c.to);
    if (!u) {
      u = { prefix: c.recipientPrefix, count: 0, bytes: 0, strangers: 0, contacts: null, strangerPrefixes: null, idleQueued: false };
      this.recipients.set(c.to, u);
    }
    u.count++;
    u.bytes += c.bytes;
    if (c.contact === '') {
      u.strangers++;
      if (u.strangerPrefixes) u.strangerPrefixes.push(c.senderPrefix);
      else u.strangerPrefixes = [c.senderPrefix];
    } else {
      u.contacts ??= new Map();
      bump(u.contacts, c.contact, 1);
    }
    bump(this.senderPrefixes, c.senderPrefix, c.bytes);
    this.classAdd(u.prefix, c.bytes);
    this.totalBytes += c.bytes;
  }

  /** Undo add(c). */
  remove(c: Charged): void {
    const u = this.recipients.get(c.to);
    if (!u) return;
    u.count--;
    u.bytes -= c.bytes;
    if (c.contact === '') {
      u.strangers--;
      const i = u.strangerPrefixes ? u.strangerPrefixes.indexOf(c.senderPrefix) : -1;
      if (i >= 0) u.strangerPrefixes!.splice(i, 1);
    } else if (u.contacts) {
      bump(u.contacts, c.contact, -1);
    }
    bump(this.senderPrefixes, c.senderPrefix, -c.bytes);
    this.classAdd(u.prefix, -c.bytes);
    this.totalBytes -= c.bytes;
    if (u.count === 0 && !u.idleQueued) this.keepIdle(c.to, u);
  }

  /** Recipients with a usage kept (those holding messages and up to IDLE_USAGE_MAX idle ones). */
  get recipientsKept(): number {
    return this.recipients.size;
  }

  /** `to` holds no message now: keep its usage among the idle ones, dropping the oldest idle beyond the bound. */
  private keepIdle(to: string, u: RecipientUsage): void {
    u.idleQueued = true;
    if (this.idle.length < IDLE_USAGE_MAX) {
      this.idle.push(to);
      return;
    }
    const old = this.idle[this.idleHead]!;
    const ou = this.recipients.get(old);
    if (ou) {
      ou.idleQueued = false;
      if (ou.count === 0) this.recipients.delete(old);
    }
    this.idle[this.idleHead] = to;
    this.idleHead = (this.idleHead + 1) % IDLE_USAGE_MAX;
  }

  /** `to` registered (or moved) from `prefix`: its messages are charged to that prefix. */
  recipientRegistered(to: string, prefix: string): void {
    if (prefix === '') throw new TypeError('prefix must not be empty');
    this.moveClass(to, prefix);
  }

  /** `to` is no longer registered: its messages become departed. */
  recipientLeft(to: string): void {
    this.moveClass(to, '');
  }

  private moveClass(to: string, prefix: string): void {
    const u = this.recipients.get(to);
    if (!u || u.prefix === prefix) return;
    this.classAdd(u.prefix, -u.bytes);
    u.prefix = prefix;
    this.classAdd(prefix, u.bytes);
  }

  private classAdd(prefix: string, bytes: number): void {
    if (prefix === '') this.departedBytes += bytes;
    else bump(this.registeredPrefixes, prefix, bytes);
  }
}

function countOf(a: readonly string[], s: string): number {
  let n = 0;
  for (const x of a) if (x === s) n++;
  return n;
}

/** Add `d` to `m[k]`, deleting the key at zero. */
function bump(m: Map<string, number>, k: string, d: number): void {
  const v = (m.get(k) ?? 0) + d;
  if (v > 0) m.set(k, v);
  else m.delete(k);
}

const MiB = 1024 * 1024;

/**
 * Default bounds. A message is charged at most BLOB_MAX_BYTES + MESSAGE_OVERHEAD_BYTES
 * (1,868 B); the figures below are in such messages.
 *   - contactMessagesMax 128: a contact may leave at least 100 messages for someone away.
 *   - strangerMessagesMax 16, strangerPrefixMessagesMax 4: first contacts and message requests
 *     share a small quota per recipient; one source range holds at most a quarter of it, so one
 *     attacker range cannot take all of it.
 *   - mailboxMessagesMax 1024, recipientBytesMax 2 MiB (1,100 full messages): a recipient's
 *     whole mailbox, room for 8 contacts with full quotas beside the strangers'.
 *   - senderPrefixBytesMax storageBytesMax/16 (4 MiB, 2,200 full messages): the senders of one
 *     /24 or /48 (a home, an office, a carrier NAT pool) take at most 1/16 of the store.
 *   - registeredPrefixBytesMax storageBytesMax/8 (8 MiB): identities registered from one range
 *     hold at most 1/8 of the store while they are registered, whatever their number.
 *   - departedBytesMax storageBytesMax/2 (32 MiB): messages held for recipients who are away;
 *     the first evicted, so they never keep a registered client's message out.
 * The derived ones follow storageBytesMax when it is set and they are not; a range's share never
 * defaults below one contact's full quota, 128 x 1,868 B = 239 KB, or the whole store when that is
 * smaller (deriveQuotaLimits).
 */
export const QUOTA_DEFAULTS: QuotaLimits = {
  mailboxMessagesMax: 1024,
  contactMessagesMax: 128,
  strangerMessagesMax: 16,
  strangerPrefixMessagesMax: 4,
  recipientBytesMax: 2 * MiB,
  senderPrefixBytesMax: 4 * MiB,
  registeredPrefixBytesMax: 8 * MiB,
  departedBytesMax: 32 * MiB,
  storageBytesMax: 64 * MiB,
};

/** The bounds that default to a share (1/n) of storageBytesMax. */
const STORAGE_SHARES = { senderPrefixBytesMax: 16, registeredPrefixBytesMax: 8, departedBytesMax: 2 } as const;
/** The per-range shares, which never default below one contact's full quota. */
const RANGE_SHARES = new Set<keyof QuotaLimits>(['senderPrefixBytesMax', 'registeredPrefixBytesMax']);

/**
 * `limits` with the shares of storageBytesMax filled in where `given` does not set them. A range's
 * share is at least what one contact may leave (contactMessagesMax messages of
 * `messageBytesMax`, the largest charge), or the whole store when that is smaller: in a small
 * store a sixteenth would not hold one honest sender's messages, and the shares only matter
 * where there is room to share.
 */
export function deriveQuotaLimits<T extends QuotaLimits>(limits: T, given: Partial<QuotaLimits>, messageBytesMax: number): T {
  const floor = Math.min(limits.storageBytesMax, limits.contactMessagesMax * messageBytesMax);
  for (const [k, n] of Object.entries(STORAGE_SHARES) as Array<[keyof typeof STORAGE_SHARES, number]>) {
    if (given[k] !== undefined) continue;
    const share = Math.floor(limits.storageBytesMax / n);
    limits[k] = Math.max(1, RANGE_SHARES.has(k) ? Math.max(share, floor) : share);
  }
  return limits;
}
