/**
 * Message requests: a sender who is not a contact is a stranger. Their messages are kept and shown
 * (flagged `request`), and the PUSH is acknowledged to our own peer as usual, but nothing is sent
 * towards the stranger's peer: the receipts of their messages are withheld until the user accepts
 * them (adds them as a contact, or replies), so a stranger cannot learn from a receipt when, or that,
 * this client is online. A stranger cannot make a group appear in this client either (the message
 * is shown, the group is not learned). Blocked senders are dropped and acknowledged silently,
 * counted by `blocked_sender`.
 *
 * Bounds (behaviour at the bound):
 *   REQUEST_SENDERS_MAX     strangers whose receipts are withheld; the oldest is forgotten (its
 *                           sender resends and the receipt is withheld again until accepted)
 *   REQUEST_IDS_MAX         receipt ids withheld per stranger; the oldest are forgotten (same)
 *   BLOCKED_MAX             blocked fingerprints; block() throws PEERPOST_BLOCKED_FULL beyond
 */
import { UsageError } from '../core/errors.js';

export const REQUEST_SENDERS_MAX = 256;
export const REQUEST_IDS_MAX = 256;
export const BLOCKED_MAX = 4096;

interface Withheld {
  peer: string;
  ids: string[];
}

export class MessageRequests {
  private readonly withheld = new Map<string, Withheld>();
  private readonly blockedSet = new Set<string>();

  /** Keep the receipt ids of a stranger's message until the stranger is accepted. */
  withhold(fp: string, peer: string, ids: readonly string[]): void {
    let w = this.withheld.get(fp);
    if (!w) {
      if (this.withheld.size >= REQUEST_SENDERS_MAX) {
        const oldest = this.withheld.keys().next().value;
        if (oldest !== undefined) this.withheld.delete(oldest);
      }
      w = { peer, ids: [] };
      this.withheld.set(fp, w);
    }
    w.peer = peer;
    for (const id of ids) if (!w.ids.includes(id)) w.ids.push(id);
    if (w.ids.length > REQUEST_IDS_MAX) w.ids.splice(0, w.ids.length - REQUEST_IDS_MAX);
  }

  /** The withheld receipts of `fp`, forgotten here (the caller sends them). */
  release(fp: string): Withheld | undefined {
    const w = this.withheld.get(fp);
    this.withheld.delete(fp);
    return w;
  }

  /** Strangers with withheld receipts. */
  get pending(): number {
    return this.withheld.size;
  }

  isBlocked(fp: string): boolean {
    return this.blockedSet.has(fp);
  }

  block(fp: string): void {
    if (this.blockedSet.has(fp)) return;
    if (this.blockedSet.size >= BLOCKED_MAX) throw new UsageError('PEERPOST_BLOCKED_FULL', `at most ${BLOCKED_MAX} senders can be blocked`);
    this.blockedSet.add(fp);
    this.withheld.delete(fp);
  }

  unblock(fp: string): void {
    this.blockedSet.delete(fp);
  }

  blocked(): string[] {
    return [...this.blockedSet];
  }
}
