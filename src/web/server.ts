/**
 * The local web page of a node or a client: a single-page chat served on loopback (node:http and
 * ws), talking to the same embedding API as the terminal chat (src/api Messenger) through the
 * small JSON endpoints of api-routes.ts and a WebSocket of live events (live-events.ts).
 *
 *   const web = await WebServer.start({ messenger: node, home, port: 0 });
 *   console.log(web.url);   // http://127.0.0.1:PORT/?token=...  (open it once; a cookie keeps the token)
 *   await web.close();
 *
 * Every request and the WebSocket upgrade pass guard.ts (Host, Origin, token, and the custom
 * header on changes) before anything else. Every answer carries a Content-Security-Policy with no
 * inline script and no source outside this server, and no-referrer, nosniff, no framing, no-store.
 * Files served: the page in src/web/static (read once at start, at most STATIC_FILES_MAX files)
 * and the one door for network text, dist/cli/safe-text.js, which the page imports as a module.
 * Listening on anything but loopback is the caller's explicit choice (--web-host); the CLI warns.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { readFileSync, readdirSync } from 'node:fs';
import { isIP } from 'node:net';
import { networkInterfaces } from 'node:os';
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';
import type { Duplex } from 'node:stream';
import { WebSocketServer } from 'ws';
import QRCode from 'qrcode';
import type { Messenger } from '../api/messenger.js';
import { PeerpostError, UsageError } from '../core/errors.js';
import { silentLogger, type Logger } from '../core/types.js';
import { checkRequest, cookieName, hostForHeader, isLoopback, LOOPBACK_HOSTS, type GuardConfig, type Verdict } from './guard.js';
import { ROUTES, WEB_BODY_BYTES_MAX, type RouteContext } from './api-routes.js';
import { LiveEvents } from './live-events.js';
import { newWebToken, saveWebToken } from './token.js';

export const WEB_PORT_DEFAULT = 7780;
export const WEB_HOST_DEFAULT = '127.0.0.1';
/** Files of src/web/static served; more is a packaging mistake and stops the start. */
export const STATIC_FILES_MAX = 32;
/** Largest WebSocket message accepted from a page (it sends none; anything closes the socket). */
export const WEB_SOCKET_PAYLOAD_MAX = 1024;

export const CONTENT_SECURITY_POLICY =
  "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; " +
  "base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

const SECURITY_HEADERS: Record<string, string> = {
  'content-security-policy': CONTENT_SECURITY_POLICY,
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
  'x-frame-options': 'DENY',
  'cross-origin-opener-policy': 'same-origin',
  'cross-origin-resource-policy': 'same-origin',
  'cache-control': 'no-store',
};

const TYPES: Record<string, string> = {
  html: 'text/html; charset=utf-8',
  js: 'text/javascript; charset=utf-8',
  css: 'text/css; charset=utf-8',
  svg: 'image/svg+xml',
};

export interface WebServerOptions {
  messenger: Messenger;
  /** Home folder: the token is saved there (web-token, mode 0600). */
  home: string;
  /** Address to listen on; default 127.0.0.1. */
  host?: string;
  /** TCP port; default 7780; 0 for any free port. */
  port?: number;
  logger?: Logger;
  /** Clock for read marks; default Date.now. */
  now?: () => number;
}

const PACKAGE_ROOT = fileURLToPath(new URL('../../', import.meta.url));

function loadStatic(): Map<string, { body: Buffer; type: string }> {
  const dir = join(PACKAGE_ROOT, 'src', 'web', 'static');
  const files = new Map<string, { body: Buffer; type: string }>();
  const names = readdirSync(dir).filter((n) => /^[a-z0-9-]+\.(html|js|css|svg)$/.test(n));
  if (names.length > STATIC_FILES_MAX) throw new PeerpostError('PEERPOST_WEB_STATIC', `more than ${STATIC_FILES_MAX} files in ${dir}`);
  for (const n of names) files.set(n === 'index.html' ? '/' : `/${n}`, { body: readFileSync(join(dir, n)), type: TYPES[n.split('.').pop()!]! });
  const safeText = join(PACKAGE_ROOT, 'dist', 'cli', 'safe-text.js');
  try {
    files.set('/safe-text.js', { body: readFileSync(safeText), type: TYPES.js! });
  } catch (e) {
    throw new PeerpostError('PEERPOST_WEB_STATIC', `cannot read ${safeText} (is the package built? npm run build): ${(e as Error).message}`, { cause: e });
  }
  return files;
}

