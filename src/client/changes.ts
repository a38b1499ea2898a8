/**
 * What changed since the last commit, turned into one StoreBatch (src/client/store.ts).
 *
 * Two kinds of change:
 *   - explicit, on the message path, O(1) each: an outbox message put or dropped, a dedupe entry
 *     set or forgotten, a history entry added or its delivery state changed. Their cost does not
 *     depend on how much is stored.
 *   - the small state (top-level fields, contacts, groups, certificates), found by comparing each
 *     row's JSON with what was last committed, only when `ctx.dirty` says something there may
 *     have changed (user calls, a new certificate, a pinned fingerprint, a group learned). A new
 *     optional field of a contact or a new top-level field is picked up this way with no change
 *     here. Its cost is bounded by contactsMax, groupsMax and certsMax.
 *   - the keyed maps (KEYED_FIELDS: ratchet sessions, pushes opened through them, capabilities,
 *     CARD receipts, dedupe floors), compared key by key with ===, without serializing anything,
 *     when `ctx.dirty` is set; only the keys whose value changed are written.
 */
import { KEYED_FIELDS, SNAPSHOT_COLLECTIONS, isKeyedField, type ClientSnapshot, type KeyedField, type DedupeValue, type DeliveryState, type HistoryEntry, type HistoryOp, type OutboxMessage, type StoreBatch } from './store.js';

export class ChangeTracker {
  private readonly metaJson = new Map<string, string>();
  private readonly contactJson = new Map<string, string>();
  private readonly groupJson = new Map<string, string>();
  private readonly certHex = new Map<string, string>();
  private readonly keyedLast = new Map<KeyedField, Map<string, unknown>>(KEYED_FIELDS.map((f) => [f, new Map()]));
  private readonly outbox = new Map<string, OutboxMessage | undefined>();
  private readonly dedupe = new Map<string, DedupeValue | undefined>();
  private history: HistoryOp[] = [];

  /** Start from what the store holds (just loaded, or empty). */
  constructor(s: ClientSnapshot) {
    this.seen(s);
  }

  /** Explicit changes are waiting. */
  get pending(): boolean {
    return this.outbox.size > 0 || this.dedupe.size > 0 || this.history.length > 0;
  }

  putOutbox(m: OutboxMessage): void {
    this.outbox.set(m.id, m);
  }

  dropOutbox(id: string): void {
    this.outbox.set(id, undefined);
  }

  setDedupe(key: string, v: DedupeValue): void {
    this.dedupe.set(key, v);
  }

  forgetDedupe(key: string): void {
    this.dedupe.set(key, undefined);
  }

  addHistory(entry: HistoryEntry): void {
    this.history.push({ op: 'add', entry });
  }

  historyState(id: string, contact: string, state: DeliveryState, reason: string | undefined): void {
    this.history.push({ op: 'state', id, contact, state, ...(reason !== undefined ? { reason } : {}) });
  }

  /**
   * The batch of everything that changed; `smallState` also compares the small state row by row.
   * The store must not keep references into it. Then call committed() or, if the store refused
   * it, failed() (its changes go into the next batch again).
   */
  take(s: ClientSnapshot, smallState: boolean): StoreBatch {
    const b: StoreBatch = { meta: [], contacts: [], groups: [], certs: [], outbox: [...this.outbox], dedupe: [...this.dedupe], keyed: [], history: this.history };
    const caches: CacheUpdate[] = [];
    const keyedCaches: KeyedUpdate[] = [];
    if (smallState) {
      diffRows(this.metaJson, Object.entries(s).filter(([k, v]) => !SNAPSHOT_COLLECTIONS.has(k) && !isKeyedField(k) && v !== undefined), b.meta, caches);
      for (const f of KEYED_FIELDS) diffKeyed(f, this.keyedLast.get(f)!, s[f], b.keyed, keyedCaches);
      diffRows(this.contactJson, s.contacts.map((c) => [c.petname, c] as const), b.contacts, caches);
      diffRows(this.groupJson, s.groups.map((g) => [g.id, g] as const), b.groups, caches);
      const gone = new Set(this.certHex.keys());
      for (const [fp, cert] of Object.entries(s.certs)) {
        gone.delete(fp);
        if (this.certHex.get(fp) !== cert) {
          b.certs.push([fp, cert]);
          caches.push([this.certHex, fp, cert]);
        }
      }
      for (const fp of gone) {
        b.certs.push([fp, undefined]);
        caches.push([this.certHex, fp, undefined]);
      }
    }
    this.last = { outbox: new Map(this.outbox), dedupe: new Map(this.dedupe), history: this.history, caches, keyedCaches };
    this.outbox.clear();
    this.dedupe.clear();
    this.history = [];
    return b;
  }

