/**
 * Outgoing messages and the DELIVERs that carry them. A message is sealed to its recipient
 * (src/crypto/seal.ts), or sent through the ratcheted session with it (src/client/ratchets.ts),
 * once the recipient's certificate is known, in one part or, beyond
 * SEAL_BODY_MAX_BYTES, in CHUNK parts. Each part, and each receipt this client sends, is a
 * transfer: a DELIVER to the recipient's peer, with that peer's cookie, sent until the peer
 * answers RESULT and again until the recipient's RECEIPT comes back.
 *
 * Timer `transfer`, per transfer:
 *   - no answer: DELIVER again after the link's RTO, doubling (Karn: only a round with one
 *     transmission is an RTT sample); a receipt is given up after RECEIPT_TRIES_MAX transmissions
 *     in all, answered or not (a busy refusal is one)
 *   - RESULT (stored or delivered): DELIVER again after receiptWaitMs, doubling to receiptWaitMaxMs,
 *     until the receipt comes
 *   - ERROR TOO_MANY_UNACKED, MAILBOX_FULL, STORAGE_FULL, RATE_LIMITED: busy backoff from
 *     busyBackoffInitialMs doubling to busyBackoffMaxMs; after TOO_MANY_UNACKED or MAILBOX_FULL it
 *     goes sooner when its peer reports another message to the same recipient delivered
 *     (`slotWait`: one waiting transfer per delivered message)
 *   - ERROR BAD_COOKIE: at once with a fresh cookie; any other ERROR fails the message (drops
 *     the receipt)
 *
 * Window: at most unackedPerRecipientMax parts per recipient in flight and not acknowledged by the
 * recipient, or capWindowMax when we hold the recipient's capability (its peer then counts our
 * messages against our own quota there, so they may wait there while the recipient is away); the
 * others wait (`waiting-for-recipient`) until one is.
 *
 * Cards: before the first message to a recipient that has not acknowledged our CARD (our
 * certificate, and our capability when the recipient is a contact), a CARD message goes to it, so
 * that it needs no certificate lookup (which would send our address to an address a stranger
 * chose). A CARD is internal: no delivery events.
 *
 * Sessions out of step: a part that went through the ratcheted session with its recipient, that
 * the recipient's peer reports pushed and acknowledged SESSION_RECOVERY_ROUNDS times, over at
 * least SESSION_RECOVERY_MIN_MS, each followed by its whole receipt wait without a receipt, could
 * not be opened there (the recipient lost or restored its side of the session), unless a later
 * part through the session got its receipt (outOfStep: then it is only late).
 * The session is restarted (src/client/ratchets.ts): our CARD carries a new start key, every
 * unfinished message that went through the old session goes again with the same id, through the
 * new session once the recipient's first answer lets it send (meanwhile its reason is
 * `session-restarting`; after SESSION_RESTART_WAIT_MS without an answer, sealed), and a
 * `session-restarted` event says so.
 * The recipient shows a message at most once: its (sender, id) dedupe catches a copy of one it
 * had opened. The same happens, from the other side, when a contact's CARD restarts the session
 * (resendAfterRestart); the chunks of a long message go again likewise (made again from the
 * kept body: splitBody is deterministic). A part found out of step more than RATCHET_SKIP_PER_MESSAGE_MAX messages
 * past the last one the recipient acknowledged in the same sending chain fails
 * `session-skip-bound`: the recipient refuses it (too_far_ahead) and it is not sent again.
 *
 * Bounds: outboxMessagesMax unfinished messages (send() throws PEERPOST_OUTBOX_FULL); the last
 * sentHistoryMax finished ones are kept in the outbox for their status (every text message stays
 * in the history, with its last state); an unfinished message fails `expired`
 * messageTtlMs after it was sent.
 */
import { DeliveryStatus, MsgType, WireError, WIRE_ERROR_NAMES } from '../protocol/constants.js';
import type { ErrorMsg } from '../protocol/messages.js';
import { UsageError } from '../core/errors.js';
import { SEAL_BODY_MAX_BYTES } from '../crypto/seal.js';
import { RATCHET_SKIP_PER_MESSAGE_MAX, RATCHET_VERSION } from '../crypto/ratchet.js';
import { capabilityField, capabilityId, capabilityKey } from '../crypto/session.js';
import { ContentKind, decodeCard, decodeText, encodeCard, encodeChunk, splitBody } from './content.js';
import type { DeliveryState, OutboxMessage, OutboxPart } from './store.js';
import { dueOnCookie, earlier, earliestDeadline, hex, unhex, type ClientContext } from './context.js';
import type { PeerLinks } from './peer-links.js';
import type { CertLookups } from './lookups.js';
import type { Ratchets } from './ratchets.js';
import type { HomeBook } from './homes.js';

/** DELIVER transmissions of a receipt before it is given up. */
export const RECEIPT_TRIES_MAX = 10;
/**
 * Pushes of a session part acknowledged by the recipient's device, each followed by a whole
 * receipt wait without its receipt, before the session is restarted.
 */
