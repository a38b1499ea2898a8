/**
 * A ClientStore in memory, for tests and the simulator. Every row is kept as JSON text, so what a
 * new Client loads after a simulated restart shares nothing with the old one, exactly as with a
 * database. Search is a case-insensitive substring match.
 */
import { CLIENT_STATE_VERSION, type ClientSnapshot, type DedupeValue, type KeyedField, type ClientStore, type HistoryDeletion, type HistoryEntry, type HistoryQuery, type StoreBatch } from './store.js';

export class MemoryClientStore implements ClientStore {
  private readonly meta = new Map<string, string>();
  private readonly contacts = new Map<string, string>();
  private readonly groups = new Map<string, string>();
  private readonly certs = new Map<string, string>();
  private readonly outbox = new Map<string, string>();
  private readonly dedupe = new Map<string, DedupeValue>();
  /** Keyed rows by field, each map in row order (a key set again moves to the end). */
  private readonly keyed = new Map<KeyedField, Map<string, string>>();
  /** History rows in the order they were stored. */
  private readonly rows: HistoryEntry[] = [];
  private readonly rowKeys = new Set<string>();
  private readonly counts = { in: 0, out: 0 };
  private saved = false;
  /** How many times commit() was called. */
  commits = 0;

  load(): ClientSnapshot | undefined {
    if (!this.saved) return undefined;
    const s: ClientSnapshot = {
      version: CLIENT_STATE_VERSION,
      contacts: [...this.contacts.values()].map((j) => JSON.parse(j)),
      groups: [...this.groups.values()].map((j) => JSON.parse(j)),
      certs: Object.fromEntries(this.certs),
      outbox: [...this.outbox.values()].map((j) => JSON.parse(j)),
      dedupe: [...this.dedupe].map(([key, v]) => ({ key, ...v })),
    };
    for (const [k, j] of this.meta) (s as unknown as Record<string, unknown>)[k] = JSON.parse(j);
    for (const [f, rows] of this.keyed) {
      if (rows.size) (s as unknown as Record<string, unknown>)[f] = Object.fromEntries([...rows].map(([k, j]) => [k, JSON.parse(j)]));
    }
    return s;
  }

  commit(b: StoreBatch): void {
    this.commits++;
    this.saved = true;
    const put = <T>(m: Map<string, T>, rows: Array<[string, unknown]>, f: (v: unknown) => T): void => {
      for (const [k, v] of rows) {
        if (v === undefined) m.delete(k);
        else m.set(k, f(v));
      }
    };
    put(this.meta, b.meta, (v) => JSON.stringify(v));
    put(this.contacts, b.contacts, (v) => JSON.stringify(v));
    put(this.groups, b.groups, (v) => JSON.stringify(v));
    put(this.certs, b.certs, (v) => v as string);
    put(this.outbox, b.outbox, (v) => JSON.stringify(v));
    put(this.dedupe, b.dedupe, (v) => ({ ...(v as DedupeValue) }));
    for (const [f, k, v] of b.keyed) {
      let rows = this.keyed.get(f);
      if (!rows) this.keyed.set(f, (rows = new Map()));
      rows.delete(k); // set again: to the end, as in the client's map
      if (v !== undefined) rows.set(k, JSON.stringify(v));
    }
    for (const op of b.history) {
      if (op.op === 'add') {
        const key = rowKey(op.entry);
        if (!this.rowKeys.has(key)) {
          this.rowKeys.add(key);
          this.counts[op.entry.dir]++;
          this.rows.push(JSON.parse(JSON.stringify(op.entry)) as HistoryEntry);
        }
        continue;
      }
      const r = this.findOut(op.id, op.contact);
      if (!r) continue;
      r.state = op.state;
      if (op.reason === undefined) delete r.reason;
      else r.reason = op.reason;
    }
  }

  history(q: HistoryQuery): HistoryEntry[] {
    let end = this.rows.length;
    if (q.beforeId !== undefined) {
      const i = this.rows.findIndex((r) => r.id === q.beforeId);
      end = i < 0 ? 0 : i;
    }
    const needle = q.search?.toLowerCase();
    const out: HistoryEntry[] = [];
    for (let i = end - 1; i >= 0 && out.length < q.limit; i--) {
      const r = this.rows[i]!;
      if (q.contact !== undefined && r.contact !== q.contact) continue;
      if (q.dir !== undefined && r.dir !== q.dir) continue;
      if (needle !== undefined && !r.text.toLowerCase().includes(needle)) continue;
      out.push(JSON.parse(JSON.stringify(r)) as HistoryEntry);
    }
    return out.reverse();
  }

  deleteHistory(what: HistoryDeletion): number {
    const keep = (r: HistoryEntry): boolean =>
      'contact' in what ? r.contact !== what.contact : 'id' in what ? r.id !== what.id : r.atMs >= what.beforeMs;
    const before = this.rows.length;
    const kept = this.rows.filter(keep);
    for (const r of this.rows) {
      if (keep(r)) continue;
      this.rowKeys.delete(rowKey(r));
      this.counts[r.dir]--;
    }
    this.rows.length = 0;
    this.rows.push(...kept);
    return before - kept.length;
  }

  historyCount(dir?: 'in' | 'out'): number {
    return dir === undefined ? this.rows.length : this.counts[dir];
  }

  /** Bytes of the small state (for tests of what is kept). */
  get sizeBytes(): number {
    let n = 0;
    for (const m of [this.meta, this.contacts, this.groups, this.outbox, ...this.keyed.values()]) for (const v of m.values()) n += v.length;
    return n;
  }

  private findOut(id: string, contact: string): HistoryEntry | undefined {
    for (let i = this.rows.length - 1; i >= 0; i--) {
      const r = this.rows[i]!;
      if (r.id === id && r.dir === 'out' && r.contact === contact) return r;
    }
    return undefined;
  }
}

const rowKey = (r: HistoryEntry): string => `${r.dir}:${r.contact}:${r.id}`;
