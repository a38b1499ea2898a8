/**
 * Who may talk to the local web page: the checks every HTTP request and the WebSocket upgrade pass
 * before anything else runs (pure functions: headers in, a verdict out).
 *
 *   1. Host     must name this server (`127.0.0.1:PORT`, `localhost:PORT`, `[::1]:PORT`, or the
 *               --web-host address): a page of another site that a DNS name rebinds to 127.0.0.1
 *               sends its own name and is refused (403 PEERPOST_WEB_BAD_HOST).
 *   2. Origin   when present, `http://` + one of those hosts; the WebSocket upgrade must carry one
 *               (browsers always send it). `Sec-Fetch-Site: cross-site` is refused too
 *               (403 PEERPOST_WEB_BAD_ORIGIN).
 *   3. Token    the random token of this start, from the cookie `peerpost-PORT` (HttpOnly,
 *               SameSite=Strict), an `Authorization: Bearer` header, or `?token=` on the page's
 *               own address (which then sets the cookie). Missing: 401 PEERPOST_WEB_NO_TOKEN;
 *               wrong: 403 PEERPOST_WEB_BAD_TOKEN. Compared in constant time.
 *   4. Header   a request that changes state (not GET or HEAD) must carry `X-Peerpost: 1`, which
 *               no form or simple cross-site request can set (403 PEERPOST_WEB_NO_HEADER).
 */
import { timingSafeEqual } from 'node:crypto';
import { isIP } from 'node:net';

/** The custom header a state-changing request must carry, and its value. */
export const WEB_ACTION_HEADER = 'x-peerpost';
export const WEB_ACTION_HEADER_VALUE = '1';

export interface GuardConfig {
  /** The port the server listens on (the Host and Origin carry it). */
  port: number;
  /** Host names or addresses that name this server, without the port (IPv6 in brackets). */
  hosts: readonly string[];
  token: string;
}

export interface GuardRequest {
  method: string;
  /** Path and query, as in the request line. */
  url: string;
  headers: Record<string, string | string[] | undefined>;
  /** The WebSocket upgrade: an Origin is required. */
  upgrade?: boolean;
}

export type Verdict =
  | { ok: true; /** The token came in the query: set the cookie. */ tokenFromQuery: boolean }
  | { ok: false; status: 401 | 403; code: string; message: string };

/** The cookie holding the token: one name per port, so two nodes on one machine keep theirs apart. */
export function cookieName(port: number): string {
  return `peerpost-${port}`;
}

/** The loopback names a local page is reached by. */
export const LOOPBACK_HOSTS: readonly string[] = ['127.0.0.1', 'localhost', '[::1]'];

/** True for an address on the loopback interface (127.0.0.0/8, ::1) or `localhost`. */
export function isLoopback(host: string): boolean {
  const h = host.replace(/^\[|\]$/g, '');
  if (h === 'localhost' || h === '::1') return true;
  return isIP(h) === 4 && h.startsWith('127.');
}

/** `host` as it appears in a Host header (IPv6 in brackets). */
export function hostForHeader(host: string): string {
  return isIP(host) === 6 ? `[${host}]` : host;
}

function header(req: GuardRequest, name: string): string | undefined {
  const v = req.headers[name];
  return Array.isArray(v) ? v[0] : v;
}

function deny(status: 401 | 403, code: string, message: string): Verdict {
  return { ok: false, status, code, message };
}

/** The value of cookie `name` in a Cookie header, or undefined. */
export function readCookie(cookieHeader: string | undefined, name: string): string | undefined {
  if (!cookieHeader) return undefined;
  for (const part of cookieHeader.split(';')) {
    const eq = part.indexOf('=');
    if (eq < 0) continue;
    if (part.slice(0, eq).trim() === name) return part.slice(eq + 1).trim();
  }
  return undefined;
}

function sameToken(given: string, token: string): boolean {
  const a = Buffer.from(given);
  const b = Buffer.from(token);
  return a.length === b.length && timingSafeEqual(a, b);
}

/** The verdict on one request: every check above, in that order. */
export function checkRequest(cfg: GuardConfig, req: GuardRequest): Verdict {
  const allowed = new Set(cfg.hosts.map((h) => `${h.toLowerCase()}:${cfg.port}`));
  const host = (header(req, 'host') ?? '').toLowerCase();
  if (!allowed.has(host)) return deny(403, 'PEERPOST_WEB_BAD_HOST', 'this page answers only to its own address (Host header refused)');

  const origin = header(req, 'origin');
  if (origin !== undefined) {
    const m = /^http:\/\/([^/]+)$/.exec(origin.toLowerCase());
    if (!m || !allowed.has(m[1]!)) return deny(403, 'PEERPOST_WEB_BAD_ORIGIN', 'requests from another site are refused (Origin header)');
  } else if (req.upgrade) {
    return deny(403, 'PEERPOST_WEB_BAD_ORIGIN', 'the live connection needs the Origin of this page');
  }
  if (header(req, 'sec-fetch-site') === 'cross-site') return deny(403, 'PEERPOST_WEB_BAD_ORIGIN', 'requests from another site are refused (Sec-Fetch-Site)');

  // A fresh link wins over a cookie left by an earlier start.
  let given: string | undefined;
  let tokenFromQuery = false;
  const q = new URL(req.url, 'http://x').searchParams.get('token');
  if (q !== null && req.method === 'GET' && !req.url.startsWith('/api/')) {
    given = q;
    tokenFromQuery = true;
  }
  given ??= readCookie(header(req, 'cookie'), cookieName(cfg.port));
  const auth = header(req, 'authorization');
  if (given === undefined && auth?.startsWith('Bearer ')) given = auth.slice(7).trim();
  if (given === undefined || given === '') return deny(401, 'PEERPOST_WEB_NO_TOKEN', 'open the link peerpost printed at start (it carries the token)');
  if (!sameToken(given, cfg.token)) return deny(403, 'PEERPOST_WEB_BAD_TOKEN', 'wrong token: open the link peerpost printed at this start');

  if (req.method !== 'GET' && req.method !== 'HEAD' && header(req, WEB_ACTION_HEADER) !== WEB_ACTION_HEADER_VALUE) {
    return deny(403, 'PEERPOST_WEB_NO_HEADER', `a request that changes something needs the header ${WEB_ACTION_HEADER}: ${WEB_ACTION_HEADER_VALUE}`);
  }
  return { ok: true, tokenFromQuery };
}