export const SESSION_RECOVERY_ROUNDS = 3;
/**
 * And the first and the last of those acknowledgements are at least this far apart: a receipt
 * held up on its way back (the sender's peer restarting or moving, its home looked up again) is
 * not a session out of step, and a restart would not bring it sooner.
 */
export const SESSION_RECOVERY_MIN_MS = 3 * 60_000;
/**
 * After we restart a session, the parts that went through the old one wait this long (timer
 * `restartWait`) for the new one to be able to send (the contact's first answer through it)
 * before they go sealed. Sealed, they lose forward secrecy: waiting keeps a peer that holds back
 * receipts (which is what restarts a session) from turning ratcheted messages into sealed ones.
 */
export const SESSION_RESTART_WAIT_MS = 10 * 60_000;
const BUSY_ERRORS: ReadonlySet<number> = new Set([WireError.TOO_MANY_UNACKED, WireError.MAILBOX_FULL, WireError.STORAGE_FULL, WireError.RATE_LIMITED]);

/** One DELIVER being sent: a part of an outgoing message, or a receipt. */
interface Transfer {
  readonly id: string;
  readonly idBytes: Uint8Array;
  readonly to: string;
  readonly toBytes: Uint8Array;
  /** The peer it goes to now: one of the recipient's home (src/client/homes.ts). */
  peerKey: string;
  /** The peer named with the recipient (its address or the one its message named): its home without a record. */
  readonly hint: string;
  /** A receipt: the peer its message named comes before the record's (src/client/homes.ts). */
  readonly hintFirst: boolean;
  readonly blob: Uint8Array;
  readonly msg?: OutboxMessage;
  readonly part?: OutboxPart;
  awaiting: boolean;
  /** Transmissions of the current round (Karn: only a round with one is sampled). */
  attempt: number;
  /** Transmissions in all (a receipt is given up after RECEIPT_TRIES_MAX). */
  sends: number;
  sentAtMs: number;
  sentOnce: boolean;
  deadline: number;
  resends: number;
  busy: number;
  /**
   * Refused with TOO_MANY_UNACKED or MAILBOX_FULL: besides its busy backoff, it goes again as soon
   * as its peer reports another message to the same recipient delivered (a slot is free then).
   */
  slotWait: boolean;
  /** DELIVERs to peerKey in a row without any answer from it. */
  silent: number;
  /** Answers DELIVERED (pushed to the recipient and acknowledged by it) with no receipt yet. */
  unreceipted: number;
  /** When the first and the last of those came (this process's; a restarted client counts again). */
  firstUnreceiptedAtMs?: number;
  lastUnreceiptedAtMs?: number;
}

const unfinished = (m: OutboxMessage): boolean => m.state === 'queued' || m.state === 'held';

export class Outgoing {
  private readonly transfers = new Map<string, Transfer>();
  /**
   * Contacts whose restarted session some of our parts may wait for (OutboxPart.waiting), so that
   * a message opened through a session costs no look through the outbox otherwise; at most one
   * entry per unfinished message (cleared once none waits).
   */
  private readonly waitingFor = new Set<string>();

  constructor(
    private readonly ctx: ClientContext,
    private readonly links: PeerLinks,
    private readonly lookups: CertLookups,
    private readonly ratchets: Ratchets,
    private readonly homes: HomeBook,
  ) {}

  /** Transfers in flight (message parts and receipts). */
  get size(): number {
    return this.transfers.size;
  }

  /** Receipt transfers in flight. */
  receiptCount(): number {
    let receipts = 0;
    for (const t of this.transfers.values()) if (!t.part) receipts++;
    return receipts;
  }

  /** Throws PEERPOST_OUTBOX_FULL unless `n` more unfinished messages fit. */
  checkRoom(n: number): void {
    const open = this.ctx.s.outbox.filter(unfinished).length;
    if (open + n > this.ctx.o.outboxMessagesMax) {
      throw new UsageError('PEERPOST_OUTBOX_FULL', `the outbox holds ${open} unfinished messages (at most ${this.ctx.o.outboxMessagesMax})`);
    }
  }

  /** A new message of `kind` to `t`; returns its id. A CARD goes first when `t` lacks ours. */
  enqueue(now: number, t: { fp: string; peer: string }, kind: number, body: Uint8Array): string {
    if (kind !== ContentKind.CARD) this.ensureCard(now, t);
    const id = hex(this.ctx.random(16));
    const m: OutboxMessage = { id, to: t.fp, toPeer: t.peer, kind, createdAtMs: Math.floor(now), state: 'queued', body: hex(body), parts: [] };
    this.ctx.s.outbox.push(m);
    this.ctx.putOutbox(m);
    const t0 = kind === ContentKind.TEXT ? decodeText(body) : undefined;
    if (t0) {
      this.ctx.addHistory({
        id, contact: m.to, dir: 'out', atMs: m.createdAtMs, sentAtMs: m.createdAtMs, text: t0.text, state: 'queued',
        ...(t0.group ? { group: { id: t0.group.id, name: t0.group.name, members: t0.group.members.map((x) => ({ ...x })) } } : {}),
      });
    }
    this.prepare(now, m);
    this.emitDelivery(m);
    return id;
  }