  /** The last batch is in the store. */
  committed(): void {
    for (const [map, key, value] of this.last?.caches ?? []) {
      if (value === undefined) map.delete(key);
      else map.set(key, value);
    }
    for (const [map, key, value] of this.last?.keyedCaches ?? []) {
      if (value === undefined) map.delete(key);
      else map.set(key, frozen(value));
    }
    this.last = undefined;
  }

  /** The last batch did not reach the store: its changes go into the next one again. */
  failed(): void {
    const l = this.last;
    if (!l) return;
    for (const [k, v] of l.outbox) if (!this.outbox.has(k)) this.outbox.set(k, v);
    for (const [k, v] of l.dedupe) if (!this.dedupe.has(k)) this.dedupe.set(k, v);
    this.history = [...l.history, ...this.history];
    this.last = undefined;
  }

  private last: {
    outbox: Map<string, OutboxMessage | undefined>; dedupe: Map<string, DedupeValue | undefined>; history: HistoryOp[]; caches: CacheUpdate[]; keyedCaches: KeyedUpdate[];
  } | undefined;

  private seen(s: ClientSnapshot): void {
    for (const [k, v] of Object.entries(s)) if (!SNAPSHOT_COLLECTIONS.has(k) && v !== undefined) this.metaJson.set(k, JSON.stringify(v));
    for (const c of s.contacts) this.contactJson.set(c.petname, JSON.stringify(c));
    for (const g of s.groups) this.groupJson.set(g.id, JSON.stringify(g));
    for (const [fp, cert] of Object.entries(s.certs)) this.certHex.set(fp, cert);
    for (const f of KEYED_FIELDS) for (const [k, v] of Object.entries(s[f] ?? {})) this.keyedLast.get(f)!.set(k, frozen(v));
  }
}

/** A change of one of the last-committed maps, applied once the batch is committed. */
type CacheUpdate = [Map<string, string>, string, string | undefined];
/** The same for the keyed maps (the value itself, compared with ===). */
type KeyedUpdate = [Map<string, unknown>, string, unknown];

/**
 * A keyed map's value as committed: frozen when it is an object, so that changing it in place,
 * which the identity comparison would not see, throws instead of being silently left unsaved.
 */
function frozen<T>(v: T): T {
  return typeof v === 'object' && v !== null ? Object.freeze(v) : v;
}

/** Keys of keyed field `f` whose value is not the one last committed (===), and keys gone. */
function diffKeyed(f: KeyedField, last: Map<string, unknown>, now: Readonly<Record<string, unknown>> | undefined, out: StoreBatch['keyed'], caches: KeyedUpdate[]): void {
  let kept = 0;
  if (now) {
    for (const [k, v] of Object.entries(now)) {
      if (v === undefined) continue;
      const was = last.get(k);
      if (was !== undefined) kept++;
      if (was !== v) {
        out.push([f, k, v]);
        caches.push([last, k, v]);
      }
    }
  }
  if (kept === last.size) return;
  for (const k of last.keys()) {
    if (now?.[k] === undefined) {
      out.push([f, k, undefined]);
      caches.push([last, k, undefined]);
    }
  }
}

/** Rows whose JSON differs from `last`, and deletions of the keys no longer there. */
function diffRows<T>(last: Map<string, string>, rows: ReadonlyArray<readonly [string, T]>, out: Array<[string, T | undefined]>, caches: CacheUpdate[]): void {
  const gone = new Set(last.keys());
  for (const [key, value] of rows) {
    gone.delete(key);
    const json = JSON.stringify(value);
    if (last.get(key) !== json) {
      out.push([key, JSON.parse(json) as T]);
      caches.push([last, key, json]);
    }
  }
  for (const key of gone) {
    out.push([key, undefined]);
    caches.push([last, key, undefined]);
  }
}
