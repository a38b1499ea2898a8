/**
 * The home's message store for commands that only read (history, contacts list, code, send's
 * check of the recipient): a WAL reader that works while a node runs on the same home, without the
 * home lock. Rows the store refuses are printed as notes.
 */
import type { ClientSnapshot, ContactRecord } from '../client/index.js';
import { openStoreForReading, type ReadableStore } from '../store/index.js';
import type { CliContext } from './context.js';

export function withReadStore<T>(ctx: CliContext, f: (store: ReadableStore | undefined, snap: ClientSnapshot | undefined) => T): T {
  const store = openStoreForReading(ctx.home);
  try {
    const snap = store?.load();
    const r = f(store, snap);
    for (const p of store?.problems ?? []) ctx.note(`warning: ${p}`);
    return r;
  } finally {
    store?.close();
  }
}

/** The contact a petname or fingerprint names. */
export function findContact(snap: ClientSnapshot | undefined, ref: string): ContactRecord | undefined {
  return snap?.contacts.find((c) => c.petname === ref || c.fingerprint === ref);
}