  /**
   * Queue our CARD for `t` unless it acknowledged one or one is on its way. `force`: queue one
   * anyway (a new contact gets our capability).
   */
  ensureCard(now: number, t: { fp: string; peer: string }, force = false): void {
    const s = this.ctx.s;
    if (!force && s.cardsAcked?.[t.fp] !== undefined) return;
    if (s.outbox.some((m) => m.to === t.fp && m.kind === ContentKind.CARD && unfinished(m))) return;
    if (force && s.cardsAcked?.[t.fp] !== undefined) {
      delete s.cardsAcked[t.fp];
      this.ctx.dirty = true;
    }
    this.enqueue(now, t, ContentKind.CARD, this.cardFor(t.fp));
  }

  /**
   * Queue our CARD for `t` even if one is on its way: `t` ignored the ratchet start key of the
   * one it has (it was a stranger then, or started a session at the same time with a higher
   * fingerprint), and must get it again (src/client/ratchets.ts).
   */
  sendCardAgain(now: number, t: { fp: string; peer: string }): void {
    if (this.ctx.s.cardsAcked) delete this.ctx.s.cardsAcked[t.fp];
    this.enqueue(now, t, ContentKind.CARD, this.cardFor(t.fp));
  }

  /** Our CARD for `fp`: our certificate, and our capability for it when it is one of our contacts. */
  private cardFor(fp: string): Uint8Array {
    const contact = this.ctx.s.contacts.some((c) => c.fingerprint === fp && !c.changed);
    if (!contact) return encodeCard({ cert: this.ctx.identity.cert });
    const dk = this.ctx.deliveryKey();
    const capId = capabilityId(dk, unhex(fp));
    const cap = new Uint8Array(36);
    cap.set(capId, 0);
    cap.set(capabilityKey(dk, capId), 4);
    return encodeCard({ cert: this.ctx.identity.cert, cap });
  }

  /** The capability `fp` gave us (capId, capKey), if any. */
  private capOf(fp: string): { capId: Uint8Array; capKey: Uint8Array } | undefined {
    const c = this.ctx.s.caps?.[fp];
    if (!c) return undefined;
    const b = unhex(c);
    return { capId: b.subarray(0, 4), capKey: b.subarray(4) };
  }

  /** Take up an unfinished message again: its parts' transfers, or the lookup it waits for. */
  restore(now: number, m: OutboxMessage): void {
    if (!unfinished(m)) return;
    if (m.body !== undefined) {
      this.lookups.start(now, m.to, this.homes.peerFor(now, m.to, m.toPeer) ?? m.toPeer, false);
      return;
    }
    for (const p of m.parts) {
      if (p.receipt || this.transfers.has(p.id)) continue;
      if (p.waiting !== undefined) {
        this.waitingFor.add(m.to); // made again when the restarted session can send (sessionOpened, endRestartWaits)
        continue;
      }
      const t: Transfer = {
        id: p.id, idBytes: unhex(p.id), to: m.to, toBytes: unhex(m.to), peerKey: m.toPeer, hint: m.toPeer, hintFirst: false, blob: unhex(p.blob), msg: m, part: p,
        awaiting: false, attempt: 0, sends: 0, sentAtMs: 0, sentOnce: p.peerStatus !== 'none', deadline: now, resends: 0, busy: 0, slotWait: false,
        silent: 0, unreceipted: 0,
      };
      this.transfers.set(p.id, t);
      this.aim(now, t);
    }
  }

  /** `fp`'s certificate is known now: seal the messages that waited for it. */
  certificateKnown(now: number, fp: string): void {
    for (const m of this.ctx.s.outbox) if (m.to === fp && m.body !== undefined && unfinished(m)) this.prepare(now, m);
  }

  /** A sealed receipt to send to `to` through its peer `peerKey`. */
  addReceipt(now: number, idBytes: Uint8Array, to: string, peerKey: string, blob: Uint8Array): void {
    const id = hex(idBytes);
    const t: Transfer = {
      id, idBytes, to, toBytes: unhex(to), peerKey, hint: peerKey, hintFirst: true, blob, awaiting: false, attempt: 0, sends: 0, sentAtMs: 0,
      sentOnce: false, deadline: now, resends: 0, busy: 0, slotWait: false, silent: 0, unreceipted: 0,
    };
    this.transfers.set(id, t);
    this.aim(now, t);
  }

  /** Point a new transfer at the peer of its recipient's home to use now. */
  private aim(now: number, t: Transfer): void {
    t.peerKey = this.homes.peerFor(now, t.to, t.hint, t.hintFirst) ?? t.hint;
  }

  /**
   * `fp`'s home changed (a new record, a peer down or away): every transfer to it goes to the
   * peer to use now, at once when that is another peer. With every peer down they stay where
   * they are (each goes on in turn by failover()).
   */
  rehome(now: number, fp: string): void {
    for (const t of this.transfers.values()) {
      if (t.to !== fp) continue;
      const p = this.homes.peerFor(now, fp, t.hint, t.hintFirst);
      if (p === undefined || p === t.peerKey) continue;
      t.peerKey = p;
      t.awaiting = false;
      t.silent = 0;
      t.attempt = 0;
      t.busy = 0;
      t.slotWait = false;
      t.deadline = now;
    }
  }

