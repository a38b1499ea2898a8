/**
 * A stream of chat messages from one client process to another, with the bookkeeping to prove
 * exactly-once delivery: every text is unique; the recipient's `message` events are counted per
 * text, the sender's `delivery` events per id; latency is the time from the sender's `sent` event
 * to the recipient's first `message` event for that id (both read by this process, one clock).
 */
import type { Event, NsProcess } from './ns-process.js';
import { now } from './ns-process.js';

export interface TrafficReport {
  sent: number;
  sendErrors: number;
  receivedUnique: number;
  duplicates: number;
  missing: number;
  delivered: number;
  failed: number;
  latencyMs: { p50: number; p90: number; p99: number; max: number };
}

export function percentile(sorted: readonly number[], p: number): number {
  if (!sorted.length) return NaN;
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[i] ?? NaN;
}

export class Traffic {
  readonly texts: string[] = [];
  private readonly pending: string[] = [];
  readonly idOf = new Map<string, string>();
  readonly sentAt = new Map<string, number>();
  readonly finalState = new Map<string, string>();
  readonly deliveredAt = new Map<string, number>();
  /** message events per text at the recipient. */
  readonly receivedCount = new Map<string, number>();
  /** first message event time per id at the recipient. */
  readonly receivedAt = new Map<string, number>();
  sendErrors = 0;
  private wakers: Array<() => void> = [];

  constructor(readonly from: NsProcess, readonly to: NsProcess, readonly toName: string, readonly prefix: string) {
    from.onEvent((e) => this.onSender(e));
    to.onEvent((e) => this.onRecipient(e));
  }

  /** Count the messages of a restarted recipient process too. */
  attachRecipient(p: NsProcess): void {
    for (const e of p.events) this.onRecipient(e);
    p.onEvent((e) => this.onRecipient(e));
  }

  private wake(): void {
    const w = this.wakers;
    this.wakers = [];
    for (const f of w) f();
  }

  private onSender(e: Event): void {
    if (e.event === 'sent' || e.event === 'error') {
      const text = this.pending.shift();
      if (text === undefined) return;
      if (e.event === 'error') this.sendErrors++;
      const id = (e.ids as string[] | undefined)?.[0];
      if (e.event === 'sent' && id) {
        this.idOf.set(text, id);
        this.sentAt.set(id, e.at);
      }
    } else if (e.event === 'delivery' && this.sentAt.has(String(e.id))) {
      const id = String(e.id);
      if (e.state === 'delivered' || e.state === 'failed') {
        if (!this.finalState.has(id)) this.finalState.set(id, String(e.state));
        if (e.state === 'delivered' && !this.deliveredAt.has(id)) this.deliveredAt.set(id, e.at);
      }
    } else {
      return;
    }
    this.wake();
  }

  private onRecipient(e: Event): void {
    if (e.event !== 'message' || typeof e.text !== 'string' || !e.text.startsWith(this.prefix)) return;
    this.receivedCount.set(e.text, (this.receivedCount.get(e.text) ?? 0) + 1);
    const id = String(e.id);
    if (!this.receivedAt.has(id)) this.receivedAt.set(id, e.at);
    this.wake();
  }

  /** Send one message now; returns its text. */
  send(): string {
    const text = `${this.prefix}-${this.texts.length + 1}`;
    this.texts.push(text);
    this.pending.push(text);
    this.from.line(`/msg ${this.toName} ${text}`);
    return text;
  }

  /** Messages sent whose sender has not yet seen a final state. */
  get unfinished(): number {
    return this.texts.length - this.finalState.size - this.sendErrors;
  }

  /** Resolves at the next event that changes the bookkeeping, or after `ms`. */
  private changed(ms: number): Promise<void> {
    return new Promise((res) => {
      const timer = setTimeout(res, ms);
      this.wakers.push(() => {
        clearTimeout(timer);
        res();
      });
    });
  }

  /** Send `count` messages, keeping at most `windowMax` unfinished at the sender; false if `deadline` came first. */
  async sendPaced(count: number, windowMax: number, deadline: number): Promise<boolean> {
    const target = this.texts.length + count;
    while (this.texts.length < target) {
      if (now() > deadline) return false;
      while (this.texts.length < target && this.unfinished < windowMax) this.send();
      await this.changed(1000);
    }
    return true;
  }

  /** True once every sent message was received at least once and its sender saw a final state. */
  get complete(): boolean {
    return this.pending.length === 0 && this.unfinished === 0
      && this.texts.every((t) => (this.receivedCount.get(t) ?? 0) > 0 || !this.idOf.has(t));
  }

  /** Wait until complete, at most until `deadline` (monotonic ms); returns whether it completed. */
  async settle(deadline: number): Promise<boolean> {
    while (!this.complete) {
      const left = deadline - now();
      if (left <= 0) return false;
      await this.changed(Math.min(left, 1000));
    }
    return true;
  }

  /** Wait until the recipient got a message sent at or after `since` (monotonic ms); its time, or undefined. */
  async firstReceivedAfter(since: number, deadline: number): Promise<number | undefined> {
    for (;;) {
      let best: number | undefined;
      for (const [id, at] of this.receivedAt) {
        const sent = this.sentAt.get(id);
        if (sent !== undefined && sent >= since && (best === undefined || at < best)) best = at;
      }
      if (best !== undefined) return best;
      const left = deadline - now();
      if (left <= 0) return undefined;
      await this.changed(Math.min(left, 1000));
    }
  }

  report(): TrafficReport {
    let duplicates = 0;
    let missing = 0;
    let receivedUnique = 0;
    for (const t of this.texts) {
      const n = this.receivedCount.get(t) ?? 0;
      if (n === 0) missing++;
      else receivedUnique++;
      if (n > 1) duplicates += n - 1;
    }
    let delivered = 0;
    let failed = 0;
    for (const s of this.finalState.values()) {
      if (s === 'delivered') delivered++;
      else failed++;
    }
    const lat: number[] = [];
    for (const [id, at] of this.receivedAt) {
      const s = this.sentAt.get(id);
      if (s !== undefined) lat.push(at - s);
    }
    lat.sort((a, b) => a - b);
    const r = (x: number): number => Math.round(x);
    return {
      sent: this.texts.length, sendErrors: this.sendErrors, receivedUnique, duplicates, missing, delivered, failed,
      latencyMs: { p50: r(percentile(lat, 50)), p90: r(percentile(lat, 90)), p99: r(percentile(lat, 99)), max: r(lat[lat.length - 1] ?? NaN) },
    };
  }

  /** The exactly-once verdict: problems found, empty when every message arrived once and was delivered. */
  problems(): string[] {
    const r = this.report();
    const out: string[] = [];
    if (r.sendErrors) out.push(`${r.sendErrors} send commands failed`);
    if (r.missing) out.push(`${r.missing} messages never arrived`);
    if (r.duplicates) out.push(`${r.duplicates} duplicate message events`);
    if (r.failed) out.push(`${r.failed} messages reported failed`);
    if (r.delivered !== r.sent - r.sendErrors) out.push(`delivered ${r.delivered} of ${r.sent - r.sendErrors} at the sender`);
    return out;
  }
}
