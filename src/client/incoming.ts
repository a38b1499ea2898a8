/**
 * Messages our peer pushes. Each PUSH carries a sealed blob (src/crypto/seal.ts): it is opened,
 * its sender checked against the sender's certificate (looked up at the sender's peer when not
 * known, the push waiting meanwhile), deduplicated by (sender, id), reassembled when chunked
 * (src/client/reassembly.ts), added to the history and shown as an event (a group message updates
 * the group, src/client/groups.ts); its receipt is queued and the PUSH acknowledged after the
 * state is saved. What does not authenticate is rejected: counted,
 * shown as a `rejected` event and acknowledged, so it leaves the peer's mailbox.
 *
 * Bounds (behaviour at the bound):
 *   pendingVerifyMax              pushes waiting for their sender's certificate; beyond, a push is
 *                                 left unacknowledged and the peer pushes it again later
 *   unknownSenderGraceMs          pushes from a sender its peer answers NOT_FOUND for stay
 *                                 unacknowledged this long after the first NOT_FOUND, then are rejected
 *   UNKNOWN_SENDERS_MAX           senders remembered for that; the oldest is forgotten
 *   dedupeEntriesMax, dedupeTtlMs (sender, id) seen; oldest/expired forgotten
 */
import { MsgType } from '../protocol/constants.js';
import { openSealed, verifySender, type Opened } from '../crypto/seal.js';
import { ContentKind, decodeChunk, decodeReceipt, decodeText, decodeVerify } from './content.js';
import { Reassembler, type ChunkIn } from './reassembly.js';
import { hex, unhex, type ClientContext } from './context.js';
import type { GroupBook } from './groups.js';
import type { CertLookups } from './lookups.js';
import type { Outgoing } from './outgoing.js';
import type { ReceiptBatch } from './receipts.js';
import type { MessageRequests } from './requests.js';

/** Senders remembered as not (yet) known by their peer. */
export const UNKNOWN_SENDERS_MAX = 1024;

interface PendingPush {
  readonly pushId: Uint8Array;
  readonly opened: Opened;
}

export class Incoming {
  private readonly reassembler: Reassembler;
  /** Pushes waiting for their sender's certificate, by sender. */
  private readonly pending = new Map<string, PendingPush[]>();
  private pendingCount = 0;
  /** Senders whose certificate their peer did not know: when that was first answered. */
  private readonly unknownSince = new Map<string, number>();

  constructor(
    private readonly ctx: ClientContext,
    private readonly lookups: CertLookups,
    private readonly outgoing: Outgoing,
    private readonly receipts: ReceiptBatch,
    private readonly groupBook: GroupBook,
    private readonly requests: MessageRequests,
  ) {
    this.reassembler = new Reassembler(ctx.o, (reason) => ctx.drops.add(reason));
  }

  /** Messages being reassembled. */
  get partials(): number {
    return this.reassembler.size;
  }

  /** When the oldest partial message expires. */
  nextExpiry(): number | undefined {
    return this.reassembler.nextExpiry();
  }

  onPush(now: number, pushId: Uint8Array, blob: Uint8Array): void {
    const r = openSealed(this.ctx.identity, blob);
    if (!r.ok) return this.reject(pushId, `open_${r.reason}`);
    const opened = r.opened;
    if (!Buffer.from(opened.id).equals(pushId)) return this.reject(pushId, 'id_mismatch', opened.fromHex);
    if (this.requests.isBlocked(opened.fromHex)) {
      // Blocked: gone from our peer's mailbox, nothing shown, nothing sent to the sender's peer.
      this.ctx.drops.add('blocked_sender');
      return this.ctx.send(this.ctx.peerAddr, { type: MsgType.ACK, ids: [pushId] });
    }
    const certHex = this.ctx.certOf(opened.fromHex);
    if (!certHex) {
      if (this.pendingCount >= this.ctx.o.pendingVerifyMax) return void this.ctx.drops.add('pending_verify_full');
      const list = this.pending.get(opened.fromHex) ?? [];
      if (list.some((p) => Buffer.from(p.pushId).equals(pushId))) return;
      list.push({ pushId, opened });
      this.pending.set(opened.fromHex, list);
      this.pendingCount++;
      this.lookups.start(now, opened.fromHex, opened.fromPeer, true);
      return;
    }
    this.acceptOpened(now, pushId, opened);
  }