  /**
   * `t`'s peer did not answer homeFailoverTries times in a row: the next peer of its recipient's
   * home that is not down, for every transfer to it; when every peer is down, `t` goes on to the
   * next one in turn, keeping its retransmission backoff, and its message shows
   * `recipient-unreachable`.
   */
  private failover(now: number, t: Transfer): void {
    this.ctx.drops.add('home_peer_silent');
    const next = this.homes.failed(now, t.to, t.hint, t.peerKey, t.hintFirst);
    t.silent = 0;
    if (next !== undefined) return this.rehome(now, t.to);
    if (t.msg) this.setReason(t.msg, 'recipient-unreachable');
    t.peerKey = this.homes.nextInTurn(t.to, t.hint, t.peerKey, t.hintFirst);
  }

  /** Act on every transfer whose time has come. */
  pump(now: number): void {
    const window = new Map<string, number>();
    for (const t of [...this.transfers.values()]) {
      if (t.deadline > now || this.transfers.get(t.id) !== t) continue; // not due, or ended by a restart in this pass
      if (!t.awaiting && this.outOfStep(t)) {
        this.restartSession(now, t.to);
        if (this.transfers.get(t.id) !== t) continue;
      }
      if (!t.part && t.sends >= RECEIPT_TRIES_MAX) {
        // The sender's peer does not answer, or keeps refusing it (a sender gone for good, its
        // mailbox full): kept on, it would hold one of receiptTransfersMax slots for ever and
        // receipts to everyone else would find none. The sender resends its message and gets a
        // receipt then.
        this.transfers.delete(t.id);
        this.ctx.drops.add(t.attempt >= t.sends ? 'receipt_unanswered' : 'receipt_refused');
        continue;
      }
      if (t.silent >= this.ctx.o.homeFailoverTries) this.failover(now, t);
      if (t.awaiting) {
        this.transmit(now, t);
        continue;
      }
      if (t.part && !t.sentOnce) {
        const used = window.get(t.to) ?? this.inFlightTo(t.to);
        const max = this.ctx.s.caps?.[t.to] ? this.ctx.o.capWindowMax : this.ctx.o.unackedPerRecipientMax;
        if (used >= max) {
          this.setReason(t.msg!, 'waiting-for-recipient');
          window.set(t.to, used);
          t.deadline = Number.POSITIVE_INFINITY; // woken by wake() when a slot frees
          continue;
        }
        window.set(t.to, used + 1);
      }
      t.attempt = 0;
      this.transmit(now, t);
    }
  }

  /** The peer at `peerKey` gave us a cookie: transfers waiting for one go now. */
  cookieArrived(now: number, peerKey: string): void {
    dueOnCookie(this.transfers.values(), peerKey, now);
  }

  /** The `transfer` timer. */
  deadline(): number | undefined {
    return earliestDeadline(this.transfers.values());
  }

  /** The earliest time an unfinished message expires. */
  nextExpiry(): number | undefined {
    let expiry: number | undefined;
    for (const m of this.ctx.s.outbox) if (unfinished(m)) expiry = earlier(expiry, m.createdAtMs + this.ctx.o.messageTtlMs);
    return expiry;
  }

  onResult(now: number, fromKey: string, idBytes: Uint8Array, status: number): void {
    const t = this.transfers.get(hex(idBytes));
    if (!t || t.peerKey !== fromKey) return void this.ctx.drops.add('unexpected_result');
    const link = this.links.use(now, fromKey);
    t.silent = 0;
    this.homes.answered(t.to, fromKey);
    if (!t.part || !t.msg) {
      // A receipt held where its message's sender is not (the peer the message named, which the
      // sender has left): it goes at once to the next peer of the sender's home, as does every
      // receipt to it (RECEIPT_TRIES_MAX bounds the turns); held there, it is kept for the sender.
      if (status !== DeliveryStatus.DELIVERED && this.homes.notThere(now, t.to, t.hint, fromKey, true) !== undefined) {
        this.rehome(now, t.to);
        if (t.peerKey !== fromKey) return;
      }
      this.transfers.delete(t.id);
      return;
    }
    if (t.msg.reason === 'recipient-unreachable') delete t.msg.reason;
    const p = t.part;
    const was = p.peerStatus;
    if (status === DeliveryStatus.DELIVERED || was === 'none') p.peerStatus = status === DeliveryStatus.DELIVERED ? 'acked' : 'held';
    if (p.peerStatus !== was) this.ctx.putOutbox(t.msg);
    if (p.peerStatus === 'acked') this.wake(now, t.to, 1, fromKey);
    if (!t.awaiting) {
      // A late answer to an earlier transmission: note the state, keep the schedule.
      this.updateState(t.msg);
      return;
    }
    if (t.attempt === 1) link.rtt.sample(now - t.sentAtMs);
    // Pushed and acknowledged, its receipt awaited (outOfStep decides when the wait is over). The
    // chunks of a long message count once all of them were pushed (their receipts wait for the last).
    const whole = t.msg.parts.every((x) => x.receipt || x.peerStatus === 'acked');
    if (status === DeliveryStatus.DELIVERED && t.blob[0] === RATCHET_VERSION && whole) {
      t.unreceipted++;
      t.firstUnreceiptedAtMs ??= now;
      t.lastUnreceiptedAtMs = now;
    }
    t.awaiting = false;
    t.busy = 0;
    const wait = Math.min(this.ctx.o.receiptWaitMaxMs, this.ctx.o.receiptWaitMs * 2 ** Math.min(t.resends, 20));
    t.resends++;
    t.deadline = now + wait;
    this.updateState(t.msg);
    // Held: the recipient is not connected there. Resolve its home again; another peer of it goes now.
    if (status !== DeliveryStatus.DELIVERED && this.homes.notThere(now, t.to, t.hint, fromKey, t.hintFirst) !== undefined) this.rehome(now, t.to);
  }