/** Names that reach this server: loopback names, the bound address, every local address for 0.0.0.0 / ::. */
function hostNames(host: string): string[] {
  const names = new Set<string>([hostForHeader(host)]);
  if (isLoopback(host)) for (const h of LOOPBACK_HOSTS) names.add(h);
  if (host === '0.0.0.0' || host === '::') {
    for (const h of LOOPBACK_HOSTS) names.add(h);
    for (const list of Object.values(networkInterfaces())) for (const a of list ?? []) names.add(hostForHeader(a.address));
  }
  return [...names];
}

export class WebServer {
  private readonly live: LiveEvents;
  private readonly wss: WebSocketServer;
  private readonly guard: GuardConfig;
  private readonly ctx: RouteContext;
  private closing: Promise<void> | undefined;

  private constructor(
    private readonly server: Server,
    private readonly files: Map<string, { body: Buffer; type: string }>,
    private readonly log: Logger,
    m: Messenger,
    home: string,
    readonly token: string,
    readonly tokenFile: string,
    readonly host: string,
    readonly port: number,
    now: () => number,
  ) {
    const shown = host === '0.0.0.0' ? '127.0.0.1' : host === '::' ? '[::1]' : hostForHeader(host);
    this.origin = `http://${shown}:${port}`;
    this.url = `${this.origin}/?token=${token}`;
    this.guard = { port, hosts: hostNames(host), token };
    this.live = new LiveEvents(m);
    this.wss = new WebSocketServer({ noServer: true, maxPayload: WEB_SOCKET_PAYLOAD_MAX });
    this.ctx = { m, home, url: this.url, readMarks: new Map(), startedAtMs: now(), now };
    server.on('request', (req, res) => void this.onRequest(req, res));
    server.on('upgrade', (req, socket, head) => this.onUpgrade(req, socket, head));
  }

  /** `http://HOST:PORT` of the page. */
  readonly origin: string;
  /** The page's link with the token: print it once. */
  readonly url: string;

  static async start(opts: WebServerOptions): Promise<WebServer> {
    const host = opts.host ?? WEB_HOST_DEFAULT;
    if (isIP(host) === 0 && host !== 'localhost') throw new UsageError('PEERPOST_BAD_ADDRESS', `--web-host must be an IP address, not "${host}"`);
    const port = opts.port ?? WEB_PORT_DEFAULT;
    if (!Number.isInteger(port) || port < 0 || port > 65535) throw new UsageError('PEERPOST_BAD_PORT', `--web-port must be an integer from 0 to 65535, not ${String(port)}`);
    const files = loadStatic();
    const token = newWebToken();
    const tokenFile = await saveWebToken(opts.home, token);
    const server = createServer({ requestTimeout: 30_000, headersTimeout: 10_000 });
    await new Promise<void>((resolve, reject) => {
      const onError = (e: NodeJS.ErrnoException): void => {
        reject(e.code === 'EADDRINUSE'
          ? new UsageError('PEERPOST_WEB_PORT_IN_USE', `port ${port} on ${host} is in use: choose another with --web-port N (0 for any free port)`)
          : new PeerpostError('PEERPOST_WEB_LISTEN', `cannot listen on ${host}:${port} for the web page: ${e.message}`, { cause: e }));
      };
      server.once('error', onError);
      server.listen(port, host, () => {
        server.off('error', onError);
        resolve();
      });
    });
    const bound = server.address();
    const realPort = typeof bound === 'object' && bound ? bound.port : port;
    return new WebServer(server, files, opts.logger ?? silentLogger, opts.messenger, opts.home, token, tokenFile, host, realPort, opts.now ?? Date.now);
  }

  private verdict(req: IncomingMessage, upgrade = false): Verdict {
    return checkRequest(this.guard, { method: req.method ?? 'GET', url: req.url ?? '/', headers: req.headers, upgrade });
  }

  private send(res: ServerResponse, status: number, type: string, body: string | Buffer, extra: Record<string, string> = {}): void {
    res.writeHead(status, { ...SECURITY_HEADERS, 'content-type': type, ...extra });
    res.end(body);
  }

  private json(res: ServerResponse, status: number, data: unknown): void {
    this.send(res, status, 'application/json; charset=utf-8', JSON.stringify(data));
  }

