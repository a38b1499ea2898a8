/**
 * Opening the client's message store in a home folder: `client.db` (SQLite, WAL mode,
 * synchronous=FULL so a commit is on disk before it returns).
 *
 *   openStore(home)            for the one process that holds the home lock: creates or migrates
 *                              the schema, and imports a JSON state file of an earlier version once
 *                              (client-state.json, in one transaction; the file is then renamed
 *                              client-state.json.migrated).
 *   openStoreForReading(home)  for commands that only read, while a node runs: a read-only
 *                              connection (a WAL reader never waits for the writer); a home not
 *                              migrated yet (its JSON file still there) is read from that file.
 *
 * Both run `PRAGMA quick_check` first. A damaged file gives PEERPOST_STORE_DAMAGED, one line that
 * names the file, says what still works and how to restore a backup (`peerpost backup FILE`).
 */
import { existsSync, mkdirSync, renameSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import type { Database as Db } from 'better-sqlite3';
import { PeerpostError } from '../core/errors.js';
import { readJsonState, FileClientStore } from '../client/store-file.js';
import { ContentKind, decodeText } from '../client/content.js';
import { topLevelRows, type ClientSnapshot, type ClientStore, type HistoryEntry, type StoreBatch } from '../client/store.js';
import { migrate, schemaVersion, SCHEMA_VERSION } from './schema.js';
import { SqliteClientStore } from './sqlite-store.js';

export const STORE_FILE_NAME = 'client.db';
export const LEGACY_STATE_FILE_NAME = 'client-state.json';
export const MIGRATED_SUFFIX = '.migrated';
/** How long a connection waits for another one's write lock before failing. */
export const STORE_BUSY_TIMEOUT_MS = 5000;

/** A store that only reads (load, history); the JSON one of a home not migrated yet, or SQLite. */
export interface ReadableStore extends Pick<ClientStore, 'load' | 'history' | 'historyCount'> {
  readonly problems: readonly string[];
  close(): void;
}

export function storePath(home: string): string {
  return join(home, STORE_FILE_NAME);
}

/** Open (creating, migrating, importing) the store of `home`; the caller holds the home lock. */
export function openStore(home: string): SqliteClientStore {
  mkdirSync(home, { recursive: true, mode: 0o700 });
  const file = storePath(home);
  const db = openDb(file, false);
  try {
    migrate(db, file);
    importLegacy(db, home, file);
    return new SqliteClientStore(db, file);
  } catch (e) {
    db.close();
    throw e;
  }
}

/** Open the store of `home` to read, without the lock; undefined when the home has none yet. */
export function openStoreForReading(home: string): ReadableStore | undefined {
  const file = storePath(home);
  const legacy = join(home, LEGACY_STATE_FILE_NAME);
  if (existsSync(legacy)) {
    // Not imported yet (the import renames it in the same start that commits it).
    const f = new FileClientStore(legacy);
    return { load: () => f.load(), history: (q) => f.history(q), historyCount: (d) => f.historyCount(d), problems: [], close: () => {} };
  }
  if (!existsSync(file)) return undefined;
  const db = openDb(file, true);
  const v = schemaVersion(db);
  if (v !== SCHEMA_VERSION) {
    db.close();
    if (v === 0) return undefined;
    throw new PeerpostError('PEERPOST_STORE_VERSION', `message store ${file} has schema version ${v}, this peerpost reads ${SCHEMA_VERSION}; start the node once to update it, or update peerpost`);
  }
  return new SqliteClientStore(db, file);
}

/** Open `file` and check it; a damaged one gives PEERPOST_STORE_DAMAGED. */
export function openDb(file: string, readonly: boolean): Db {
  let db: Db | undefined;
  try {
    db = new Database(file, { readonly, fileMustExist: readonly });
    db.pragma(`busy_timeout = ${STORE_BUSY_TIMEOUT_MS}`);
    if (!readonly) {
      db.pragma('journal_mode = WAL');
      db.pragma('synchronous = FULL');
    }
    const check = db.pragma('quick_check', { simple: true });
    if (check !== 'ok') throw damaged(file, String(check));
    return db;
  } catch (e) {
    db?.close();
    if (e instanceof PeerpostError) throw e;
    const code = (e as { code?: string }).code ?? '';
    if (code.startsWith('SQLITE_CORRUPT') || code.startsWith('SQLITE_NOTADB')) throw damaged(file, (e as Error).message, e);
    throw new PeerpostError('PEERPOST_STORE_UNREADABLE', `cannot open the message store ${file}: ${(e as Error).message}`, { cause: e });
  }
}

function damaged(file: string, why: string, cause?: unknown): PeerpostError {
  return new PeerpostError(
    'PEERPOST_STORE_DAMAGED',
    `message store ${file} is damaged (${why.split('\n')[0]}): your identity and \`peerpost peer\` still work, contacts, outbox and history do not; ` +
      `to restore a backup made with \`peerpost backup FILE\`, stop peerpost, copy it over ${file} and delete ${file}-wal and ${file}-shm (or move ${file} away to start with an empty store)`,
    { cause },
  );
}

/**
 * A client-state.json of an earlier version: imported in one transaction with a note in
 * store_info, then renamed. A crash between the two renames it at the next start, without
 * importing it twice.
 */
function importLegacy(db: Db, home: string, file: string): void {
  const legacy = join(home, LEGACY_STATE_FILE_NAME);
  if (!existsSync(legacy)) return;
  const done = db.prepare("SELECT value FROM store_info WHERE key = 'imported'").get() !== undefined;
  if (!done) {
    const st = readJsonState(legacy);
    if (!st) return;
    const store = new SqliteClientStore(db, file);
    db.transaction(() => {
      store.commit(legacyBatch(st.snapshot, st.history));
      db.prepare("INSERT INTO store_info (key, value) VALUES ('imported', ?)").run(JSON.stringify({ from: LEGACY_STATE_FILE_NAME }));
    })();
  }
  renameSync(legacy, legacy + MIGRATED_SUFFIX);
}

/** Everything of a JSON state as one batch; unsealed text messages of its outbox join the history. */
export function legacyBatch(snapshot: ClientSnapshot, history: HistoryEntry[]): StoreBatch {
  const { version: _v, contacts, groups, certs, outbox, dedupe, ...meta } = snapshot;
  void _v;
  const sent: HistoryEntry[] = [];
  for (const m of outbox) {
    if (m.kind !== ContentKind.TEXT || m.body === undefined) continue; // the text of a sealed message was not kept
    const t = decodeText(new Uint8Array(Buffer.from(m.body, 'hex')));
    if (!t) continue;
    sent.push({
      id: m.id, contact: m.to, dir: 'out', atMs: m.createdAtMs, sentAtMs: m.createdAtMs, text: t.text, state: m.state,
      ...(m.reason ? { reason: m.reason } : {}), ...(t.group ? { group: { id: t.group.id, name: t.group.name, members: [...t.group.members] } } : {}),
    });
  }
  const all = [...history, ...sent].sort((a, b) => a.atMs - b.atMs);
  return {
    ...topLevelRows(meta),
    contacts: contacts.map((c) => [c.petname, c]),
    groups: groups.map((g) => [g.id, g]),
    certs: Object.entries(certs),
    outbox: outbox.map((m) => [m.id, m]),
    dedupe: dedupe.map((d) => [d.key, { atMs: d.atMs, ...(d.sentAtMs !== undefined ? { sentAtMs: d.sentAtMs } : {}) }]),
    history: all.map((entry) => ({ op: 'add', entry })),
  };
}
