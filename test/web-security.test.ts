/**
 * The web page's security without a browser: the guard's verdicts (pure), then a real node with
 * its page on loopback, spoken to with raw HTTP and WebSocket requests: Host (DNS rebinding),
 * Origin, token (missing 401, wrong 403), the custom header on changes, the cookie's attributes,
 * the CSP and the other headers, the token file's mode, bounds on bodies; and the CLI's --web
 * with the link in the --json ready event.
 */
import t from 'tap';
import { request } from 'node:http';
import { statSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { WebSocket } from 'ws';
import { checkRequest, cookieName, isLoopback, type GuardConfig } from '../src/web/guard.js';
import { CONTENT_SECURITY_POLICY } from '../src/web/server.js';
import { WEB_BODY_BYTES_MAX } from '../src/web/api-routes.js';
import { WEB_TOKEN_FILE } from '../src/web/token.js';
import { startWebNode, type WebNode } from './helpers/web.js';
import { ChatProcess } from './helpers/chat-process.js';
import { tempDir } from './helpers/cli.js';

const TOKEN = 'k'.repeat(43);
const CFG: GuardConfig = { port: 7780, hosts: ['127.0.0.1', 'localhost', '[::1]'], token: TOKEN };
const COOKIE = `${cookieName(7780)}=${TOKEN}`;

t.test('guard: Host, Origin, token and the custom header, in that order', async (t) => {
  const v = (method: string, url: string, headers: Record<string, string>, upgrade = false) => checkRequest(CFG, { method, url, headers, upgrade });
  t.match(v('GET', '/api/contacts', { host: '127.0.0.1:7780', cookie: COOKIE }), { ok: true, tokenFromQuery: false });
  t.match(v('GET', '/api/contacts', { host: 'LOCALHOST:7780', cookie: COOKIE }), { ok: true });
  t.match(v('GET', '/api/contacts', { host: '[::1]:7780', cookie: COOKIE }), { ok: true });
  t.match(v('GET', '/api/contacts', { host: 'attacker.example:7780', cookie: COOKIE }), { ok: false, status: 403, code: 'PEERPOST_WEB_BAD_HOST' }, 'DNS rebinding');
  t.match(v('GET', '/api/contacts', { host: '127.0.0.1:7781', cookie: COOKIE }), { ok: false, code: 'PEERPOST_WEB_BAD_HOST' }, 'another port');
  t.match(v('GET', '/api/contacts', { cookie: COOKIE }), { ok: false, code: 'PEERPOST_WEB_BAD_HOST' }, 'no Host');
  t.match(v('GET', '/api/contacts', { host: '127.0.0.1:7780', origin: 'http://evil.example', cookie: COOKIE }), { ok: false, status: 403, code: 'PEERPOST_WEB_BAD_ORIGIN' });
  t.match(v('GET', '/api/contacts', { host: '127.0.0.1:7780', origin: 'http://127.0.0.1:9999', cookie: COOKIE }), { ok: false, code: 'PEERPOST_WEB_BAD_ORIGIN' }, 'same site, another origin');
  t.match(v('GET', '/api/contacts', { host: '127.0.0.1:7780', origin: 'null', cookie: COOKIE }), { ok: false, code: 'PEERPOST_WEB_BAD_ORIGIN' });
  t.match(v('GET', '/api/contacts', { host: '127.0.0.1:7780', origin: 'http://localhost:7780', cookie: COOKIE }), { ok: true });
  t.match(v('GET', '/api/contacts', { host: '127.0.0.1:7780', 'sec-fetch-site': 'cross-site', cookie: COOKIE }), { ok: false, code: 'PEERPOST_WEB_BAD_ORIGIN' });
  t.match(v('GET', '/api/events', { host: '127.0.0.1:7780', cookie: COOKIE }, true), { ok: false, code: 'PEERPOST_WEB_BAD_ORIGIN' }, 'the upgrade needs an Origin');
  t.match(v('GET', '/api/contacts', { host: '127.0.0.1:7780' }), { ok: false, status: 401, code: 'PEERPOST_WEB_NO_TOKEN' });
  t.match(v('GET', '/api/contacts', { host: '127.0.0.1:7780', cookie: `${cookieName(7780)}=${'x'.repeat(43)}` }), { ok: false, status: 403, code: 'PEERPOST_WEB_BAD_TOKEN' });
  t.match(v('GET', '/api/contacts', { host: '127.0.0.1:7780', cookie: `${cookieName(7781)}=${TOKEN}` }), { ok: false, status: 401 }, 'the cookie of another port');
  t.match(v('GET', '/api/contacts', { host: '127.0.0.1:7780', authorization: `Bearer ${TOKEN}` }), { ok: true });
  t.match(v('GET', `/api/contacts?token=${TOKEN}`, { host: '127.0.0.1:7780' }), { ok: false, status: 401 }, 'the query carries the token only for the page');
  t.match(v('GET', `/?token=${TOKEN}`, { host: '127.0.0.1:7780' }), { ok: true, tokenFromQuery: true });
  t.match(v('GET', `/?token=${TOKEN}`, { host: '127.0.0.1:7780', cookie: `${cookieName(7780)}=stale` }), { ok: true, tokenFromQuery: true }, 'a fresh link wins over a stale cookie');
  t.match(v('POST', '/api/send', { host: '127.0.0.1:7780', cookie: COOKIE }), { ok: false, status: 403, code: 'PEERPOST_WEB_NO_HEADER' });
  t.match(v('POST', '/api/send', { host: '127.0.0.1:7780', cookie: COOKIE, 'x-peerpost': '1' }), { ok: true });
  t.match(v('POST', '/api/send', { host: '127.0.0.1:7780', 'x-peerpost': '1' }), { ok: false, status: 401 });
  t.ok(isLoopback('127.0.0.1') && isLoopback('127.8.9.1') && isLoopback('::1') && isLoopback('[::1]') && isLoopback('localhost'));
  t.notOk(isLoopback('0.0.0.0') || isLoopback('192.168.1.2') || isLoopback('::') || isLoopback('128.0.0.1'));
});

interface Res {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

function http(w: WebNode, method: string, path: string, headers: Record<string, string> = {}, body?: string): Promise<Res> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port: w.web.port, method, path, headers: { host: `127.0.0.1:${w.web.port}`, ...headers } }, (res) => {
      let data = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => (data += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: data }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(body);
  });
}

