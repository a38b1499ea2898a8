/** Peer addresses as the API takes them: `host:port` with a literal IP. */
import { parseAddr } from '../core/types.js';
import { UsageError } from '../core/errors.js';

export function parsePeerAddress(s: string, what = 'peer address'): { host: string; port: number } {
  const a = typeof s === 'string' ? parseAddr(s) : undefined;
  if (!a) throw new UsageError('PEERPOST_BAD_ADDRESS', `${what} must be HOST:PORT with a literal IP (like 127.0.0.1:7777), not "${String(s)}"`);
  return a;
}
