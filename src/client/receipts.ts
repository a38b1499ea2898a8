/**
 * Receipts this client sends for the messages it received. The DELIVER ids to acknowledge are
 * collected per sender and the peer its message named (a sender that changed its peers names
 * another one in its newer messages) for receiptBatchDelayMs (timer `receiptFlush`), then sealed to the sender,
 * RECEIPT_IDS_MAX ids a receipt, and handed to the outgoing transfers, which DELIVER them to the
 * sender's peer. At most receiptTransfersMax receipts are in flight; beyond, a receipt is not sent
 * now (the sender resends its message and gets the receipt then).
 */
import { ContentKind, RECEIPT_IDS_MAX, encodeReceipt } from './content.js';
import { unhex, type ClientContext } from './context.js';
import type { Outgoing } from './outgoing.js';
import type { Ratchets } from './ratchets.js';

export class ReceiptBatch {
  /** By `sender peer`. */
  private readonly queue = new Map<string, { to: string; peer: string; ids: Set<string> }>();
  private flushAt: number | undefined;

  constructor(private readonly ctx: ClientContext, private readonly outgoing: Outgoing, private readonly ratchets: Ratchets) {}

  /** The `receiptFlush` timer. */
  get deadline(): number | undefined {
    return this.flushAt;
  }

  /** Acknowledge the DELIVER ids `ids` to the sender `to`, whose peer is `peer`. */
  add(now: number, to: string, peer: string, ids: string[]): void {
    const key = `${to} ${peer}`;
    let q = this.queue.get(key);
    if (!q) {
      q = { to, peer, ids: new Set() };
      this.queue.set(key, q);
    }
    for (const id of ids) q.ids.add(id);
    if (this.flushAt === undefined) this.flushAt = now + this.ctx.o.receiptBatchDelayMs;
  }

  handleTimeout(now: number): void {
    if (this.flushAt !== undefined && this.flushAt <= now) this.flush(now);
  }

  private flush(now: number): void {
    this.flushAt = undefined;
    let receipts = this.outgoing.receiptCount();
    for (const q of this.queue.values()) {
      const to = q.to;
      const certHex = this.ctx.certOf(to);
      if (!certHex) continue;
      const ids = [...q.ids];
      for (let i = 0; i < ids.length; i += RECEIPT_IDS_MAX) {
        if (receipts >= this.ctx.o.receiptTransfersMax) {
          this.ctx.drops.add('receipts_full');
          break;
        }
        const idBytes = this.ctx.random(16);
        const body = encodeReceipt(ids.slice(i, i + RECEIPT_IDS_MAX).map(unhex));
        const blob = this.ratchets.blobFor(to, certHex, { kind: ContentKind.RECEIPT, id: idBytes, sentAtMs: Math.floor(now), body });
        this.outgoing.addReceipt(now, idBytes, to, q.peer, blob);
        receipts++;
      }
    }
    this.queue.clear();
  }
}
