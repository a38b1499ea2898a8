/**
 * The optional directory of a peer: display names that registered clients chose to publish,
 * listed in pages of DIRECTORY_PAGE_ENTRIES_MAX sorted by name, then fingerprint.
 *
 * The order is kept as changes come: a sorted array of entries, where a join or a leave finds its
 * place by binary search and moves the tail (a memmove of at most directoryMax pointers), and a
 * page is a slice. No sort ever runs, so the cost of a DIR_LIST does not depend on how many joins
 * came before it.
 *
 * Bounds (what happens at the bound):
 *   | name                   | default | at the bound                                              |
 *   |------------------------|---------|-----------------------------------------------------------|
 *   | directoryMax           | 10,000  | a join of a new name -> 'full' (BAD_REQUEST)              |
 *   | dirJoinIntervalMs      | 10 s    | a second join (or rename) by one client within it -> 'rate_limited' |
 *   | dirJoinsPerSecondMax   | 100     | joins of all clients per second, a token bucket with a burst of as many; beyond -> 'rate_limited' |
 * Leaving is never limited. The time of each client's last join is kept for dirJoinIntervalMs, so
 * that table holds at most dirJoinsPerSecondMax x dirJoinIntervalMs / 1000 entries (1,000).
 */
import { DIRECTORY_PAGE_ENTRIES_MAX } from '../protocol/constants.js';
import type { DirEntry } from '../protocol/messages.js';
import { keyBytes } from './keys.js';

// eslint-disable-next-line no-control-regex
const CONTROL_CHARS = /[\u0000-\u001f\u007f-\u009f\u2028\u2029]/;

export type JoinResult = 'ok' | 'bad_name' | 'full' | 'rate_limited';

export interface DirectoryLimits {
  directoryMax: number;
  dirJoinIntervalMs: number;
  dirJoinsPerSecondMax: number;
}

export const DIRECTORY_DEFAULTS: DirectoryLimits = {
  directoryMax: 10_000,
  dirJoinIntervalMs: 10_000,
  dirJoinsPerSecondMax: 100,
};

/** A listed name; `fp` is the fingerprint's latin1 key. */
interface Entry {
  readonly name: string;
  readonly fp: string;
}

/** Order by name, then fingerprint (UTF-16 code units, as `<` compares strings). */
function before(a: Entry, b: Entry): boolean {
  return a.name < b.name || (a.name === b.name && a.fp < b.fp);
}

export class Directory {
  private readonly byFp = new Map<string, Entry>();
  /** Every entry, in list order. */
  private readonly sorted: Entry[] = [];
  /** Fingerprint -> time of its last join, oldest first; entries older than dirJoinIntervalMs are pruned. */
  private readonly lastJoin = new Map<string, number>();
  private tokens: number;
  private tokensAt: number;
  readonly limits: Readonly<DirectoryLimits>;

  constructor(limits: Partial<DirectoryLimits> | number, now = 0) {
    const given = typeof limits === 'number' ? { directoryMax: limits } : limits;
    const l = { ...DIRECTORY_DEFAULTS };
    for (const k of Object.keys(l) as Array<keyof DirectoryLimits>) {
      const v = given[k] ?? l[k];
      if (!(Number.isInteger(v) && v >= 1)) throw new TypeError(`${k} must be a positive integer`);
      l[k] = v;
    }
    this.limits = l;
    this.tokens = l.dirJoinsPerSecondMax;
    this.tokensAt = now;
  }

  get size(): number {
    return this.byFp.size;
  }

  /** Publish (or rename) `fp` under `name`; the empty name leaves. */
  join(now: number, fp: string, name: string): JoinResult {
    if (name === '') {
      this.leave(fp);
      return 'ok';
    }
    if (CONTROL_CHARS.test(name) || name.trim() === '') return 'bad_name';
    const old = this.byFp.get(fp);
    if (old?.name === name) return 'ok';
    if (!old && this.byFp.size >= this.limits.directoryMax) return 'full';
    if (!this.takeJoin(now, fp)) return 'rate_limited';
    if (old) this.sorted.splice(this.indexOf(old), 1);
    const e: Entry = { name, fp };
    this.byFp.set(fp, e);
    this.sorted.splice(this.insertionPoint(e), 0, e);
    return 'ok';
  }

  leave(fp: string): void {
    const e = this.byFp.get(fp);
    if (!e) return;
    this.byFp.delete(fp);
    this.sorted.splice(this.indexOf(e), 1);
  }

  /** One page, or null when `page` is past the last one. There is always a page 0. */
  page(page: number): { page: number; pages: number; entries: DirEntry[] } | null {
    const pages = Math.max(1, Math.ceil(this.sorted.length / DIRECTORY_PAGE_ENTRIES_MAX));
    if (page >= pages) return null;
    const slice = this.sorted.slice(page * DIRECTORY_PAGE_ENTRIES_MAX, (page + 1) * DIRECTORY_PAGE_ENTRIES_MAX);
    return { page, pages, entries: slice.map((e) => ({ fingerprint: keyBytes(e.fp), name: e.name })) };
  }

  /** One join by `fp` now, within its interval and the global rate; recorded when allowed. */
  private takeJoin(now: number, fp: string): boolean {
    const { dirJoinIntervalMs, dirJoinsPerSecondMax } = this.limits;
    for (const [k, at] of this.lastJoin) {
      if (now - at < dirJoinIntervalMs) break;
      this.lastJoin.delete(k);
    }
    if (this.lastJoin.has(fp)) return false;
    if (now > this.tokensAt) {
      this.tokens = Math.min(dirJoinsPerSecondMax, this.tokens + ((now - this.tokensAt) * dirJoinsPerSecondMax) / 1000);
      this.tokensAt = now;
    }
    if (this.tokens < 1) return false;
    this.tokens -= 1;
    this.lastJoin.set(fp, now);
    return true;
  }

  /** First index whose entry is not before `e`. */
  private insertionPoint(e: Entry): number {
    let lo = 0;
    let hi = this.sorted.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (before(this.sorted[mid]!, e)) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  /** Index of an entry that is in the list. */
  private indexOf(e: Entry): number {
    const i = this.insertionPoint(e);
    if (this.sorted[i] !== e) throw new Error('directory order broken');
    return i;
  }
}