  /**
   * The receipt wait of session part `t` is over, with no receipt: is the recipient's side of the
   * session out of step? Yes after SESSION_RECOVERY_ROUNDS acknowledgements by its device (each
   * given its whole receipt wait) whose first and last are SESSION_RECOVERY_MIN_MS apart, unless
   * the recipient opened a part we made through the session after this one (a receipt for it):
   * its session is then at least as far on as this part's, so this part opens there too and its
   * receipt is only late.
   */
  private outOfStep(t: Transfer): boolean {
    const part = t.part;
    const msg = t.msg;
    if (!part || !msg || t.unreceipted < SESSION_RECOVERY_ROUNDS) return false;
    if (t.lastUnreceiptedAtMs! - t.firstUnreceiptedAtMs! < SESSION_RECOVERY_MIN_MS) return false;
    for (const m of this.ctx.s.outbox) {
      if (m.to !== t.to) continue;
      for (const p of m.parts) {
        if (!p.receipt || p.chain === undefined || p.again) continue;
        // A part made again after a restart is newer than every message before it: only its own chain tells.
        if (p.chain === part.chain ? p.n! > part.n! : !part.again && m.createdAtMs > msg.createdAtMs) {
          this.ctx.drops.add('session_receipt_late');
          return false;
        }
      }
    }
    return true;
  }

  /** An ERROR whose reference is a DELIVER id. */
  onError(now: number, fromKey: string, e: ErrorMsg): void {
    const t = this.transfers.get(hex(e.ref));
    if (!t || t.peerKey !== fromKey) return void this.ctx.drops.add('unexpected_error');
    t.awaiting = false;
    t.silent = 0;
    this.homes.answered(t.to, fromKey);
    if (e.code === WireError.BAD_COOKIE) {
      t.deadline = now;
      t.attempt = 0;
      return;
    }
    if (BUSY_ERRORS.has(e.code)) {
      t.deadline = now + Math.min(this.ctx.o.busyBackoffMaxMs, this.ctx.o.busyBackoffInitialMs * 2 ** Math.min(t.busy, 20));
      t.busy++;
      t.slotWait = e.code === WireError.TOO_MANY_UNACKED || e.code === WireError.MAILBOX_FULL;
      if (t.msg) this.setReason(t.msg, (WIRE_ERROR_NAMES[e.code] ?? String(e.code)).toLowerCase().replaceAll('_', '-'));
      // Messages pile up there for the recipient: it may have left that peer. Another peer of its home goes now.
      if (t.slotWait && this.homes.notThere(now, t.to, t.hint, fromKey, t.hintFirst) !== undefined) this.rehome(now, t.to);
      return;
    }
    if (e.code === WireError.ID_CONFLICT && t.part?.again) {
      // Made again for a new session while the peer still holds the old blob: that one is pushed
      // (and refused) first, then this one is taken.
      t.deadline = now + Math.min(this.ctx.o.busyBackoffMaxMs, this.ctx.o.busyBackoffInitialMs * 2 ** Math.min(t.busy, 20));
      t.busy++;
      return;
    }
    // ID_CONFLICT, BAD_REQUEST and anything else: this message cannot go.
    this.transfers.delete(t.id);
    if (t.msg) this.finish(t.msg, 'failed', `peer-refused-${(WIRE_ERROR_NAMES[e.code] ?? String(e.code)).toLowerCase()}`);
  }

  /** A RECEIPT from `fromFp` for the DELIVER ids `ids`. */
  onReceipt(now: number, fromFp: string, ids: Uint8Array[]): void {
    const touched = new Set<OutboxMessage>();
    for (const idb of ids) {
      const id = hex(idb);
      const t = this.transfers.get(id);
      if (!t) {
        // A part waiting for the session we restarted: it was opened after all.
        const w = this.waitingPart(fromFp, id);
        if (w) {
          w.p.receipt = true;
          delete w.p.waiting;
          touched.add(w.m);
          this.ctx.putOutbox(w.m);
        }
        continue;
      }
      if (!t.part || !t.msg || t.to !== fromFp) continue;
      t.part.receipt = true;
      this.transfers.delete(id);
      touched.add(t.msg);
      this.ctx.putOutbox(t.msg);
    }
    for (const m of touched) this.updateState(m);
    if (touched.size > 0) this.wake(now, fromFp, touched.size);
  }

