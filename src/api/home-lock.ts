/**
 * One running peerpost process per home folder. The client state file is rewritten as a whole on
 * every change, so two processes on one home would lose each other's updates, and each would move
 * the other's registration to its own address. The lock is a file `lock` holding the owner's pid,
 * created exclusively; a lock whose pid is not running is stale and taken over.
 */
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { checkHome } from '../identity/home.js';
import { join } from 'node:path';
import { PeerpostError } from '../core/errors.js';

export const LOCK_FILE_NAME = 'lock';

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

export interface HomeLock {
  release(): void;
}

export function lockHome(home: string): HomeLock {
  checkHome(home);
  const file = join(home, LOCK_FILE_NAME);
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      writeFileSync(file, `${process.pid}\n`, { flag: 'wx', mode: 0o600 });
      let released = false;
      return {
        release() {
          if (released) return;
          released = true;
          try {
            if (readFileSync(file, 'utf8').trim() === String(process.pid)) rmSync(file, { force: true });
          } catch {
            // already gone
          }
        },
      };
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') {
        throw new PeerpostError('PEERPOST_HOME_UNWRITABLE', `cannot create ${file}: ${(e as Error).message}`, { cause: e });
      }
      let pid = NaN;
      try {
        pid = Number.parseInt(readFileSync(file, 'utf8'), 10);
      } catch {
        // unreadable or vanished: treat as stale
      }
      if (Number.isInteger(pid) && pid > 0 && pid !== process.pid && alive(pid)) {
        throw new PeerpostError(
          'PEERPOST_HOME_BUSY',
          `another peerpost process (pid ${pid}) is using ${home}; use that one, stop it, or pass another --home`,
        );
      }
      rmSync(file, { force: true });
    }
  }
  throw new PeerpostError('PEERPOST_HOME_BUSY', `cannot take the lock ${file}`);
}
