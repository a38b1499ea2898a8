/**
 * A ClientStore in one JSON file, the format of the client state before the SQLite store
 * (src/store/): kept to read and migrate such a file (readJsonState) and as the baseline of the
 * benchmark. Every commit rewrites the whole file, history included: it writes a temporary file
 * next to it, flushes it to disk and renames it over the old one, so the file is always either the
 * previous good state or the new one. A broken file is refused with PeerpostError
 * PEERPOST_CLIENT_STATE_BROKEN naming it, and left in place for the user to inspect.
 *
 * File: the snapshot fields (version 1) plus `history` (HistoryEntry[]); a file written before
 * the history existed has `inbox` (InboxEntry[]) instead, read as received messages.
 */
import { closeSync, fsyncSync, mkdirSync, openSync, readFileSync, renameSync, rmSync, writeSync } from 'node:fs';
import { dirname } from 'node:path';
import { randomBytes } from 'node:crypto';
import { PeerpostError } from '../core/errors.js';
import { snapshotProblem, topLevelRows, type ClientSnapshot, type ClientStore, type HistoryDeletion, type HistoryEntry, type HistoryQuery, type InboxEntry, type StoreBatch } from './store.js';
import { MemoryClientStore } from './store-memory.js';

/** What a JSON state file holds: the small state and the history. */
export interface JsonState {
  snapshot: ClientSnapshot;
  history: HistoryEntry[];
}

/** Reads a JSON client state file; undefined when there is none. */
export function readJsonState(path: string): JsonState | undefined {
  const raw = readRaw(path);
  if (raw === undefined) return undefined;
  const { history, inbox, ...rest } = raw as Record<string, unknown>;
  const snapshot = rest as unknown as ClientSnapshot;
  if (history !== undefined && !Array.isArray(history)) throw broken(path, 'field history is not a list');
  if (inbox !== undefined && !Array.isArray(inbox)) throw broken(path, 'field inbox is not a list');
  const entries: HistoryEntry[] = Array.isArray(history) ? (history as HistoryEntry[]) : [];
  if (!Array.isArray(history) && Array.isArray(inbox)) {
    for (const m of inbox as InboxEntry[]) {
      entries.push({
        id: m.id, contact: m.from, dir: 'in', atMs: m.receivedAtMs, sentAtMs: m.sentAtMs, text: m.text,
        ...(m.fromName !== undefined ? { fromName: m.fromName } : {}), fromPeer: m.fromPeer, ...(m.group ? { group: m.group } : {}),
      });
    }
  }
  return { snapshot, history: entries };
}

function readRaw(path: string): unknown {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new PeerpostError('PEERPOST_CLIENT_STATE_UNREADABLE', `cannot read client state ${path}: ${(e as Error).message}`, { cause: e });
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (e) {
    throw broken(path, `not JSON (${(e as Error).message})`, e);
  }
  const problem = snapshotProblem(value);
  if (problem) throw broken(path, problem);
  return value;
}

export class FileClientStore implements ClientStore {
  private readonly mem = new MemoryClientStore();

  constructor(readonly path: string) {
    const st = readJsonState(path);
    if (!st) return;
    const { version: _v, contacts, groups, certs, outbox, dedupe, ...meta } = st.snapshot;
    void _v;
    this.mem.commit({
      ...topLevelRows(meta), contacts: contacts.map((c) => [c.petname, c]), groups: groups.map((g) => [g.id, g]),
      certs: Object.entries(certs), outbox: outbox.map((m) => [m.id, m]),
      dedupe: dedupe.map((d) => [d.key, { atMs: d.atMs, ...(d.sentAtMs !== undefined ? { sentAtMs: d.sentAtMs } : {}) }]),
      history: st.history.map((entry) => ({ op: 'add', entry })),
    });
  }

  load(): ClientSnapshot | undefined {
    return this.mem.load();
  }

  commit(batch: StoreBatch): void {
    this.mem.commit(batch);
    this.write();
  }

  history(q: HistoryQuery): HistoryEntry[] {
    return this.mem.history(q);
  }

  deleteHistory(what: HistoryDeletion): number {
    const n = this.mem.deleteHistory(what);
    if (n > 0) this.write();
    return n;
  }

  historyCount(dir?: 'in' | 'out'): number {
    return this.mem.historyCount(dir);
  }

  private write(): void {
    const snap = this.mem.load();
    this.save({ ...snap!, history: this.mem.history({ limit: Number.MAX_SAFE_INTEGER }) } as unknown as ClientSnapshot);
  }

  private save(snapshot: ClientSnapshot): void {
    mkdirSync(dirname(this.path), { recursive: true, mode: 0o700 });
    // A random name created exclusively (O_EXCL): a symlink planted at the name is never followed.
    const tmp = `${this.path}.tmp-${process.pid}-${randomBytes(6).toString('hex')}`;
    const fd = openSync(tmp, 'wx', 0o600);
    try {
      writeSync(fd, JSON.stringify(snapshot));
      fsyncSync(fd);
    } catch (e) {
      closeSync(fd);
      rmSync(tmp, { force: true });
      throw new PeerpostError('PEERPOST_CLIENT_STATE_WRITE', `cannot write client state ${this.path}: ${(e as Error).message}`, { cause: e });
    }
    closeSync(fd);
    renameSync(tmp, this.path);
  }
}

function broken(path: string, why: string, cause?: unknown): PeerpostError {
  return new PeerpostError(
    'PEERPOST_CLIENT_STATE_BROKEN',
    `client state file ${path} is broken: ${why}; it was left untouched (move it away to start with an empty state)`,
    { cause },
  );
}