  /** The part `id` to `fp` that waits for the session we restarted, and its message. */
  private waitingPart(fp: string, id: string): { m: OutboxMessage; p: OutboxPart } | undefined {
    if (!this.waitingFor.has(fp)) return undefined;
    for (const m of this.ctx.s.outbox) {
      if (m.to !== fp || !unfinished(m)) continue;
      const p = m.parts.find((x) => x.id === id && x.waiting !== undefined && !x.receipt);
      if (p) return { m, p };
    }
    return undefined;
  }

  /** `fp` acknowledged our CARD (cardsAcked is bounded by certsMax: the oldest is forgotten, and gets a CARD again). */
  private cardAcked(fp: string, at: number): void {
    const acked = (this.ctx.s.cardsAcked ??= {});
    delete acked[fp];
    acked[fp] = at;
    const keys = Object.keys(acked);
    for (let i = 0; i < keys.length - this.ctx.o.certsMax; i++) delete acked[keys[i]!];
    this.ctx.dirty = true;
  }

  /** Show why a message waits. */
  setReason(m: OutboxMessage, reason: string): void {
    if (m.reason === reason) return;
    m.reason = reason;
    this.ctx.putOutbox(m);
    this.emitDelivery(m);
  }

  /**
   * Our messages through the session with `fp` do not get through: restart it (a new start key in
   * our CARD) and send again what went through the old one.
   */
  restartSession(now: number, fp: string): void {
    const certHex = this.ctx.certOf(fp);
    if (!certHex || !this.ratchets.restart(now, fp, certHex)) return;
    const peer = this.ctx.s.contacts.find((c) => c.fingerprint === fp)?.peer ?? this.ctx.s.outbox.find((m) => m.to === fp)?.toPeer;
    if (peer) this.sendCardAgain(now, { fp, peer });
    this.resendAfterRestart(now, fp, true);
    this.ctx.emit({ type: 'session-restarted', with: fp, by: 'us' });
  }

  /**
   * A message from `fp` opened through a session, or `fp`'s start key was taken: if our session
   * with `fp` can send now, the parts that waited for it after our restart go through it.
   */
  sessionOpened(now: number, fp: string): void {
    if (!this.waitingFor.has(fp) || !this.ratchets.canSend(fp)) return;
    this.waitingFor.delete(fp);
    this.resendAfterRestart(now, fp, false, true);
  }

  /**
   * The session with `fp` was restarted (by us, or by `fp`'s CARD): every unfinished message that
   * went through the old session and has no receipt goes again with the same id, through the new
   * session when it can send, else sealed; one more than RATCHET_SKIP_PER_MESSAGE_MAX messages past
   * the last one `fp` acknowledged in its chain fails `session-skip-bound`. `ours`: we restarted
   * it, so it cannot send until the contact answers: the parts wait for that (`waiting`, reason
   * `session-restarting`) up to SESSION_RESTART_WAIT_MS instead of going sealed at once.
   * `waitingOnly`: make again only the parts that waited.
   */
  resendAfterRestart(now: number, fp: string, ours = false, waitingOnly = false): void {
    const certHex = this.ctx.certOf(fp);
    if (!certHex) return;
    const acked = new Map<string, number>();
    for (const m of this.ctx.s.outbox) {
      if (m.to !== fp) continue;
      for (const p of m.parts) if (p.receipt && p.chain !== undefined && p.n !== undefined) acked.set(p.chain, Math.max(acked.get(p.chain) ?? -1, p.n));
    }
    const tooFar = (p: OutboxPart): boolean => p.n! - ((acked.get(p.chain!) ?? -1) + 1) > RATCHET_SKIP_PER_MESSAGE_MAX;
    for (const m of [...this.ctx.s.outbox]) {
      if (m.to !== fp || !unfinished(m) || m.plain === undefined) continue;
      const again = (p: OutboxPart): boolean => !p.receipt && p.chain !== undefined && (!waitingOnly || p.waiting !== undefined);
      const redo = m.parts.filter(again);
      if (redo.length === 0) continue;
      if (redo.some(tooFar)) {
        this.finish(m, 'failed', 'session-skip-bound');
        continue;
      }
      if (ours && !this.ratchets.canSend(fp)) {
        // Held back until the new session can send (or SESSION_RESTART_WAIT_MS has passed).
        m.parts = m.parts.map((p) => {
          if (!again(p)) return p;
          this.transfers.delete(p.id);
          return { ...p, waiting: p.waiting ?? Math.floor(now) };
        });
        this.waitingFor.add(fp);
        this.ctx.putOutbox(m);
        this.setReason(m, 'session-restarting');
        continue;
      }
      const body = unhex(m.plain);
      const pieces = m.parts.length > 1 ? splitBody(body) : [body];
      let session = false;
      m.parts = m.parts.map((p, index) => {
        if (!again(p)) {
          session ||= p.chain !== undefined;
          return p;
        }
        const id = unhex(p.id);
        const c = m.parts.length > 1
          ? { kind: ContentKind.CHUNK, id, sentAtMs: m.createdAtMs, body: encodeChunk({ messageId: unhex(m.id), index, count: pieces.length, innerKind: m.kind, data: pieces[index]! }) }
          : { kind: m.kind, id, sentAtMs: m.createdAtMs, body };
        const made = this.ratchets.partFor(fp, certHex, c);
        this.transfers.delete(p.id);
        const part: OutboxPart = { id: p.id, blob: hex(made.blob), peerStatus: p.peerStatus, receipt: false, again: true };
        if (made.chain !== undefined) {
          Object.assign(part, { chain: made.chain, n: made.n });
          session = true;
        }
        return part;
      });
      if (!session) delete m.plain;
      const waited = m.reason === 'session-restarting';
      if (waited) delete m.reason;
      this.ctx.putOutbox(m);
      if (waited) this.emitDelivery(m);
      this.restore(now, m);
    }
  }

