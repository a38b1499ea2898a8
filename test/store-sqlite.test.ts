/**
 * The SQLite message store: schema and migrations, commits and reads, more than 1,000 messages of
 * history with paging, search and deletion, the import of a client-state.json written by the
 * previous release, damage, refused values, and the online backup while a writer is open.
 */
import t from 'tap';
import { copyFileSync, existsSync, mkdtempSync, openSync, readFileSync, readdirSync, closeSync, writeFileSync, writeSync, fstatSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import Database from 'better-sqlite3';
import { Peer } from '../src/api/peer.js';
import { emptyBatch, emptySnapshot, encodeText, type HistoryEntry, type StoreBatch } from '../src/client/index.js';
import { ChangeTracker } from '../src/client/changes.js';
import {
  SCHEMA_VERSION, STORE_FILE_NAME, LEGACY_STATE_FILE_NAME, MIGRATED_SUFFIX, backupStore, openStore, openStoreForReading, storePath,
} from '../src/store/index.js';

const FIXTURE = resolve(import.meta.dirname, 'fixtures', 'home-v1', 'client-state.json');
const FP = (c: string): string => c.repeat(64);
const ID = (n: number): string => n.toString(16).padStart(32, '0');

function home(): string {
  return mkdtempSync(join(tmpdir(), 'peerpost-store-'));
}

function received(n: number, contact: string, text: string, atMs = 1_000_000 + n): HistoryEntry {
  return { id: ID(n), contact, dir: 'in', atMs, sentAtMs: atMs - 5, text, fromPeer: '127.0.0.1:7777' };
}

function batchOf(entries: HistoryEntry[]): StoreBatch {
  return { ...emptyBatch(), history: entries.map((entry) => ({ op: 'add', entry })) };
}

const contact = (petname: string, fp: string) => ({ petname, fingerprint: fp, peer: '127.0.0.1:7777', verification: 'unverified' as const, changed: false, addedAtMs: 1 });

t.test('a new store: WAL, schema version, small state and outbox round-trip by key', async (t) => {
  const h = home();
  const s = openStore(h);
  t.equal(s.db.pragma('journal_mode', { simple: true }), 'wal');
  t.equal(s.db.pragma('user_version', { simple: true }), SCHEMA_VERSION);
  t.equal(s.load(), undefined, 'nothing saved yet');
  const out = { id: ID(7), to: FP('b'), toPeer: '127.0.0.1:7000', kind: 1, createdAtMs: 5, state: 'queued' as const, parts: [] };
  s.commit({
    ...emptyBatch(),
    meta: [['peerFingerprint', FP('c')], ['deliveryKey', 'ab'.repeat(32)]],
    contacts: [['bob', contact('bob', FP('b'))], ['eve', contact('eve', FP('e'))]],
    certs: [[FP('d'), '3082']],
    outbox: [[out.id, out]],
    dedupe: [[`${FP('b')}:${ID(1)}`, { atMs: 10, sentAtMs: 8 }]],
  });
  s.commit({ ...emptyBatch(), contacts: [['eve', undefined], ['bob', { ...contact('bob', FP('b')), verification: 'verified' }]] });
  s.close();
  const again = openStore(h);
  const snap = again.load()!;
  t.equal(snap.peerFingerprint, FP('c'));
  t.equal((snap as unknown as { deliveryKey: string }).deliveryKey, 'ab'.repeat(32), 'a new top-level field needs no migration');
  t.same(snap.contacts.map((c) => [c.petname, c.verification]), [['bob', 'verified']]);
  t.same(snap.certs, { [FP('d')]: '3082' });
  t.same(snap.outbox, [out]);
  t.same(snap.dedupe, [{ key: `${FP('b')}:${ID(1)}`, atMs: 10, sentAtMs: 8 }]);
  again.close();
});

t.test('a database of a newer schema is refused', async (t) => {
  const h = home();
  openStore(h).close();
  const db = new Database(storePath(h));
  db.pragma(`user_version = ${SCHEMA_VERSION + 1}`);
  db.close();
  t.throws(() => openStore(h), { code: 'PEERPOST_STORE_TOO_NEW' });
});

t.test('history: 1,500 messages kept, newest first by limit, paging, search, state updates, deletion', async (t) => {
  const s = openStore(home());
  const bob = FP('b');
  const eve = FP('e');
  const list: HistoryEntry[] = [];
  for (let i = 0; i < 1500; i++) list.push(received(i, i % 3 === 0 ? eve : bob, i === 700 ? 'the Blue whale swims' : `message ${i}`));
  s.commit(batchOf(list));
  s.commit(batchOf([{ id: ID(9999), contact: bob, dir: 'out', atMs: 2e6, sentAtMs: 2e6, text: 'sent blue', state: 'queued' }]));
  s.commit({ ...emptyBatch(), history: [{ op: 'state', id: ID(9999), contact: bob, state: 'failed', reason: 'expired' }] });
  t.equal(s.historyCount(), 1501, 'more than 1,000 messages stay');
  t.equal(s.historyCount('in'), 1500);
  const last = s.history({ contact: bob, limit: 20 });
  t.equal(last.length, 20);
  t.match(last.at(-1), { id: ID(9999), dir: 'out', state: 'failed', reason: 'expired' }, 'newest last, with its state');
  t.ok(last.every((e) => e.contact === bob));
  const older = s.history({ contact: bob, limit: 20, beforeId: last[0]!.id });
  t.equal(older.length, 20);
  t.ok(older.at(-1)!.atMs < last[0]!.atMs, 'the page before');
  t.same(s.history({ limit: 10, search: 'blue' }).map((e) => e.text), ['the Blue whale swims', 'sent blue'], 'full-text search, any case');
  t.same(s.history({ limit: 10, search: 'whale" OR "message' }).map((e) => e.id), [], 'quotes and operators are text, not query syntax');
  t.same(s.history({ limit: 10, search: '"whale' }).map((e) => e.id), [ID(700)], 'a lone quote is harmless');
  t.same(s.history({ limit: 10, search: 'blue whale' }).map((e) => e.id), [ID(700)]);
  t.equal(s.deleteHistory({ id: ID(700) }), 1);
  t.same(s.history({ limit: 10, search: 'whale' }), [], 'deleted from the search index too');
  t.equal(s.deleteHistory({ contact: eve }), 500);
  t.equal(s.deleteHistory({ beforeMs: 1_000_000 + 100 }), 66, 'by age');
  t.equal(s.historyCount(), 1501 - 1 - 500 - 66);
  s.commit(batchOf([received(5, bob, 'a duplicate add is ignored')]));
  t.equal(s.historyCount(), 1501 - 1 - 500 - 66 + 1, 'a message deleted can come back; a present one is not added twice');
  s.commit(batchOf([received(6, bob, 'again')]));
  s.commit(batchOf([received(6, bob, 'again')]));
  t.equal(s.history({ limit: 10, search: 'again' }).length, 1, 'the same message id from the same contact is kept once');
  s.close();
});

t.test('the client-state.json of the previous release is imported once, in one transaction, and kept as .migrated', async (t) => {
  const h = home();
  copyFileSync(FIXTURE, join(h, LEGACY_STATE_FILE_NAME));
  const old = JSON.parse(readFileSync(FIXTURE, 'utf8'));
  const s = openStore(h);
  t.notOk(existsSync(join(h, LEGACY_STATE_FILE_NAME)), 'the JSON file moved away');
  t.ok(existsSync(join(h, LEGACY_STATE_FILE_NAME + MIGRATED_SUFFIX)), 'kept as client-state.json.migrated');
  const snap = s.load()!;
  t.same(snap.contacts, old.contacts, 'contacts');
  t.same(snap.groups, old.groups, 'groups');
  t.same(snap.outbox, old.outbox, 'outbox');
  t.same(snap.dedupe, old.dedupe, 'dedupe entries');
  t.equal(snap.peerFingerprint, old.peerFingerprint, 'pinned peer');
  const hist = s.history({ limit: 100 });
  t.same(hist.map((e) => e.text), old.inbox.map((m: { text: string }) => m.text), 'received messages in the history');
  t.same(hist.map((e) => e.fromName), old.inbox.map((m: { fromName?: string }) => m.fromName));
  s.close();
  // A crash after the import and before the rename: the next start renames, without a second import.
  copyFileSync(join(h, LEGACY_STATE_FILE_NAME + MIGRATED_SUFFIX), join(h, LEGACY_STATE_FILE_NAME));
  const again = openStore(h);
  t.equal(again.historyCount(), old.inbox.length, 'not imported twice');
  t.notOk(existsSync(join(h, LEGACY_STATE_FILE_NAME)));
  again.close();
});

t.test('a JSON file with a queued text keeps it in the history; a broken one is refused and left in place', async (t) => {
  const h = home();
  const old = JSON.parse(readFileSync(FIXTURE, 'utf8'));
  // A message waiting for its recipient's certificate: its body is still there.
  const body = Buffer.from(encodeText({ text: 'still here' })).toString('hex');
  old.outbox.push({ id: ID(42), to: FP('f'), toPeer: '127.0.0.1:9', kind: 1, createdAtMs: 9e12, state: 'queued', reason: 'certificate-pending', body, parts: [] });
  writeFileSync(join(h, LEGACY_STATE_FILE_NAME), JSON.stringify(old));
  const s = openStore(h);
  t.match(s.history({ contact: FP('f'), limit: 5 }), [{ id: ID(42), dir: 'out', text: 'still here', state: 'queued' }]);
  s.close();
  const h2 = home();
  writeFileSync(join(h2, LEGACY_STATE_FILE_NAME), '{"version":1,"contacts":[');
  t.throws(() => openStore(h2), { code: 'PEERPOST_CLIENT_STATE_BROKEN' });
  t.ok(existsSync(join(h2, LEGACY_STATE_FILE_NAME)), 'left in place');
  t.throws(() => openStoreForReading(h2), { code: 'PEERPOST_CLIENT_STATE_BROKEN' }, 'readers read the JSON file until it is imported');
});

t.test('a damaged database gives one line naming the file, what works and how to restore', async (t) => {
  const h = home();
  const s = openStore(h);
  const many: HistoryEntry[] = [];
  for (let i = 0; i < 3000; i++) many.push(received(i, FP('b'), `text ${i} `.repeat(20)));
  s.commit(batchOf(many));
  s.db.pragma('wal_checkpoint(TRUNCATE)');
  s.close();
  const file = storePath(h);
  const fd = openSync(file, 'r+');
  const size = fstatSync(fd).size;
  const junk = Buffer.alloc(8192, 0x5a);
  for (let at = 4096 * 3; at < size - 8192; at += 4096 * 7) writeSync(fd, junk, 0, junk.length, at);
  closeSync(fd);
  const err = t.throws(() => openStore(h), { code: 'PEERPOST_STORE_DAMAGED' }) as unknown as Error;
  t.match(err.message, file, 'names the file');
  t.match(err.message, /identity/, 'says what still works');
  t.match(err.message, /peerpost backup/, 'says how to restore');
  t.notMatch(err.message, /\n/, 'one line');
  t.throws(() => openStoreForReading(h), { code: 'PEERPOST_STORE_DAMAGED' }, 'also for readers');
  const h2 = home();
  writeFileSync(join(h2, STORE_FILE_NAME), 'this is not a database at all, just text'.repeat(200));
  t.throws(() => openStore(h2), { code: 'PEERPOST_STORE_DAMAGED' });
});

t.test('values that are not well formed are refused when read, with the reason, and not used', async (t) => {
  const h = home();
  const s = openStore(h);
  s.commit({
    ...emptyBatch(),
    contacts: [['bob', contact('bob', FP('b'))], ['eve', contact('eve', FP('e'))]],
    meta: [['peerFingerprint', FP('c')]],
    certs: [[FP('d'), '3082']],
  });
  s.commit(batchOf([received(1, FP('b'), 'ok'), received(2, FP('b'), 'bad one')]));
  s.db.prepare("UPDATE contacts SET json = json_set(json, '$.fingerprint', 'not-a-fingerprint'), fingerprint = 'not-a-fingerprint' WHERE petname = 'eve'").run();
  s.db.prepare("UPDATE meta SET json = '\"xyz\"' WHERE key = 'peerFingerprint'").run();
  s.db.prepare("UPDATE certs SET cert = 'zz' WHERE 1").run();
  s.db.prepare("UPDATE messages SET contact = 'nope' WHERE id = ?").run(ID(2));
  s.close();
  const r = openStore(h);
  const snap = r.load()!;
  t.same(snap.contacts.map((c) => c.petname), ['bob'], 'the bad contact is not used');
  t.equal(snap.peerFingerprint, undefined, 'the bad pinned fingerprint is not used');
  t.same(snap.certs, {}, 'the bad certificate is not used');
  t.same(r.history({ limit: 10 }).map((e) => e.text), ['ok'], 'the bad message is not shown');
  t.equal(r.problems.length, 4);
  t.match(r.problems.join('\n'), /contacts row "eve" refused: its fingerprint is not 64 lowercase hex digits/);
  t.match(r.problems.join('\n'), /messages row "2" refused: its contact is not a 64-hex fingerprint/);
  t.match(r.problems[0], storePath(h), 'names the file');
  r.close();
});

t.test('backup: a consistent copy while a writer is open, and an existing file is not overwritten', async (t) => {
  const h = home();
  const s = openStore(h);
  const list: HistoryEntry[] = [];
  for (let i = 0; i < 2000; i++) list.push(received(i, FP('b'), `m ${i}`));
  s.commit(batchOf(list));
  s.commit({ ...emptyBatch(), contacts: [['bob', contact('bob', FP('b'))]] });
  const dest = join(home(), 'backup.db');
  const done = backupStore(h, dest);
  s.commit(batchOf([received(5000, FP('b'), 'written while the backup runs')]));
  const r = await done;
  t.equal(r.file, dest);
  t.ok(r.messages === 2000 || r.messages === 2001, `a consistent copy (${r.messages} messages)`);
  s.close();
  // Restore: the copy takes the place of the store.
  const h2 = home();
  copyFileSync(dest, join(h2, STORE_FILE_NAME));
  const restored = openStore(h2);
  t.same(restored.load()!.contacts.map((c) => c.petname), ['bob']);
  t.ok(restored.historyCount() >= 2000);
  restored.close();
  await t.rejects(backupStore(h, dest), { code: 'PEERPOST_BACKUP_EXISTS' });
  await t.rejects(backupStore(home(), join(home(), 'x.db')), { code: 'PEERPOST_NO_STORE' });
});

t.test('a reader sees what the writer committed, while the writer stays open', async (t) => {
  const h = home();
  const w = openStore(h);
  w.commit({ ...emptyBatch(), contacts: [['bob', contact('bob', FP('b'))]] });
  w.commit(batchOf([received(1, FP('b'), 'first')]));
  const r = openStoreForReading(h)!;
  t.same(r.history({ limit: 5 }).map((e) => e.text), ['first']);
  w.commit(batchOf([received(2, FP('b'), 'second')]));
  t.same(r.history({ limit: 5 }).map((e) => e.text), ['first', 'second'], 'a new read sees the new commit');
  t.throws(() => (r as unknown as { commit(b: StoreBatch): void }).commit(batchOf([received(3, FP('b'), 'x')])), /readonly/i, 'a reader cannot write');
  r.close();
  w.close();
});

t.test('the peer stays RAM-only: a peer writes no store, and the store has only client tables', async (t) => {
  const h = home();
  const peer = await Peer.start({ host: '127.0.0.1', port: 0, home: h, summaryIntervalMs: 0 });
  await peer.close();
  t.same(readdirSync(h).sort(), ['cert.pem', 'key.pem'], 'a peer keeps nothing but its identity');
  const s = openStore(home());
  const tables = (s.db.prepare("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'messages_fts%' AND name NOT LIKE 'sqlite_%' ORDER BY name").all() as Array<{ name: string }>).map((r) => r.name);
  t.same(tables, ['certs', 'chat_groups', 'contacts', 'dedupe', 'keyed', 'messages', 'meta', 'outbox', 'store_info']);
  s.close();
});

t.test('a database of schema version 1 is migrated to the current version, keeping its rows', async (t) => {
  const h = home();
  openStore(h).close();
  // Make it what version 1 was: no sending time in the dedupe entries.
  const db = new Database(storePath(h));
  db.exec('ALTER TABLE dedupe DROP COLUMN sent_at_ms');
  db.exec('DROP TABLE keyed');
  db.pragma('user_version = 1');
  db.prepare('INSERT INTO dedupe (key, at_ms) VALUES (?, ?)').run(`${FP('b')}:${ID(1)}`, 10);
  // Maps among the top-level fields were one JSON value each before version 3.
  db.prepare('INSERT INTO meta (key, json) VALUES (?, ?)').run('peerFingerprint', JSON.stringify(FP('e')));
  db.prepare('INSERT INTO meta (key, json) VALUES (?, ?)').run('ratchetSeen', JSON.stringify({ [ID(5)]: `${FP('c')} 127.0.0.1:7777`, [ID(4)]: `${FP('d')} 127.0.0.1:7777 r` }));
  db.prepare('INSERT INTO meta (key, json) VALUES (?, ?)').run('cardsAcked', JSON.stringify({ [FP('c')]: 5 }));
  db.close();
  const s = openStore(h);
  t.equal(s.db.pragma('user_version', { simple: true }), SCHEMA_VERSION, 'migrated');
  const loaded = s.load()!;
  t.same(loaded.dedupe, [{ key: `${FP('b')}:${ID(1)}`, atMs: 10 }], 'the old row kept');
  t.same(Object.entries(loaded.ratchetSeen!), [[ID(5), `${FP('c')} 127.0.0.1:7777`], [ID(4), `${FP('d')} 127.0.0.1:7777 r`]], 'a map kept, in its order');
  t.same(loaded.cardsAcked, { [FP('c')]: 5 });
  t.equal(loaded.peerFingerprint, FP('e'), 'other top-level fields stay as they were');
  t.same((s.db.prepare('SELECT key FROM meta ORDER BY key').all() as Array<{ key: string }>).map((r) => r.key), ['peerFingerprint'], 'the maps left meta');
  t.equal((s.db.prepare('SELECT count(*) AS n FROM keyed').get() as { n: number }).n, 3, 'one row per key');
  s.commit({ ...emptyBatch(), dedupe: [[`${FP('b')}:${ID(2)}`, { atMs: 11, sentAtMs: 9 }]] });
  t.same(s.load()!.dedupe.at(-1), { key: `${FP('b')}:${ID(2)}`, atMs: 11, sentAtMs: 9 }, 'the new column is used');
  s.close();
});

t.test('the maps among the top-level fields are written a key at a time, in their order, and refused per row when damaged', async (t) => {
  const h = home();
  const s = openStore(h);
  const seen: Record<string, string> = {};
  for (let i = 0; i < 1000; i++) seen[ID(i)] = `${FP('c')} 127.0.0.1:7777`;
  const snap = { ...emptySnapshot(), ratchetSeen: seen, ratchets: { [FP('c')]: { s: 'ab', start: '' } } };
  const tracker = new ChangeTracker(emptySnapshot());
  const first = tracker.take(snap, true);
  t.equal(first.keyed.length, 1001, 'everything the first time');
  s.commit(first);
  tracker.committed();
  // One push opened and the session moved on: two rows, no meta, nothing serialized of the rest.
  snap.ratchetSeen[ID(1000)] = `${FP('d')} 127.0.0.1:7777 r`;
  delete snap.ratchetSeen[ID(0)];
  snap.ratchets[FP('c')] = { s: 'cd', start: '' };
  const next = tracker.take(snap, true);
  t.same(next.meta, [], 'no top-level value written whole');
  t.same(next.keyed.map(([f, k, v]) => [f, k, v === undefined]).sort(), [
    ['ratchetSeen', ID(0), true], ['ratchetSeen', ID(1000), false], ['ratchets', FP('c'), false],
  ].sort(), 'only the keys that changed');
  s.commit(next);
  tracker.committed();
  t.same(tracker.take(snap, true).keyed, [], 'nothing when nothing changed');
  // A key set again moves to the end, as in the map (the first keys are the first forgotten).
  delete snap.ratchetSeen[ID(1)];
  snap.ratchetSeen[ID(1)] = `${FP('e')} 127.0.0.1:7777`;
  s.commit(tracker.take(snap, true));
  tracker.committed();
  s.close();
  const again = openStore(h);
  const loaded = again.load()!;
  t.same(Object.keys(loaded.ratchetSeen!), Object.keys(snap.ratchetSeen), 'reloaded in the same order');
  t.same(loaded.ratchets, snap.ratchets);
  // A damaged row is refused with a line naming it; the others are used.
  again.db.prepare("UPDATE keyed SET json = '\"nothex!\"' WHERE field = 'ratchetSeen' AND key = ?").run(ID(2));
  const damaged = again.load()!;
  t.equal(Object.keys(damaged.ratchetSeen!).length, Object.keys(snap.ratchetSeen).length - 1, 'the damaged row left out');
  t.match(again.problems.at(-1), /keyed row "ratchetSeen [0-9a-f]{32}" refused: its value does not start with a fingerprint; it is not used/);
  again.close();
});

t.test('a committed value of a keyed map is frozen: changing it in place throws instead of going unsaved', async (t) => {
  const snap = { ...emptySnapshot(), ratchets: { [FP('c')]: { s: 'ab', start: '' } } };
  const tracker = new ChangeTracker(snap);
  t.throws(() => {
    snap.ratchets[FP('c')]!.s = 'cd';
  }, TypeError, 'a loaded record');
  snap.ratchets[FP('d')] = { s: 'ef', start: '' };
  t.equal(tracker.take(snap, true).keyed.length, 1);
  tracker.committed();
  t.throws(() => {
    snap.ratchets[FP('d')]!.start = 'x';
  }, TypeError, 'a committed record');
});

t.test('a map\'s rows are used even when a malformed value of the same name is left in meta', async (t) => {
  const s = openStore(home());
  s.db.prepare('INSERT INTO meta (key, json) VALUES (?, ?)').run('caps', '5');
  s.db.prepare('INSERT INTO keyed (field, key, json) VALUES (?, ?, ?)').run('caps', FP('c'), JSON.stringify('ab'.repeat(36)));
  t.same(s.load()!.caps, { [FP('c')]: 'ab'.repeat(36) });
  s.close();
});