  /** `fp`'s certificate is known now: take the pushes that waited for it. */
  certificateKnown(now: number, fp: string): void {
    this.unknownSince.delete(fp);
    const pend = this.takePending(fp);
    if (pend) for (const p of pend) this.acceptOpened(now, p.pushId, p.opened);
  }

  /** No certificate came for the sender `fp` (lookup gave up with `reason`). */
  senderMissing(now: number, fp: string, reason: string): void {
    // A sender's peer that does not answer may answer later: leave those pushes unacknowledged, so
    // the peer pushes them again and a new lookup starts then. An ACK would lose them for good.
    if (reason === 'certificate-unreachable') this.dropPending(fp, 'sender_unreachable');
    else if (reason === 'certificate-not-found' && this.withinUnknownGrace(now, fp)) {
      // The sender's peer may have restarted and not yet seen the sender register again.
      this.dropPending(fp, 'sender_not_found_yet');
    } else {
      this.unknownSince.delete(fp);
      this.rejectPending(fp, 'sender_unknown');
    }
  }

  /** Forget partial messages and (sender, id) entries that are too old. */
  expire(now: number): void {
    this.reassembler.expire(now);
    for (const [k, at] of this.ctx.dedupe) {
      if (at + this.ctx.o.dedupeTtlMs > now) break;
      this.ctx.forgetSeen(k);
    }
  }

  private takePending(fp: string): PendingPush[] | undefined {
    const pend = this.pending.get(fp);
    if (!pend) return undefined;
    this.pending.delete(fp);
    this.pendingCount -= pend.length;
    return pend;
  }

  /** Forget pushes waiting for `fp`'s certificate without acknowledging them. */
  private dropPending(fp: string, reason: string): void {
    const pend = this.takePending(fp);
    if (pend) for (let i = 0; i < pend.length; i++) this.ctx.drops.add(reason);
  }

  private rejectPending(fp: string, reason: string): void {
    const pend = this.takePending(fp);
    if (pend) for (const p of pend) this.reject(p.pushId, reason, fp);
  }

  /**
   * A sender's certificate was NOT_FOUND at its peer: true while the first such answer for it is
   * younger than unknownSenderGraceMs (its pushes stay unacknowledged, so its peer pushes them
   * again and they are looked up again); after that they are rejected and acknowledged, so that
   * messages claiming senders nobody knows cannot hold a mailbox for long. At most
   * UNKNOWN_SENDERS_MAX senders are remembered (the oldest is forgotten).
   */
  private withinUnknownGrace(now: number, fp: string): boolean {
    const first = this.unknownSince.get(fp);
    if (first === undefined) {
      if (this.unknownSince.size >= UNKNOWN_SENDERS_MAX) {
        const oldest = this.unknownSince.keys().next().value;
        if (oldest !== undefined) this.unknownSince.delete(oldest);
      }
      this.unknownSince.set(fp, now);
      return true;
    }
    return now - first < this.ctx.o.unknownSenderGraceMs;
  }

  /** Drop what does not authenticate, and still ACK it so it leaves the peer's mailbox. */
  private reject(pushId: Uint8Array, reason: string, from?: string): void {
    this.ctx.drops.add(reason);
    this.ctx.emit({ type: 'rejected', reason, ...(from ? { from } : {}) });
    this.ctx.send(this.ctx.peerAddr, { type: MsgType.ACK, ids: [pushId] });
  }