  /** Fail every unfinished message to `fp`. */
  failMessagesTo(fp: string, reason: string): void {
    for (const m of this.ctx.s.outbox) if (m.to === fp && unfinished(m)) this.finish(m, 'failed', reason);
  }

  /** Fail the messages older than messageTtlMs. */
  expire(now: number): void {
    for (const m of this.ctx.s.outbox) {
      if (unfinished(m) && m.createdAtMs + this.ctx.o.messageTtlMs <= now) {
        this.finish(m, 'failed', m.reason === 'certificate-not-found' ? 'certificate-not-found' : 'expired');
      }
    }
  }

  /** The `restartWait` timer: when the first part waiting for a restarted session has waited SESSION_RESTART_WAIT_MS. */
  restartWaitDeadline(): number | undefined {
    if (this.waitingFor.size === 0) return undefined;
    let at: number | undefined;
    for (const m of this.ctx.s.outbox) {
      if (!this.waitingFor.has(m.to) || !unfinished(m)) continue;
      for (const p of m.parts) if (p.waiting !== undefined && !p.receipt) at = earlier(at, p.waiting + SESSION_RESTART_WAIT_MS);
    }
    return at;
  }

  /**
   * The restarted session never answered: what waited for it SESSION_RESTART_WAIT_MS goes now,
   * sealed (through the session if it can send after all).
   */
  endRestartWaits(now: number): void {
    if (this.waitingFor.size === 0) return;
    const overdue = new Set<string>();
    for (const fp of this.waitingFor) {
      let waits = false;
      for (const m of this.ctx.s.outbox) {
        if (m.to !== fp || !unfinished(m)) continue;
        for (const p of m.parts) {
          if (p.waiting === undefined || p.receipt) continue;
          waits = true;
          if (p.waiting + SESSION_RESTART_WAIT_MS <= now) overdue.add(fp);
        }
      }
      if (!waits) this.waitingFor.delete(fp);
    }
    for (const fp of overdue) {
      this.waitingFor.delete(fp);
      this.resendAfterRestart(now, fp, false, true);
    }
  }

  /** Seal a message once its recipient's certificate is known; else look it up. */
  private prepare(now: number, m: OutboxMessage): void {
    if (m.body === undefined) return;
    const certHex = this.ctx.certOf(m.to);
    if (!certHex) {
      if (!m.reason) m.reason = 'certificate-pending';
      this.lookups.start(now, m.to, this.homes.peerFor(now, m.to, m.toPeer) ?? m.toPeer, false);
      // A lookup that gave up lately and waits to try again: this message learns why at once.
      const failed = this.lookups.failureOf(m.to);
      if (failed) m.reason = failed;
      return;
    }
    let body = unhex(m.body);
    const ctx = this.ctx;
    if (m.kind === ContentKind.CARD) {
      // A CARD to a client we have no running session with starts one (docs/PROTOCOL.md section 21.7).
      const card = decodeCard(body);
      const start = card && this.ratchets.startFor(m.to, certHex);
      if (card && start) body = encodeCard({ ...card, start });
    }
    if (body.length <= SEAL_BODY_MAX_BYTES) {
      const made = this.ratchets.partFor(m.to, certHex, { kind: m.kind, id: unhex(m.id), sentAtMs: m.createdAtMs, body });
      const part: OutboxPart = { id: m.id, blob: hex(made.blob), peerStatus: 'none', receipt: false };
      if (made.chain !== undefined) {
        Object.assign(part, { chain: made.chain, n: made.n });
        m.plain = hex(body);
      }
      m.parts = [part];
    } else {
      const pieces = splitBody(body);
      m.parts = pieces.map((data, index) => {
        const id = ctx.random(16);
        const b = encodeChunk({ messageId: unhex(m.id), index, count: pieces.length, innerKind: m.kind, data });
        const made = this.ratchets.partFor(m.to, certHex, { kind: ContentKind.CHUNK, id, sentAtMs: m.createdAtMs, body: b });
        const part: OutboxPart = { id: hex(id), blob: hex(made.blob), peerStatus: 'none', receipt: false };
        if (made.chain !== undefined) {
          Object.assign(part, { chain: made.chain, n: made.n });
          m.plain = hex(body);
        }
        return part;
      });
    }
    delete m.body;
    if (m.reason === 'certificate-pending' || m.reason === 'certificate-not-found') delete m.reason;
    this.ctx.putOutbox(m);
    this.restore(now, m);
  }

