/**
 * The client's ClientStore in SQLite (better-sqlite3, synchronous). One commit() is one
 * transaction: the rows that changed are upserted or deleted by key and the history ops applied,
 * so its cost depends on what changed, not on what is stored. History reads use the indexes of
 * src/store/schema.ts and return at most `limit` rows.
 *
 * Rows that fail their checks (src/store/validate.ts) are not used: load() and history() leave
 * them out and add one line per row to `problems`, naming the file, the table, the row and what is
 * wrong, for the caller to show.
 */
import type { Database, Statement } from 'better-sqlite3';
import {
  CLIENT_STATE_VERSION, type ClientSnapshot, type ClientStore, type HistoryDeletion, type HistoryEntry, type HistoryQuery,
  type StoreBatch,
} from '../client/store.js';
import { hasFullText } from './schema.js';
import { BadValue, checkCert, checkContact, checkDedupeKey, checkGroup, checkKeyed, checkMessage, checkMeta, checkOutbox, parseJson, type MessageRow } from './validate.js';

/** Most lines kept in `problems`. */
export const STORE_PROBLEMS_MAX = 100;

const MESSAGE_COLUMNS = 'm.seq, m.id, m.contact, m.dir, m.at_ms, m.sent_at_ms, m.text, m.state, m.reason, m.extra';

export class SqliteClientStore implements ClientStore {
  /** Rows refused when read, one line each (at most STORE_PROBLEMS_MAX). */
  readonly problems: string[] = [];
  private readonly fullText: boolean;
  private readonly st: Record<string, Statement>;
  private readonly commitTx: (b: StoreBatch) => void;

  /** `db` is open and migrated (src/store/open.ts); `file` names it in messages. */
  constructor(readonly db: Database, readonly file: string) {
    this.fullText = hasFullText(db);
    const p = (sql: string): Statement => db.prepare(sql);
    this.st = {
      metaPut: p('INSERT INTO meta (key, json) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET json = excluded.json'),
      metaDel: p('DELETE FROM meta WHERE key = ?'),
      contactPut: p('INSERT INTO contacts (petname, fingerprint, json) VALUES (?, ?, ?) ON CONFLICT (petname) DO UPDATE SET fingerprint = excluded.fingerprint, json = excluded.json'),
      contactDel: p('DELETE FROM contacts WHERE petname = ?'),
      groupPut: p('INSERT INTO chat_groups (id, json) VALUES (?, ?) ON CONFLICT (id) DO UPDATE SET json = excluded.json'),
      groupDel: p('DELETE FROM chat_groups WHERE id = ?'),
      certPut: p('INSERT INTO certs (fingerprint, cert) VALUES (?, ?) ON CONFLICT (fingerprint) DO UPDATE SET cert = excluded.cert'),
      certDel: p('DELETE FROM certs WHERE fingerprint = ?'),
      outboxPut: p('INSERT INTO outbox (id, recipient, state, created_at_ms, json) VALUES (?, ?, ?, ?, ?) ON CONFLICT (id) DO UPDATE SET recipient = excluded.recipient, state = excluded.state, json = excluded.json'),
      outboxDel: p('DELETE FROM outbox WHERE id = ?'),
      dedupePut: p('INSERT INTO dedupe (key, at_ms, sent_at_ms) VALUES (?, ?, ?) ON CONFLICT (key) DO UPDATE SET at_ms = excluded.at_ms, sent_at_ms = excluded.sent_at_ms'),
      dedupeDel: p('DELETE FROM dedupe WHERE key = ?'),
      keyedDel: p('DELETE FROM keyed WHERE field = ? AND key = ?'),
      keyedAdd: p('INSERT INTO keyed (field, key, json) VALUES (?, ?, ?)'),
      msgAdd: p('INSERT OR IGNORE INTO messages (id, contact, dir, at_ms, sent_at_ms, text, state, reason, extra) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)'),
      msgState: p("UPDATE messages SET state = ?, reason = ? WHERE contact = ? AND dir = 'out' AND id = ?"),
      msgSeqOf: p('SELECT seq FROM messages WHERE id = ? ORDER BY seq LIMIT 1'),
      msgDelContact: p('DELETE FROM messages WHERE contact = ?'),
      msgDelId: p('DELETE FROM messages WHERE id = ?'),
      msgDelBefore: p('DELETE FROM messages WHERE at_ms < ?'),
      count: p('SELECT count(*) AS n FROM messages'),
      countDir: p('SELECT count(*) AS n FROM messages WHERE dir = ?'),
    };
    this.commitTx = db.transaction((b: StoreBatch) => this.apply(b));
  }