  private async onRequest(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://x');
    const isApi = url.pathname.startsWith('/api/');
    const v = this.verdict(req);
    if (!v.ok) {
      this.log.warn({ code: v.code, path: url.pathname }, 'web request refused');
      if (isApi) this.json(res, v.status, { error: { code: v.code, message: v.message } });
      else this.send(res, v.status, 'text/plain; charset=utf-8', `peerpost: ${v.message}\n`);
      return;
    }
    if (v.tokenFromQuery) {
      // The token leaves the address bar: the cookie carries it from here on.
      const cookie = `${cookieName(this.port)}=${this.token}; HttpOnly; SameSite=Strict; Path=/`;
      this.send(res, 303, 'text/plain; charset=utf-8', '', { location: url.pathname, 'set-cookie': cookie });
      return;
    }
    try {
      if (isApi) await this.api(req, res, url);
      else this.staticFile(req, res, url.pathname);
    } catch (e) {
      if (e instanceof PeerpostError) this.json(res, 400, { error: { code: e.code, message: e.message } });
      else {
        this.log.error({ err: e }, 'web request failed');
        this.json(res, 500, { error: { code: 'PEERPOST_WEB_INTERNAL', message: 'unexpected error (see the log)' } });
      }
    }
  }

  private staticFile(req: IncomingMessage, res: ServerResponse, path: string): void {
    const f = this.files.get(path);
    if (!f || (req.method !== 'GET' && req.method !== 'HEAD')) {
      this.send(res, 404, 'text/plain; charset=utf-8', 'not found\n');
      return;
    }
    this.send(res, 200, f.type, req.method === 'HEAD' ? '' : f.body);
  }

  private async api(req: IncomingMessage, res: ServerResponse, url: URL): Promise<void> {
    if (req.method === 'GET' && url.pathname === '/api/qr.svg') {
      const svg = await QRCode.toString(this.ctx.m.address, { type: 'svg', errorCorrectionLevel: 'M', margin: 2 });
      this.send(res, 200, TYPES.svg!, svg);
      return;
    }
    const route = ROUTES[`${req.method ?? ''} ${url.pathname}`];
    if (!route) {
      this.json(res, 404, { error: { code: 'PEERPOST_WEB_NOT_FOUND', message: `no endpoint ${req.method ?? ''} ${url.pathname}` } });
      return;
    }
    let body: Record<string, unknown> = {};
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      const b = await readJsonBody(req);
      if (!b.ok) {
        this.json(res, b.status, { error: { code: b.code, message: b.message } });
        return;
      }
      body = b.body;
    }
    this.json(res, 200, await route(this.ctx, { query: url.searchParams, body }));
  }

  private onUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    const path = new URL(req.url ?? '/', 'http://x').pathname;
    const v = path === '/api/events' ? this.verdict(req, true) : ({ ok: false, status: 403, code: 'PEERPOST_WEB_NOT_FOUND', message: 'no such socket' } as const);
    if (!v.ok) {
      this.log.warn({ code: v.code }, 'web socket refused');
      socket.end(`HTTP/1.1 ${v.status} ${v.status === 401 ? 'Unauthorized' : 'Forbidden'}\r\nconnection: close\r\ncontent-type: text/plain\r\n\r\n${v.message}\n`);
      return;
    }
    this.wss.handleUpgrade(req, socket, head, (ws) => this.live.add(ws));
  }

  /** Stop listening, close the pages' sockets. */
  close(): Promise<void> {
    this.closing ??= new Promise<void>((resolve) => {
      this.live.close();
      this.wss.close();
      this.server.close(() => resolve());
      this.server.closeAllConnections();
    });
    return this.closing;
  }
}

type BodyResult = { ok: true; body: Record<string, unknown> } | { ok: false; status: 400 | 413 | 415; code: string; message: string };

/** A JSON object body of at most WEB_BODY_BYTES_MAX bytes. */
async function readJsonBody(req: IncomingMessage): Promise<BodyResult> {
  if (!(req.headers['content-type'] ?? '').startsWith('application/json')) {
    return { ok: false, status: 415, code: 'PEERPOST_WEB_BAD_REQUEST', message: 'the body must be JSON (content-type: application/json)' };
  }
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const c of req) {
    size += (c as Buffer).length;
    if (size > WEB_BODY_BYTES_MAX) {
      req.destroy();
      return { ok: false, status: 413, code: 'PEERPOST_WEB_TOO_LARGE', message: `the body is larger than ${WEB_BODY_BYTES_MAX} bytes` };
    }
    chunks.push(c as Buffer);
  }
  let v: unknown;
  try {
    v = JSON.parse(Buffer.concat(chunks).toString('utf8') || '{}');
  } catch {
    return { ok: false, status: 400, code: 'PEERPOST_WEB_BAD_REQUEST', message: 'the body is not valid JSON' };
  }
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return { ok: false, status: 400, code: 'PEERPOST_WEB_BAD_REQUEST', message: 'the body must be a JSON object' };
  return { ok: true, body: v as Record<string, unknown> };
}
