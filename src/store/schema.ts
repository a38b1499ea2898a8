/**
 * The schema of the client's SQLite store and its migrations. `PRAGMA user_version` is the
 * schema version; migrate() applies the missing steps in one transaction each, in order, and
 * refuses a database made by a newer version (PEERPOST_STORE_TOO_NEW).
 *
 * Records whose shape grows with new features (contacts, groups, the outbox, top-level client
 * fields) are one JSON text per row next to the key columns that are looked up, so a new optional
 * field needs no migration. What is queried or grows without bound has typed columns and indexes:
 * the history (`messages`, by contact and order, by time, full-text through FTS5 where the SQLite
 * build has it) and the dedupe entries. The maps among the top-level fields (KEYED_FIELDS) are
 * one row per key in `keyed`, in map order (rowid).
 */
import type { Database } from 'better-sqlite3';
import { PeerpostError } from '../core/errors.js';
import { KEYED_FIELDS } from '../client/store.js';

const V1 = `
CREATE TABLE store_info (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE meta (key TEXT PRIMARY KEY, json TEXT NOT NULL);
CREATE TABLE contacts (petname TEXT PRIMARY KEY, fingerprint TEXT NOT NULL, json TEXT NOT NULL);
CREATE INDEX contacts_fingerprint ON contacts (fingerprint);
CREATE TABLE chat_groups (id TEXT PRIMARY KEY, json TEXT NOT NULL);
CREATE TABLE certs (fingerprint TEXT PRIMARY KEY, cert TEXT NOT NULL);
CREATE TABLE outbox (
  id TEXT PRIMARY KEY,
  recipient TEXT NOT NULL,
  state TEXT NOT NULL,
  created_at_ms INTEGER NOT NULL,
  json TEXT NOT NULL
);
CREATE INDEX outbox_state ON outbox (state);
CREATE TABLE dedupe (key TEXT PRIMARY KEY, at_ms INTEGER NOT NULL);
CREATE TABLE messages (
  seq INTEGER PRIMARY KEY AUTOINCREMENT,
  id TEXT NOT NULL,
  contact TEXT NOT NULL,
  dir TEXT NOT NULL CHECK (dir IN ('in', 'out')),
  at_ms INTEGER NOT NULL,
  sent_at_ms INTEGER NOT NULL,
  text TEXT NOT NULL,
  state TEXT,
  reason TEXT,
  extra TEXT
);
CREATE UNIQUE INDEX messages_key ON messages (contact, dir, id);
CREATE INDEX messages_contact_seq ON messages (contact, seq);
CREATE INDEX messages_at ON messages (at_ms);
CREATE INDEX messages_id ON messages (id);
`;

const KEYED = `
CREATE TABLE keyed (field TEXT NOT NULL, key TEXT NOT NULL, json TEXT NOT NULL, PRIMARY KEY (field, key));
`;

const FTS = `
CREATE VIRTUAL TABLE messages_fts USING fts5 (text, content = 'messages', content_rowid = 'seq');
CREATE TRIGGER messages_fts_insert AFTER INSERT ON messages BEGIN
  INSERT INTO messages_fts (rowid, text) VALUES (new.seq, new.text);
END;
CREATE TRIGGER messages_fts_delete AFTER DELETE ON messages BEGIN
  INSERT INTO messages_fts (messages_fts, rowid, text) VALUES ('delete', old.seq, old.text);
END;
CREATE TRIGGER messages_fts_update AFTER UPDATE OF text ON messages BEGIN
  INSERT INTO messages_fts (messages_fts, rowid, text) VALUES ('delete', old.seq, old.text);
  INSERT INTO messages_fts (rowid, text) VALUES (new.seq, new.text);
END;
`;

/** Step n takes the schema from version n to n + 1. */
const MIGRATIONS: ReadonlyArray<(db: Database) => void> = [
  (db) => {
    db.exec(V1);
    // Full-text search where the SQLite build has FTS5 (better-sqlite3's has); LIKE otherwise.
    if (hasFts5(db)) db.exec(FTS);
  },
  // 2: a dedupe entry also keeps its message's sending time (the sender's dedupe floor).
  (db) => db.exec('ALTER TABLE dedupe ADD COLUMN sent_at_ms INTEGER'),
  // 3: the maps among the top-level fields (ratchet sessions, pushes opened through them,
  // capabilities, CARD receipts, dedupe floors) one row per key instead of one JSON value each,
  // which was written whole whenever one key changed. Rows in map order (rowid).
  (db) => {
    db.exec(KEYED);
    const move = db.prepare('INSERT INTO keyed (field, key, json) VALUES (?, ?, ?)');
    for (const field of KEYED_FIELDS) {
      const row = db.prepare('SELECT json FROM meta WHERE key = ?').get(field) as { json: string } | undefined;
      if (!row) continue;
      let v: unknown;
      try {
        v = JSON.parse(row.json);
      } catch {
        continue; // left in meta: load() reports it as it did
      }
      if (typeof v !== 'object' || v === null || Array.isArray(v)) continue;
      for (const [k, x] of Object.entries(v)) if (x !== undefined) move.run(field, k, JSON.stringify(x));
      db.prepare('DELETE FROM meta WHERE key = ?').run(field);
    }
  },
];

export const SCHEMA_VERSION = MIGRATIONS.length;

function hasFts5(db: Database): boolean {
  try {
    return db.prepare("SELECT 1 FROM pragma_compile_options WHERE compile_options = 'ENABLE_FTS5'").get() !== undefined;
  } catch {
    return false;
  }
}

/** The schema version of `db` (0 when new). */
export function schemaVersion(db: Database): number {
  return db.pragma('user_version', { simple: true }) as number;
}

/** Bring `db` to SCHEMA_VERSION; `file` names it in errors. */
export function migrate(db: Database, file: string): void {
  const from = schemaVersion(db);
  if (from > SCHEMA_VERSION) {
    throw new PeerpostError('PEERPOST_STORE_TOO_NEW', `message store ${file} has schema version ${from}, newer than this peerpost knows (${SCHEMA_VERSION}); update peerpost`);
  }
  for (let v = from; v < SCHEMA_VERSION; v++) {
    db.transaction(() => {
      MIGRATIONS[v]!(db);
      db.pragma(`user_version = ${v + 1}`);
    })();
  }
}

/** The store has the full-text index. */
export function hasFullText(db: Database): boolean {
  return db.prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'messages_fts'").get() !== undefined;
}
