/**
 * What the simulator promised and what it saw: every message a client was asked to send (one
 * record per recipient id), every `message` event shown at a recipient, every `delivery` event
 * seen by a sender. The invariants are checked as events arrive and once more at the end:
 *   unexpected-message    shown, but nobody sent that (sender, id)
 *   wrong-recipient       shown at a client it was not sent to
 *   altered               shown with another text or group than sent
 *   shown-twice           shown more than once at its recipient (across restarts too)
 *   delivered-unshown     reported delivered to the sender before its recipient showed it
 *   delivered-twice       reported delivered more than once
 *   final-changed         a delivered or failed message changed state again
 *   failed-without-reason failed with no reason
 *   stuck                 still queued or held when the run ended
 *   state-mismatch        the sender's store disagrees with its last delivery event
 */
import type { ClientEvent } from '../../src/client/index.js';
import type { DeliveryState } from '../../src/client/store.js';

export type MessageKind = 'single' | 'multi' | 'group' | 'long' | 'stranger' | 'ghost';

export interface SentRecord {
  readonly key: string;
  readonly id: string;
  readonly from: string;
  readonly fromName: string;
  readonly to: string;
  readonly toName: string;
  readonly text: string;
  readonly kind: MessageKind;
  readonly groupId: string | undefined;
  readonly atMs: number;
  shown: number;
  shownAtMs: number | undefined;
  state: DeliveryState;
  reason: string | undefined;
  deliveredEvents: number;
}

export interface Violation {
  readonly kind: string;
  readonly detail: string;
  /** `senderFp:id` of the message concerned, when there is one. */
  readonly key?: string;
  readonly atMs: number;
}

/** Violations kept per run (the first ones; the rest are only counted). */
export const VIOLATIONS_KEPT_MAX = 20;

type MessageEvent = Extract<ClientEvent, { type: 'message' }>;
type DeliveryEvent = Extract<ClientEvent, { type: 'delivery' }>;

export class Ledger {
  readonly sent = new Map<string, SentRecord>();
  readonly violations: Violation[] = [];
  violationCount = 0;
  unfinished = 0;
  readonly rejected: Record<string, number> = {};
  private readonly names = new Map<string, string>();

  constructor(private readonly startMs: number) {}

  name(fp: string, name: string): void {
    this.names.set(fp, name);
  }

  nameOf(fp: string): string {
    return this.names.get(fp) ?? fp.slice(0, 8);
  }

  violation(kind: string, detail: string, atMs: number, key?: string): void {
    this.violationCount++;
    if (this.violations.length < VIOLATIONS_KEPT_MAX) this.violations.push({ kind, detail, atMs, ...(key ? { key } : {}) });
  }

  /** A send() or sendGroup() call returned `id` for recipient `to`. */
  onSent(r: Omit<SentRecord, 'key' | 'shown' | 'shownAtMs' | 'state' | 'reason' | 'deliveredEvents'>): SentRecord {
    const key = `${r.from}:${r.id}`;
    const rec: SentRecord = { ...r, key, shown: 0, shownAtMs: undefined, state: 'queued', reason: undefined, deliveredEvents: 0 };
    if (this.sent.has(key)) this.violation('duplicate-id', `${r.fromName} got message id ${r.id} twice`, r.atMs, key);
    this.sent.set(key, rec);
    this.unfinished++;
    return rec;
  }

  /** A recipient showed a message. */
  onShown(recipient: string, e: MessageEvent, now: number): void {
    const key = `${e.from}:${e.id}`;
    const r = this.sent.get(key);
    const where = `${this.nameOf(recipient)} showed ${e.id.slice(0, 8)} from ${this.nameOf(e.from)}`;
    if (!r) return this.violation('unexpected-message', `${where}, which nobody sent`, now, key);
    if (r.to !== recipient) return this.violation('wrong-recipient', `${where}, sent to ${r.toName}`, now, key);
    if (e.text !== r.text) this.violation('altered', `${where} with another text (${e.text.length} chars, ${r.text.length} sent)`, now, key);
    if ((e.group?.id ?? undefined) !== r.groupId) this.violation('altered', `${where} with group ${e.group?.id}, sent with ${r.groupId}`, now, key);
    r.shown++;
    r.shownAtMs ??= now;
    if (r.shown > 1) this.violation('shown-twice', `${where} for the ${r.shown}th time`, now, key);
  }

  /** A sender reported a delivery state. */
  onDelivery(sender: string, e: DeliveryEvent, now: number): void {
    const key = `${sender}:${e.id}`;
    const r = this.sent.get(key);
    if (!r) return; // not one the scenario sent (it records ids before it reads the call's events)
    if (e.to !== r.to) this.violation('wrong-recipient', `${r.fromName} reports ${e.id.slice(0, 8)} for ${this.nameOf(e.to)}, sent to ${r.toName}`, now, key);
    const wasFinal = r.state === 'delivered' || r.state === 'failed';
    if (wasFinal && (e.state !== r.state || e.reason !== r.reason)) {
      this.violation('final-changed', `${r.fromName}'s ${e.id.slice(0, 8)} went from ${r.state} to ${e.state}`, now, key);
    }
    if (e.state === 'delivered') {
      r.deliveredEvents++;
      if (r.deliveredEvents > 1) this.violation('delivered-twice', `${r.fromName}'s ${e.id.slice(0, 8)} reported delivered again`, now, key);
      if (r.shown !== 1) this.violation('delivered-unshown', `${r.fromName}'s ${e.id.slice(0, 8)} reported delivered, shown ${r.shown} times at ${r.toName}`, now, key);
    }
    if (e.state === 'failed' && !e.reason) this.violation('failed-without-reason', `${r.fromName}'s ${e.id.slice(0, 8)} failed with no reason`, now, key);
    if (!wasFinal && (e.state === 'delivered' || e.state === 'failed')) this.unfinished--;
    r.state = e.state;
    r.reason = e.reason;
  }

  /** A recipient refused a pushed message (counted; the summary shows them). */
  onRejected(reason: string): void {
    this.rejected[reason] = (this.rejected[reason] ?? 0) + 1;
  }

  /** End of run: nothing left unfinished, the stores agree with the events. */
  finish(now: number, storeState: (r: SentRecord) => { state: DeliveryState; reason?: string } | undefined): void {
    for (const r of this.sent.values()) {
      if (r.state !== 'delivered' && r.state !== 'failed') {
        this.violation('stuck', `${r.fromName}'s ${r.id.slice(0, 8)} to ${r.toName} (${r.kind}) is still ${r.state}${r.reason ? ` (${r.reason})` : ''}`, now, r.key);
      }
      if (r.shown > 1) continue; // reported already
      const s = storeState(r);
      if (s && (s.state !== r.state || (s.reason ?? undefined) !== r.reason)) {
        this.violation('state-mismatch', `${r.fromName}'s ${r.id.slice(0, 8)}: store says ${s.state}/${s.reason}, events said ${r.state}/${r.reason}`, now, r.key);
      }
    }
  }

  rel(ms: number): string {
    return `+${((ms - this.startMs) / 1000).toFixed(3)}s`;
  }
}