function wsOutcome(w: WebNode, headers: Record<string, string>): Promise<string> {
  return new Promise((resolve) => {
    const ws = new WebSocket(`ws://127.0.0.1:${w.web.port}/api/events`, { headers });
    ws.on('unexpected-response', (_req, res) => {
      resolve(`refused ${res.statusCode ?? 0}`);
      ws.terminate();
    });
    ws.on('message', (d) => {
      resolve(`open ${String(d)}`);
      ws.close();
    });
    ws.on('error', (e) => resolve(`error ${e.message}`));
  });
}

t.test('a node and its page over HTTP', async (t) => {
  const w = await startWebNode('sec');
  t.teardown(() => w.close());
  const port = w.web.port;
  const auth = { cookie: `${cookieName(port)}=${w.web.token}` };
  const origin = `http://127.0.0.1:${port}`;

  t.test('the token file: this start\'s token, mode 0600', async (t) => {
    const file = join(w.home, WEB_TOKEN_FILE);
    t.equal(statSync(file).mode & 0o777, 0o600);
    t.equal(readFileSync(file, 'utf8').trim(), w.web.token);
    t.match(w.web.token, /^[A-Za-z0-9_-]{43}$/, '32 random bytes');
    t.equal(w.web.url, `${origin}/?token=${w.web.token}`);
  });

  t.test('the link sets an HttpOnly, SameSite=Strict cookie and sends the browser to /', async (t) => {
    const r = await http(w, 'GET', `/?token=${w.web.token}`);
    t.equal(r.status, 303);
    t.equal(r.headers.location, '/');
    const cookie = String(r.headers['set-cookie']);
    t.match(cookie, `${cookieName(port)}=${w.web.token}`);
    t.match(cookie, /HttpOnly/);
    t.match(cookie, /SameSite=Strict/);
  });

  t.test('every answer carries the CSP (no inline script) and the other headers', async (t) => {
    for (const [path, h] of [['/', auth], ['/app.js', auth], ['/api/contacts', auth], ['/api/contacts', {}], ['/nothing', auth]] as const) {
      const r = await http(w, 'GET', path, h);
      t.equal(r.headers['content-security-policy'], CONTENT_SECURITY_POLICY, `CSP on ${path}`);
      t.equal(r.headers['x-content-type-options'], 'nosniff');
      t.equal(r.headers['referrer-policy'], 'no-referrer');
      t.equal(r.headers['x-frame-options'], 'DENY');
    }
    t.notMatch(CONTENT_SECURITY_POLICY, /unsafe-inline|unsafe-eval|\*|http/);
    const page = await http(w, 'GET', '/', auth);
    t.equal(page.status, 200);
    t.notMatch(page.body.replace(/<script type="module" src="\/app.js"><\/script>/, ''), /<script/, 'the page has no inline script');
  });

  t.test('every /api/ request without the token gets 401 or 403', async (t) => {
    for (const [m, p] of [['GET', '/api/contacts'], ['GET', '/api/me'], ['GET', '/api/conversations'], ['GET', '/api/history?with=x'], ['GET', '/api/qr.svg'], ['POST', '/api/send'], ['POST', '/api/contacts']] as const) {
      const body = m === 'POST' ? '{}' : undefined;
      const none = await http(w, m, p, { 'x-peerpost': '1', 'content-type': 'application/json' }, body);
      t.equal(none.status, 401, `${m} ${p} without a token`);
      t.match(JSON.parse(none.body), { error: { code: 'PEERPOST_WEB_NO_TOKEN' } });
      const wrong = await http(w, m, p, { cookie: `${cookieName(port)}=${'A'.repeat(43)}`, 'x-peerpost': '1', 'content-type': 'application/json' }, body);
      t.equal(wrong.status, 403, `${m} ${p} with a wrong token`);
    }
    const ok = await http(w, 'GET', '/api/contacts', auth);
    t.equal(ok.status, 200);
    t.same(JSON.parse(ok.body), { contacts: [] });
    const bearer = await http(w, 'GET', '/api/me', { authorization: `Bearer ${w.web.token}` });
    t.equal(JSON.parse(bearer.body).address, w.node.address);
  });

  t.test('a foreign Host or Origin is refused, even with the token', async (t) => {
    const host = await http(w, 'GET', '/api/contacts', { ...auth, host: `rebound.example:${port}` });
    t.equal(host.status, 403);
    t.match(JSON.parse(host.body), { error: { code: 'PEERPOST_WEB_BAD_HOST' } });
    const page = await http(w, 'GET', '/', { ...auth, host: `rebound.example:${port}` });
    t.equal(page.status, 403, 'the page too');
    const org = await http(w, 'POST', '/api/send', { ...auth, origin: 'http://evil.example', 'x-peerpost': '1', 'content-type': 'application/json' }, JSON.stringify({ to: w.node.address, text: 'forged' }));
    t.equal(org.status, 403);
    t.match(JSON.parse(org.body), { error: { code: 'PEERPOST_WEB_BAD_ORIGIN' } });
    t.equal(w.node.history(undefined, { limit: 10 }).length, 0, 'nothing was sent');
  });

  t.test('a change needs the custom header and a JSON body', async (t) => {
    const body = JSON.stringify({ key: 'x' });
    const noHeader = await http(w, 'POST', '/api/read', { ...auth, 'content-type': 'application/json' }, body);
    t.equal(noHeader.status, 403);
    t.match(JSON.parse(noHeader.body), { error: { code: 'PEERPOST_WEB_NO_HEADER' } });
    const form = await http(w, 'POST', '/api/read', { ...auth, 'x-peerpost': '1', 'content-type': 'text/plain' }, body);
    t.equal(form.status, 415);
    const ok = await http(w, 'POST', '/api/read', { ...auth, 'x-peerpost': '1', 'content-type': 'application/json' }, body);
    t.equal(ok.status, 200);
    const big = await http(w, 'POST', '/api/read', { ...auth, 'x-peerpost': '1', 'content-type': 'application/json' }, JSON.stringify({ key: 'x'.repeat(WEB_BODY_BYTES_MAX) })).catch((e: Error) => ({ status: 413, body: e.message, headers: {} }));
    t.equal(big.status, 413, 'a body over the bound is refused');
    const bad = await http(w, 'POST', '/api/send', { ...auth, 'x-peerpost': '1', 'content-type': 'application/json' }, JSON.stringify({ to: 5, text: 'x' }));
    t.equal(bad.status, 400);
    t.match(JSON.parse(bad.body), { error: { code: 'PEERPOST_WEB_BAD_REQUEST' } });
    const unknown = await http(w, 'POST', '/api/send', { ...auth, 'x-peerpost': '1', 'content-type': 'application/json' }, JSON.stringify({ to: 'nobody', text: 'x' }));
    t.equal(unknown.status, 400);
    t.match(JSON.parse(unknown.body), { error: { code: 'PEERPOST_UNKNOWN_CONTACT' } }, 'the API\'s own error code');
  });

  t.test('the WebSocket upgrade checks Host, Origin and token', async (t) => {
    t.equal(await wsOutcome(w, { origin, ...auth }), 'open {"type":"hello"}');
    t.equal(await wsOutcome(w, { origin }), 'refused 401');
    t.equal(await wsOutcome(w, { origin, cookie: `${cookieName(port)}=${'B'.repeat(43)}` }), 'refused 403');
    t.equal(await wsOutcome(w, { origin: 'http://evil.example', ...auth }), 'refused 403');
    t.equal(await wsOutcome(w, { ...auth }), 'refused 403', 'no Origin');
    t.equal(await wsOutcome(w, { origin, ...auth, host: `rebound.example:${port}` }), 'refused 403');
  });
});

