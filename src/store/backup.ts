/**
 * `peerpost backup FILE`: a consistent copy of the message store made with SQLite's online backup
 * API through a read-only connection, so it works while a node writes to the store (WAL). The copy
 * is checked with `PRAGMA quick_check` before it is reported. An existing FILE is not overwritten.
 */
import { existsSync, renameSync, rmSync, statSync } from 'node:fs';
import { PeerpostError, UsageError } from '../core/errors.js';
import { openDb, storePath } from './open.js';

export interface BackupResult {
  file: string;
  bytes: number;
  messages: number;
}

export async function backupStore(home: string, dest: string): Promise<BackupResult> {
  const src = storePath(home);
  if (!existsSync(src)) throw new UsageError('PEERPOST_NO_STORE', `there is no message store in ${home} yet (start the node or client once)`);
  if (existsSync(dest)) throw new UsageError('PEERPOST_BACKUP_EXISTS', `${dest} exists; give a new file name`);
  const tmp = `${dest}.partial-${process.pid}`;
  const db = openDb(src, true);
  try {
    await db.backup(tmp);
  } catch (e) {
    rmSync(tmp, { force: true });
    throw new PeerpostError('PEERPOST_BACKUP_FAILED', `cannot write the backup ${dest}: ${(e as Error).message}`, { cause: e });
  } finally {
    db.close();
  }
  let messages: number;
  const copy = openDb(tmp, true);
  try {
    messages = (copy.prepare('SELECT count(*) AS n FROM messages').get() as { n: number }).n;
  } finally {
    copy.close();
  }
  renameSync(tmp, dest);
  return { file: dest, bytes: statSync(dest).size, messages };
}
