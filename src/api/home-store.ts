/**
 * The message store of a running Client or Node: opened under the home lock (src/store/open.ts),
 * its refused rows logged at warn level, and closed after the last commit when the home is released.
 */
import type { Logger } from '../core/types.js';
import { openStore, type SqliteClientStore } from '../store/index.js';
import type { HomeLock } from './home-lock.js';

export function openHomeStore(home: string): SqliteClientStore {
  return openStore(home);
}

/**
 * Once the client machine has loaded its state: log the rows it refused, and return the home's
 * release, which commits what is left, closes the store, then drops the lock.
 */
export function storeRelease(lock: HomeLock, store: SqliteClientStore, machine: { commit(): void }, logger: Logger): HomeLock {
  for (const p of store.problems) logger.warn({ problem: p }, 'message store row refused');
  store.problems.length = 0;
  let released = false;
  return {
    release() {
      if (released) return;
      released = true;
      try {
        machine.commit();
      } catch (e) {
        logger.error({ err: (e as Error).message }, 'last commit to the message store failed');
      }
      store.close();
      lock.release();
    },
  };
}