t.test('peerpost node --web-port 0 --json: the ready event carries the link, which opens the page', async (t) => {
  const tmp = tempDir('peerpost-web-cli-');
  t.teardown(tmp.cleanup);
  const home = join(tmp.dir, 'home');
  const p = ChatProcess.start(['node', '--home', home, '--port', '0', '--web-port', '0', '--json']);
  t.teardown(() => p.stop());
  const ready = await p.waitFor((e) => e.event === 'ready', 'ready');
  const web = String(ready.web);
  t.match(web, /^http:\/\/127\.0\.0\.1:\d+\/\?token=[A-Za-z0-9_-]{43}$/);
  const res = await fetch(web, { redirect: 'manual' });
  t.equal(res.status, 303);
  t.match(res.headers.get('set-cookie') ?? '', /HttpOnly; SameSite=Strict/);
  t.equal(readFileSync(join(home, WEB_TOKEN_FILE), 'utf8').trim(), new URL(web).searchParams.get('token'));
});

t.test('peerpost client --web-port 0 --json: the page of a client of a peer elsewhere', async (t) => {
  const tmp = tempDir('peerpost-web-client-');
  t.teardown(tmp.cleanup);
  const peer = ChatProcess.start(['node', '--home', join(tmp.dir, 'node'), '--port', '0', '--json']);
  t.teardown(() => peer.stop());
  const nodeReady = await peer.waitFor((e) => e.event === 'ready', 'the node ready');
  const peerAddr = String(nodeReady.address).split('@')[1]!;
  const c = ChatProcess.start(['client', '--home', join(tmp.dir, 'client'), '--peer', peerAddr, '--web-port', '0', '--json']);
  t.teardown(() => c.stop());
  const ready = await c.waitFor((e) => e.event === 'ready', 'the client ready');
  const web = new URL(String(ready.web));
  t.equal(web.hostname, '127.0.0.1');
  const token = web.searchParams.get('token')!;
  const me = await fetch(`${web.origin}/api/me`, { headers: { authorization: `Bearer ${token}` } });
  t.equal(me.status, 200);
  t.equal((await me.json() as { address: string }).address, ready.address);
  t.equal((await fetch(`${web.origin}/api/me`)).status, 401);
});
