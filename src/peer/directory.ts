/**
 * The optional directory of a peer: display names that registered clients chose to publish,
 * listed in pages of DIRECTORY_PAGE_ENTRIES_MAX sorted by name, then fingerprint. Bounded by
 * `directoryMax` names; a join beyond it is refused (BAD_REQUEST "directory is full").
 */
import { DIRECTORY_PAGE_ENTRIES_MAX } from '../protocol/constants.js';
import type { DirEntry } from '../protocol/messages.js';
import { keyBytes } from './keys.js';

// eslint-disable-next-line no-control-regex
const CONTROL_CHARS = /[\u0000-\u001f\u007f-\u009f\u2028\u2029]/;

export type JoinResult = 'ok' | 'bad_name' | 'full';

export class Directory {
  private readonly names = new Map<string, string>();
  private sorted: Array<[string, string]> | null = null;

  constructor(readonly directoryMax: number) {}

  get size(): number {
    return this.names.size;
  }

  /** Publish (or rename) `fp` under `name`; the empty name leaves. */
  join(fp: string, name: string): JoinResult {
    if (name === '') {
      this.leave(fp);
      return 'ok';
    }
    if (CONTROL_CHARS.test(name) || name.trim() === '') return 'bad_name';
    if (!this.names.has(fp) && this.names.size >= this.directoryMax) return 'full';
    this.names.set(fp, name);
    this.sorted = null;
    return 'ok';
  }

  leave(fp: string): void {
    if (this.names.delete(fp)) this.sorted = null;
  }

  /** One page, or null when `page` is past the last one. There is always a page 0. */
  page(page: number): { page: number; pages: number; entries: DirEntry[] } | null {
    if (!this.sorted) {
      this.sorted = [...this.names].sort(([fa, na], [fb, nb]) => (na < nb ? -1 : na > nb ? 1 : fa < fb ? -1 : fa > fb ? 1 : 0));
    }
    const pages = Math.max(1, Math.ceil(this.sorted.length / DIRECTORY_PAGE_ENTRIES_MAX));
    if (page >= pages) return null;
    const slice = this.sorted.slice(page * DIRECTORY_PAGE_ENTRIES_MAX, (page + 1) * DIRECTORY_PAGE_ENTRIES_MAX);
    return { page, pages, entries: slice.map(([fp, name]) => ({ fingerprint: keyBytes(fp), name })) };
  }
}