  load(): ClientSnapshot | undefined {
    const db = this.db;
    const meta = db.prepare('SELECT key, json FROM meta ORDER BY rowid').all() as Array<{ key: string; json: string }>;
    const contacts = db.prepare('SELECT petname, fingerprint, json FROM contacts ORDER BY rowid').all() as Array<{ petname: string; fingerprint: string; json: string }>;
    const groups = db.prepare('SELECT id, json FROM chat_groups ORDER BY rowid').all() as Array<{ id: string; json: string }>;
    const certs = db.prepare('SELECT fingerprint, cert FROM certs ORDER BY rowid').all() as Array<{ fingerprint: string; cert: string }>;
    const outbox = db.prepare('SELECT id, json FROM outbox ORDER BY rowid').all() as Array<{ id: string; json: string }>;
    const dedupe = db.prepare('SELECT key, at_ms, sent_at_ms FROM dedupe ORDER BY rowid').all() as Array<{ key: string; at_ms: number; sent_at_ms: number | null }>;
    const keyed = db.prepare('SELECT field, key, json FROM keyed ORDER BY rowid').all() as Array<{ field: string; key: string; json: string }>;
    if (!meta.length && !contacts.length && !groups.length && !certs.length && !outbox.length && !dedupe.length && !keyed.length) return undefined;
    const s: ClientSnapshot = { version: CLIENT_STATE_VERSION, contacts: [], groups: [], certs: {}, outbox: [], dedupe: [] };
    const top = s as unknown as Record<string, unknown>;
    for (const r of meta) this.use('meta', r.key, () => {
      const v = parseJson(r.json);
      checkMeta(r.key, v);
      if (!(r.key in s)) top[r.key] = v;
    });
    for (const r of contacts) this.use('contacts', r.petname, () => s.contacts.push(checkContact(parseJson(r.json), r.petname, r.fingerprint)));
    for (const r of groups) this.use('chat_groups', r.id, () => s.groups.push(checkGroup(parseJson(r.json), r.id)));
    for (const r of certs) this.use('certs', r.fingerprint, () => {
      checkCert(r.fingerprint, r.cert);
      s.certs[r.fingerprint] = r.cert;
    });
    for (const r of outbox) this.use('outbox', r.id, () => s.outbox.push(checkOutbox(parseJson(r.json), r.id)));
    for (const r of dedupe) this.use('dedupe', r.key, () => {
      checkDedupeKey(r.key, r.at_ms, r.sent_at_ms);
      s.dedupe.push({ key: r.key, atMs: r.at_ms, ...(r.sent_at_ms !== null ? { sentAtMs: r.sent_at_ms } : {}) });
    });
    for (const r of keyed) this.use('keyed', `${r.field} ${r.key}`, () => {
      const v = checkKeyed(r.field, r.key, parseJson(r.json));
      const cur = top[r.field];
      // A map's rows win over a malformed value of the same name left in meta.
      if (typeof cur !== 'object' || cur === null || Array.isArray(cur)) top[r.field] = {};
      (top[r.field] as Record<string, unknown>)[r.key] = v;
    });
    return s;
  }

  commit(batch: StoreBatch): void {
    this.commitTx(batch);
  }

