/**
 * The page's live feed: the Messenger's events, one JSON object per WebSocket message
 * (`{ "type": "delivery", "id": ..., "state": ... }`), to every open page. The page sends nothing
 * on this socket (anything it sends closes it). Bounds: WEB_SOCKETS_MAX open pages (the oldest is
 * closed for a new one); a page that reads too slowly (more than WEB_SOCKET_BUFFER_BYTES_MAX
 * waiting) is closed and reloads what it missed through /api/ when it reconnects.
 */
import type { WebSocket } from 'ws';
import type { Messenger, MessengerEvents } from '../api/messenger.js';

export const WEB_SOCKETS_MAX = 16;
export const WEB_SOCKET_BUFFER_BYTES_MAX = 1024 * 1024;
/** Close code sent to a page that fell behind or was replaced. */
export const WEB_SOCKET_CLOSE_BEHIND = 4000;

/** The events forwarded to the page. */
export const LIVE_EVENTS: ReadonlyArray<keyof MessengerEvents> = [
  'registered', 'peer-unavailable', 'peer-identity-changed', 'message', 'delivery', 'contact-changed', 'contact-cert',
  'group', 'rejected', 'verify-started', 'verify-code', 'verify-answer', 'verify-failed', 'verify-done',
];

export class LiveEvents {
  private readonly sockets = new Set<WebSocket>();
  private readonly listeners: Array<[string, (v: unknown) => void]> = [];

  constructor(private readonly m: Messenger) {
    for (const type of LIVE_EVENTS) {
      const f = (v: unknown): void => this.broadcast({ type, ...(v as object) });
      (m.on as (n: string, f: unknown) => void)(type, f);
      this.listeners.push([type, f]);
    }
  }

  add(ws: WebSocket): void {
    if (this.sockets.size >= WEB_SOCKETS_MAX) {
      const oldest = this.sockets.values().next().value!;
      this.sockets.delete(oldest);
      oldest.close(WEB_SOCKET_CLOSE_BEHIND, 'too many pages open');
    }
    this.sockets.add(ws);
    ws.on('message', () => ws.close(1003, 'this socket only sends'));
    ws.on('close', () => this.sockets.delete(ws));
    ws.on('error', () => this.sockets.delete(ws));
    ws.send(JSON.stringify({ type: 'hello' }));
  }

  private broadcast(event: Record<string, unknown>): void {
    const data = JSON.stringify(event, (_k, v: unknown) => (v instanceof Uint8Array ? Buffer.from(v).toString('hex') : v));
    for (const ws of this.sockets) {
      if (ws.bufferedAmount > WEB_SOCKET_BUFFER_BYTES_MAX) {
        this.sockets.delete(ws);
        ws.close(WEB_SOCKET_CLOSE_BEHIND, 'fell behind: reload');
        continue;
      }
      ws.send(data);
    }
  }

  close(): void {
    for (const [n, f] of this.listeners) (this.m.off as (n: string, f: unknown) => void)(n, f);
    for (const ws of this.sockets) ws.terminate();
    this.sockets.clear();
  }
}
