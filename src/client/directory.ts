/**
 * Peer directories: DIR_LIST asks a peer (with its cookie) for one page of the clients listed
 * there, DIR_JOIN lists this client in its own peer's directory. A DIR_PAGE, or an ERROR
 * DIRECTORY_DISABLED or BAD_REQUEST, answers a request and is shown as a `directory` event.
 * Bound: one request per peer at a time, DIRECTORY_REQUESTS_MAX peers at once (listDirectory
 * throws PEERPOST_BUSY); a lost request is not retried.
 */
import { MsgType, WireError } from '../protocol/constants.js';
import type { DirPageMsg } from '../protocol/messages.js';
import { addrKey, parseAddr } from '../core/types.js';
import { UsageError } from '../core/errors.js';
import { hex, type ClientContext } from './context.js';
import type { PeerLink, PeerLinks } from './peer-links.js';

/** Peers with a directory request outstanding at once. */
export const DIRECTORY_REQUESTS_MAX = 16;

export class DirectoryRequests {
  /** Outstanding DIR_LIST per peer key: the page asked for. */
  private readonly pending = new Map<string, number>();

  constructor(private readonly ctx: ClientContext, private readonly links: PeerLinks) {}

  /** Ask the peer `peer` (default our own) for page `page` (see Client.listDirectory). */
  list(now: number, peer: string | undefined, page: number): void {
    const key = peer === undefined ? this.ctx.peerKey : peer;
    const addr = parseAddr(key);
    if (!addr) throw new UsageError('PEERPOST_BAD_ADDRESS', `peer address must be HOST:PORT, not "${key}"`);
    if (!Number.isInteger(page) || page < 0 || page > 0xffff) throw new UsageError('PEERPOST_BAD_OPTION', 'page must be 0..65535');
    if (!this.pending.has(addrKey(addr)) && this.pending.size >= DIRECTORY_REQUESTS_MAX) {
      throw new UsageError('PEERPOST_BUSY', `at most ${DIRECTORY_REQUESTS_MAX} directory requests at once`);
    }
    const link = this.links.use(now, addrKey(addr));
    this.pending.set(link.key, page);
    const cookie = this.links.cookieFor(now, link);
    if (cookie) this.ctx.send(link.addr, { type: MsgType.DIR_LIST, cookie, page });
  }

  /** List this client in its own peer's directory under `name` (empty: leave it). */
  join(name: string): void {
    this.ctx.sendToPeer({ type: MsgType.DIR_JOIN, name });
  }

  /** The cookie a request waited for has come. */
  cookieArrived(link: PeerLink, cookie: Uint8Array): void {
    const page = this.pending.get(link.key);
    if (page !== undefined) this.ctx.send(link.addr, { type: MsgType.DIR_LIST, cookie, page });
  }

  onPage(fromKey: string, m: DirPageMsg): void {
    if (!this.pending.delete(fromKey)) return void this.ctx.drops.add('unexpected_dir_page');
    this.ctx.emit({
      type: 'directory', peer: fromKey, page: m.page, pages: m.pages,
      entries: m.entries.map((e) => ({ name: e.name, fingerprint: hex(e.fingerprint), address: `${hex(e.fingerprint)}@${fromKey}` })),
    });
  }

  /** An ERROR without a reference: true if it answers a request to that peer. */
  onError(fromKey: string, code: number): boolean {
    if ((code !== WireError.DIRECTORY_DISABLED && code !== WireError.BAD_REQUEST) || !this.pending.delete(fromKey)) return false;
    this.ctx.emit({ type: 'directory', peer: fromKey, page: 0, pages: 0, entries: [], error: code === WireError.DIRECTORY_DISABLED ? 'disabled' : 'bad-request' });
    return true;
  }
}
