/**
 * A ClientStore in one JSON file. save() writes a temporary file next to it, flushes it to disk and
 * renames it over the old one, so the file is always either the previous good snapshot or the new
 * one. load() refuses a broken file with PeerpostError PEERPOST_CLIENT_STATE_BROKEN naming it, and
 * leaves it in place for the user to inspect.
 */
import { closeSync, fsyncSync, mkdirSync, openSync, readFileSync, renameSync, rmSync, writeSync } from 'node:fs';
import { dirname } from 'node:path';
import { randomBytes } from 'node:crypto';
import { PeerpostError } from '../core/errors.js';
import { snapshotProblem, type ClientSnapshot, type ClientStore } from './store.js';

export class FileClientStore implements ClientStore {
  constructor(readonly path: string) {}

  load(): ClientSnapshot | undefined {
    let text: string;
    try {
      text = readFileSync(this.path, 'utf8');
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw new PeerpostError('PEERPOST_CLIENT_STATE_UNREADABLE', `cannot read client state ${this.path}: ${(e as Error).message}`, { cause: e });
    }
    let value: unknown;
    try {
      value = JSON.parse(text);
    } catch (e) {
      throw broken(this.path, `not JSON (${(e as Error).message})`, e);
    }
    const problem = snapshotProblem(value);
    if (problem) throw broken(this.path, problem);
    return value as ClientSnapshot;
  }

  save(snapshot: ClientSnapshot): void {
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
