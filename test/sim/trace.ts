/**
 * The story of a few messages in one run, for a failing seed: the plan's actions that touch their
 * sender, recipient or peers, every datagram that carries one of their ids (DELIVER, RESULT,
 * PUSH, ACK, ERROR) with what became of it, the sender's delivery states and the recipient's
 * `message` events. A trace only observes: a traced run is the same run.
 */
import type { ClientEvent } from '../../src/client/index.js';
import { addrKey } from '../../src/core/types.js';
import { toHex } from '../../src/identity/certificate.js';
import { MSG_TYPE_NAMES, MsgType, WIRE_ERROR_NAMES } from '../../src/protocol/constants.js';
import { decode } from '../../src/protocol/codec.js';
import type { Ledger, SentRecord } from './ledger.js';
import type { Fate, Wire } from './net.js';

export interface TraceRequest {
  /** `senderFp:id` of the messages to follow. */
  keys: ReadonlySet<string>;
  /** Hex ids of their parts (DELIVER ids). */
  ids: ReadonlySet<string>;
}

/** Lines kept: the first and the last half of this many. */
export const TRACE_LINES_MAX = 160;

export class Tracer {
  private readonly all: string[] = [];
  /** Endpoint names of the traced messages' parties. */
  private readonly parties = new Set<string>();

  constructor(
    private readonly req: TraceRequest,
    private readonly ledger: Ledger,
    private readonly addrName: (key: string) => string,
  ) {}

  sent(r: SentRecord): void {
    if (!this.req.keys.has(r.key)) return;
    this.parties.add(r.fromName).add(r.toName);
    this.line(r.atMs, `${r.fromName} sends ${r.id.slice(0, 12)} (${r.kind}, ${r.text.length} chars) to ${r.toName}`);
  }

  action(now: number, label: string, who: readonly string[]): void {
    if (label === 'send') return;
    if (who.length === 0 || who.some((w) => this.parties.has(w) || /^p\d+$/.test(w))) this.line(now, `-- ${label}`);
  }

  datagram(now: number, w: Wire, fate: Fate | 'sent'): void {
    const outer = w.data[1];
    if (outer !== MsgType.DELIVER && outer !== MsgType.RESULT && outer !== MsgType.SESSION && outer !== MsgType.ERROR) return;
    const r = decode(w.data);
    if (!r.ok) return;
    // A SESSION is traced by what it carries (its tag is the peer's and client's business).
    const m = r.msg.type === MsgType.SESSION ? r.msg.inner : r.msg;
    const t = m.type;
    let ids: Uint8Array[] = [];
    let extra = '';
    if (m.type === MsgType.DELIVER || m.type === MsgType.PUSH) ids = [m.id];
    else if (m.type === MsgType.RESULT) {
      ids = [m.id];
      extra = ` ${m.status}`;
    } else if (m.type === MsgType.ACK) ids = m.ids;
    else if (m.type === MsgType.ERROR) {
      ids = [m.ref];
      extra = ` ${WIRE_ERROR_NAMES[m.code] ?? m.code}`;
    }
    const hit = ids.map((x) => toHex(x)).filter((x) => this.req.ids.has(x));
    if (hit.length === 0) return;
    const from = this.addrName(addrKey(w.from));
    const to = this.addrName(addrKey(w.to));
    this.line(now, `${from} -> ${to} ${MSG_TYPE_NAMES[t]}${extra} ${hit.map((x) => x.slice(0, 12)).join(',')} ${fate}`);
  }

  delivery(now: number, senderFp: string, e: Extract<ClientEvent, { type: 'delivery' }>): void {
    if (!this.req.keys.has(`${senderFp}:${e.id}`)) return;
    this.line(now, `${this.ledger.nameOf(senderFp)} reports ${e.id.slice(0, 12)} ${e.state}${e.reason ? ` (${e.reason})` : ''}`);
  }

  shown(now: number, recipient: string, e: Extract<ClientEvent, { type: 'message' }>): void {
    if (!this.req.keys.has(`${e.from}:${e.id}`)) return;
    this.line(now, `${recipient} shows ${e.id.slice(0, 12)} from ${this.ledger.nameOf(e.from)}`);
  }

  lines(): string[] {
    if (this.all.length <= TRACE_LINES_MAX) return [...this.all];
    const half = TRACE_LINES_MAX / 2;
    return [...this.all.slice(0, half), `   ... ${this.all.length - TRACE_LINES_MAX} lines ...`, ...this.all.slice(-half)];
  }

  private line(now: number, text: string): void {
    this.all.push(`  ${this.ledger.rel(now).padStart(11)}  ${text}`);
  }
}