  /** Parts sent to a recipient and not yet acknowledged by it (its peer's unacked count). */
  private inFlightTo(fp: string): number {
    let n = 0;
    for (const t of this.transfers.values()) {
      if (t.part && t.to === fp && (t.awaiting || t.part.peerStatus === 'held' || (t.sentOnce && t.part.peerStatus === 'none'))) n++;
    }
    return n;
  }

  /**
   * `slots` messages to `fp` were delivered (through the peer at `peerKey`, or anywhere when it is
   * not given: receipts): transfers to `fp` waiting for the window go now, and as many of those
   * refused there for want of a slot (one slot freed per delivered message, so the others do not
   * go only to be refused again).
   */
  private wake(now: number, fp: string, slots: number, peerKey?: string): void {
    for (const t of this.transfers.values()) {
      if (t.to !== fp) continue;
      if (t.deadline === Number.POSITIVE_INFINITY) t.deadline = now;
      else if (slots > 0 && t.slotWait && (peerKey === undefined || t.peerKey === peerKey)) {
        t.slotWait = false;
        slots--;
        if (t.deadline > now) t.deadline = now;
      }
    }
  }

  private transmit(now: number, t: Transfer): void {
    const link = this.links.use(now, t.peerKey);
    const cookie = this.links.cookieFor(now, link);
    if (!cookie) {
      // Waiting for a cookie the peer has not answered a HELLO for already counts as unanswered too.
      if ((link.hello?.attempt ?? 0) > 1) t.silent++;
      t.awaiting = false;
      t.deadline = now + this.links.cookieWaitMs(link);
      return;
    }
    const cap = this.capOf(t.to);
    this.ctx.send(link.addr, {
      type: MsgType.DELIVER, cookie, to: t.toBytes, id: t.idBytes, blob: t.blob,
      ...(cap ? { cap: capabilityField(cap.capId, cap.capKey, t.toBytes, t.idBytes) } : {}),
    });
    t.awaiting = true;
    t.silent++;
    t.slotWait = false;
    t.sentOnce = true;
    t.sentAtMs = now;
    t.deadline = now + link.rtt.timeoutMs(t.attempt);
    t.attempt++;
    t.sends++;
  }

  /** Recompute the visible state of a message from its parts. */
  private updateState(m: OutboxMessage): void {
    if (m.state === 'delivered' || m.state === 'failed') return;
    if (m.parts.length > 0 && m.parts.every((p) => p.receipt)) {
      this.finish(m, 'delivered');
      return;
    }
    const held = m.parts.length > 0 && m.parts.every((p) => p.receipt || p.peerStatus !== 'none');
    const state: DeliveryState = held ? 'held' : 'queued';
    const reason = held ? (m.parts.every((p) => p.receipt || p.peerStatus === 'acked') ? 'delivered-to-device' : undefined) : m.reason;
    if (state !== m.state || reason !== m.reason) {
      m.state = state;
      if (reason === undefined) delete m.reason;
      else m.reason = reason;
      this.ctx.putOutbox(m);
      this.emitDelivery(m);
    }
  }

  private finish(m: OutboxMessage, state: 'delivered' | 'failed', reason?: string): void {
    if (m.kind === ContentKind.CARD && state === 'delivered') this.cardAcked(m.to, m.createdAtMs);
    m.state = state;
    if (reason) m.reason = reason;
    else delete m.reason;
    for (const p of m.parts) this.transfers.delete(p.id);
    // Blobs are not needed any more; the part ids stay for the record.
    m.parts = m.parts.map((p) => ({ ...p, blob: '' }));
    delete m.body;
    delete m.plain;
    this.ctx.putOutbox(m);
    this.emitDelivery(m);
    const s = this.ctx.s;
    const finished = s.outbox.filter((x) => x.state === 'delivered' || x.state === 'failed');
    if (finished.length > this.ctx.o.sentHistoryMax) {
      const drop = new Set(finished.slice(0, finished.length - this.ctx.o.sentHistoryMax));
      for (const x of drop) this.ctx.dropOutbox(x.id);
      s.outbox = s.outbox.filter((x) => !drop.has(x));
    }
  }

  /** Tell the user, and the history, the message's state. */
  private emitDelivery(m: OutboxMessage): void {
    if (m.kind === ContentKind.CARD) return; // internal
    if (m.kind === ContentKind.TEXT) this.ctx.historyState(m.id, m.to, m.state, m.reason);
    this.ctx.emit({ type: 'delivery', id: m.id, to: m.to, state: m.state, ...(m.reason ? { reason: m.reason } : {}) });
  }
}