  private acceptOpened(now: number, pushId: Uint8Array, opened: Opened): void {
    const certHex = this.ctx.certOf(opened.fromHex);
    if (!certHex || !verifySender(opened, unhex(certHex), this.ctx.identity.fingerprint)) {
      return this.reject(pushId, 'bad_sender', opened.fromHex);
    }
    const from = opened.fromHex;
    const idHex = hex(opened.id);
    switch (opened.kind) {
      case ContentKind.RECEIPT: {
        const ids = decodeReceipt(opened.body);
        if (!ids) return this.reject(pushId, 'bad_receipt', from);
        this.outgoing.onReceipt(now, from, ids);
        break;
      }
      case ContentKind.TEXT:
      case ContentKind.VERIFY: {
        if (!this.ctx.dedupe.has(`${from}:${idHex}`)) {
          if (!this.consume(now, opened, opened.kind, opened.body, idHex)) return this.reject(pushId, 'bad_body', from);
          this.markSeen(now, `${from}:${idHex}`);
        }
        this.receipt(now, from, opened.fromPeer, [idHex]);
        break;
      }
      case ContentKind.CHUNK: {
        const c = decodeChunk(opened.body);
        if (!c) return this.reject(pushId, 'bad_chunk', from);
        this.addChunk(now, opened, hex(c.messageId), idHex, c);
        break;
      }
      default:
        return this.reject(pushId, 'unknown_kind', from);
    }
    // The ACK is queued here and leaves only through pollTransmit, which commits first.
    this.ctx.send(this.ctx.peerAddr, { type: MsgType.ACK, ids: [pushId] });
  }

  /** Show one complete message (TEXT or VERIFY body); false when the body is malformed. */
  private consume(now: number, opened: Opened, kind: number, body: Uint8Array, idHex: string): boolean {
    const from = opened.fromHex;
    if (kind === ContentKind.VERIFY) {
      const v = decodeVerify(body);
      if (!v) return false;
      this.ctx.emit({ type: 'verify', from, body: v });
      return true;
    }
    const t = decodeText(body);
    if (!t) return false;
    if (t.group && !t.group.members.some((m) => m.fingerprint === from)) return false;
    const s = this.ctx.s;
    const contact = s.contacts.find((c) => c.fingerprint === from && !c.changed);
    // A stranger's message is a request: shown, but its group is not learned (no group appears).
    const request = !s.contacts.some((c) => c.fingerprint === from);
    if (request && t.group) this.ctx.drops.add('group_from_stranger');
    const group = request ? undefined : t.group;
    this.ctx.addHistory({
      id: idHex, contact: from, dir: 'in', atMs: now, sentAtMs: opened.sentAtMs, text: t.text,
      ...(contact ? { fromName: contact.petname } : {}), fromPeer: opened.fromPeer,
      ...(group ? { group: { id: group.id, name: group.name, members: group.members.map((m) => ({ ...m })) } } : {}),
    });
    if (group) this.groupBook.learn(group);
    this.ctx.emit({
      type: 'message', from, ...(contact ? { fromName: contact.petname } : {}), fromPeer: opened.fromPeer, id: idHex,
      text: t.text, sentAt: opened.sentAtMs, ...(group ? { group } : {}), ...(request ? { request: true } : {}),
    });
    return true;
  }

  /** One chunk of message `msgId`; a message already seen only gets the chunk's receipt again. */
  private addChunk(now: number, opened: Opened, msgId: string, chunkId: string, c: ChunkIn): void {
    const from = opened.fromHex;
    const key = `${from}:${msgId}`;
    if (this.ctx.dedupe.has(key)) return this.receipt(now, from, opened.fromPeer, [chunkId]);
    const r = this.reassembler.add(now, key, chunkId, c, { fromPeer: opened.fromPeer, sentAtMs: opened.sentAtMs });
    if (r.status === 'mismatch') return void this.ctx.drops.add('chunk_mismatch');
    if (r.status !== 'complete') return;
    const m = r.message;
    const whole = { ...opened, sentAtMs: m.sentAtMs, fromPeer: m.fromPeer };
    if (!this.consume(now, whole, m.innerKind, m.body, msgId)) return void this.ctx.drops.add('bad_chunked_body');
    this.markSeen(now, key);
    this.receipt(now, from, m.fromPeer, m.chunkIds);
  }

  /** Receipts go to contacts; a stranger's wait until the stranger is accepted (requests.ts). */
  private receipt(now: number, from: string, fromPeer: string, ids: string[]): void {
    if (this.ctx.s.contacts.some((c) => c.fingerprint === from)) this.receipts.add(now, from, fromPeer, ids);
    else this.requests.withhold(from, fromPeer, ids);
  }

  private markSeen(now: number, key: string): void {
    const dedupe = this.ctx.dedupe;
    this.ctx.seen(key, now);
    while (dedupe.size > this.ctx.o.dedupeEntriesMax) {
      const first = dedupe.keys().next();
      if (first.done) break;
      this.ctx.forgetSeen(first.value);
    }
  }
}