  history(q: HistoryQuery): HistoryEntry[] {
    const where: string[] = [];
    const args: unknown[] = [];
    if (q.contact !== undefined) {
      where.push('m.contact = ?');
      args.push(q.contact);
    }
    if (q.dir !== undefined) {
      where.push('m.dir = ?');
      args.push(q.dir);
    }
    if (q.beforeId !== undefined) {
      const r = this.st.msgSeqOf!.get(q.beforeId) as { seq: number } | undefined;
      where.push('m.seq < ?');
      args.push(r?.seq ?? 0);
    }
    let from = 'messages m';
    if (q.search !== undefined && q.search.trim() !== '') {
      if (this.fullText) {
        from = 'messages_fts f JOIN messages m ON m.seq = f.rowid';
        where.push('messages_fts MATCH ?');
        args.push(ftsPhrase(q.search));
      } else {
        where.push("m.text LIKE ? ESCAPE '\\'");
        args.push(`%${q.search.replace(/[\\%_]/g, (c) => `\\${c}`)}%`);
      }
    }
    const sql = `SELECT ${MESSAGE_COLUMNS} FROM ${from}${where.length ? ` WHERE ${where.join(' AND ')}` : ''} ORDER BY m.seq DESC LIMIT ?`;
    args.push(q.limit);
    const rows = this.db.prepare(sql).all(...args) as MessageRow[];
    const out: HistoryEntry[] = [];
    for (let i = rows.length - 1; i >= 0; i--) {
      const r = rows[i]!;
      this.use('messages', String(r.seq), () => out.push(checkMessage(r)));
    }
    return out;
  }

  deleteHistory(what: HistoryDeletion): number {
    const st = this.st;
    const r = 'contact' in what ? st.msgDelContact!.run(what.contact) : 'id' in what ? st.msgDelId!.run(what.id) : st.msgDelBefore!.run(Math.floor(what.beforeMs));
    return r.changes;
  }

  historyCount(dir?: 'in' | 'out'): number {
    const r = (dir === undefined ? this.st.count!.get() : this.st.countDir!.get(dir)) as { n: number };
    return r.n;
  }

  close(): void {
    if (this.db.open) this.db.close();
  }

  private apply(b: StoreBatch): void {
    const st = this.st;
    for (const [k, v] of b.meta) v === undefined ? st.metaDel!.run(k) : st.metaPut!.run(k, JSON.stringify(v));
    for (const [k, c] of b.contacts) c === undefined ? st.contactDel!.run(k) : st.contactPut!.run(k, c.fingerprint, JSON.stringify(c));
    for (const [k, g] of b.groups) g === undefined ? st.groupDel!.run(k) : st.groupPut!.run(k, JSON.stringify(g));
    for (const [k, c] of b.certs) c === undefined ? st.certDel!.run(k) : st.certPut!.run(k, c);
    for (const [k, m] of b.outbox) m === undefined ? st.outboxDel!.run(k) : st.outboxPut!.run(k, m.to, m.state, m.createdAtMs, JSON.stringify(m));
    for (const [k, d] of b.dedupe) d === undefined ? st.dedupeDel!.run(k) : st.dedupePut!.run(k, d.atMs, d.sentAtMs ?? null);
    for (const [f, k, v] of b.keyed) {
      // Deleted and added again: the row moves to the end, as the key does in the client's map.
      st.keyedDel!.run(f, k);
      if (v !== undefined) st.keyedAdd!.run(f, k, JSON.stringify(v));
    }
    for (const op of b.history) {
      if (op.op === 'state') {
        st.msgState!.run(op.state, op.reason ?? null, op.contact, op.id);
        continue;
      }
      const e = op.entry;
      const extra: Record<string, unknown> = {};
      if (e.fromName !== undefined) extra.fromName = e.fromName;
      if (e.fromPeer !== undefined) extra.fromPeer = e.fromPeer;
      if (e.group !== undefined) extra.group = e.group;
      st.msgAdd!.run(e.id, e.contact, e.dir, Math.floor(e.atMs), Math.floor(e.sentAtMs), e.text, e.state ?? null, e.reason ?? null,
        Object.keys(extra).length ? JSON.stringify(extra) : null);
    }
  }

  /** Run a row's checks; a row that fails is left out and reported. */
  private use(table: string, key: string, f: () => void): void {
    try {
      f();
    } catch (e) {
      if (!(e instanceof BadValue)) throw e;
      if (this.problems.length < STORE_PROBLEMS_MAX) {
        this.problems.push(`${this.file}: ${table} row ${JSON.stringify(key.slice(0, 80))} refused: ${e.message}; it is not used`);
      }
    }
  }
}

/** The words of `text` as one FTS5 phrase (quotes doubled), so no search text is taken as query syntax. */
function ftsPhrase(text: string): string {
  return `"${text.replace(/"/g, '""')}"`;
}
