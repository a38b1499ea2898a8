/**
 * The web page in a real browser: Debian's chromium, headless, driven by puppeteer-core (one
 * browser for the whole file, a context per page). Two nodes on loopback, a page each: contacts
 * added in the page, a message each way with its state reaching delivered, hostile text shown as
 * text, unread counts, the code screen showing the same digits on both sides and the live check,
 * a reload keeping the history, your address with its QR code, groups; a wrong or missing token
 * and a page of another origin are refused. Screenshots of each screen go to SCREENSHOT_DIR.
 *
 * Without a chromium (CHROMIUM_PATH, default /usr/bin/chromium) the file is skipped, except under
 * CI, where it fails: .ci/run installs it.
 */
import t from 'tap';
import { existsSync, mkdirSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { join } from 'node:path';
import puppeteer, { type Browser, type BrowserContext, type Page } from 'puppeteer-core';
import { ROOT } from './helpers/cli.js';
import { startWebNode, type WebNode } from './helpers/web.js';

// Globals of the page in the functions run there (the tests are type-checked without the DOM library).
/* eslint-disable @typescript-eslint/no-explicit-any */
declare const document: any;
declare const window: any;
declare const WebSocket: any;
type HTMLImageElement = { complete: boolean; naturalWidth: number };

const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
export const SCREENSHOT_DIR = process.env.PEERPOST_SCREENSHOTS ?? join(ROOT, 'screenshots');
/** Longest wait for one thing to appear in a page. */
const WAIT_MS = 15_000;

if (!existsSync(CHROMIUM)) {
  if (process.env.CI) t.fail(`no chromium at ${CHROMIUM}: .ci/run installs Debian's chromium`);
  else t.plan(0, `no chromium at ${CHROMIUM} (apt-get install chromium, or set CHROMIUM_PATH)`);
} else {
  let browser: Browser;
  let a: WebNode;
  let b: WebNode;
  let ctxA: BrowserContext;
  let ctxB: BrowserContext;
  let pa: Page;
  let pb: Page;

  const shot = async (p: Page, name: string): Promise<void> => {
    await p.screenshot({ path: join(SCREENSHOT_DIR, `${name}.png`) as `${string}.png` });
  };
  const text = (p: Page, sel: string): Promise<string> => p.$eval(sel, (e) => e.textContent ?? '');
  const waitText = (p: Page, sel: string, want: string): Promise<unknown> =>
    p.waitForFunction((s: string, w: string) => [...document.querySelectorAll(s)].some((e: { textContent: string | null }) => (e.textContent ?? '').includes(w)), { timeout: WAIT_MS }, sel, want);

  t.before(async () => {
    mkdirSync(SCREENSHOT_DIR, { recursive: true });
    // Alice's messages to a fingerprint that her peer says does not exist fail after about 1 s (defaults: minutes).
    [a, b] = await Promise.all([startWebNode('alice', { unknownSenderGraceMs: 1000, certRetryMs: 500 }), startWebNode('bob')]);
    browser = await puppeteer.launch({
      executablePath: CHROMIUM,
      headless: true,
      args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage', '--no-first-run', '--no-default-browser-check'],
      defaultViewport: { width: 1100, height: 720 },
    });
    ctxA = await browser.createBrowserContext();
    ctxB = await browser.createBrowserContext();
    pa = await ctxA.newPage();
    pb = await ctxB.newPage();
  });

  t.teardown(async () => {
    await browser?.close();
    await Promise.all([a?.close(), b?.close()]);
  });

  const addContact = async (p: Page, address: string, name: string): Promise<void> => {
    await p.waitForSelector('#add-form', { timeout: WAIT_MS });
    await p.type('#add-address', address);
    await p.type('#add-name', name);
    await p.click('#add-submit');
    await p.waitForSelector('#add-result[data-ok="true"]', { timeout: WAIT_MS }).catch(async (e: Error) => {
      throw new Error(`${e.message}; the page says: ${await text(p, '#add-result').catch(() => '(nothing)')}`);
    });
  };

  const sendInPage = async (p: Page, msg: string): Promise<void> => {
    await p.waitForSelector('#composer', { timeout: WAIT_MS });
    await p.type('#text', msg);
    await p.click('#send-btn');
  };

  t.test('the link sets the cookie and leaves the address bar; a contact is added in the page', async (t) => {
    const res = await pa.goto(a.web.url);
    t.equal(res?.status(), 200);
    t.equal(pa.url(), `${a.web.origin}/`, 'the token is gone from the address bar');
    const cookies = await ctxA.cookies();
    const c = cookies.find((x) => x.name === `peerpost-${a.web.port}`);
    t.ok(c, 'the token cookie is set');
    t.equal(c?.httpOnly, true);
    t.equal(c?.sameSite, 'Strict');
    t.equal(await pa.evaluate(() => document.cookie), '', 'the page script cannot read the token');
    await pb.goto(b.web.url);
    await addContact(pa, b.node.address, 'bob');
    await shot(pa, 'add-contact');
    await addContact(pb, a.node.address, 'alice');
    t.same(a.node.contacts().map((x) => x.petname), ['bob']);
    t.same(b.node.contacts().map((x) => x.petname), ['alice']);
  });

  t.test('a message each way, states reaching delivered, unread counts', async (t) => {
    await pa.click(`#convs li[data-key="${b.node.fingerprint}"]`);
    await sendInPage(pa, 'hello bob');
    await pa.waitForSelector('#messages li.out .state[data-state="delivered"]', { timeout: WAIT_MS });
    t.equal(await text(pa, '#messages li.out .text'), 'hello bob');

    const unread = `#convs li[data-key="${a.node.fingerprint}"] .unread`;
    await pb.waitForSelector(unread, { timeout: WAIT_MS });
    t.equal(await text(pb, unread), '1', 'one unread message from alice');
    await shot(pb, 'conversations');
    await pb.click(`#convs li[data-key="${a.node.fingerprint}"]`);
    await waitText(pb, '#messages li.in .text', 'hello bob');
    t.equal(await pb.$(unread), null, 'opening the conversation reads it');

    await sendInPage(pb, 'hi alice');
    await pb.waitForSelector('#messages li.out .state[data-state="delivered"]', { timeout: WAIT_MS });
    await waitText(pa, '#messages li.in .text', 'hi alice');
    await shot(pa, 'conversation');
  });

  t.test('text from the network is shown as text, never as HTML', async (t) => {
    const hostile = [
      '<script>window.__pwned = 1</script>',
      '<img src=x onerror="window.__pwned = 2">',
      'title\u001b]0;owned\u0007 and \rerased',
      'invoice\u202Efdp.exe',
      'line one\nline two',
    ];
    for (const s of hostile) b.node.send('alice', s);
    await waitText(pa, '#messages li.in .text', 'line two');
    const shown = await pa.$$eval('#messages li.in .text', (els) => els.map((e) => e.textContent ?? ''));
    t.ok(shown.includes('<script>window.__pwned = 1</script>'), 'the script tag is shown as text');
    t.ok(shown.includes('<img src=x onerror="window.__pwned = 2">'), 'the img tag is shown as text');
    t.ok(shown.includes('title^[]0;owned^G and ^Merased'), 'control characters are made visible');
    t.ok(shown.includes('invoice<U+202E>fdp.exe'), 'the bidi override is made visible');
    t.ok(shown.includes('line one\nline two'), 'a line break stays a line break');
    t.equal(await pa.evaluate(() => (window as unknown as { __pwned?: number }).__pwned), undefined, 'nothing ran');
    t.equal(await pa.$$eval('#messages script, #messages img, #convs script, #convs img', (els) => els.length), 0, 'no element was made from network text');
    const raw = await pa.$eval('#messages', (e) => e.textContent ?? '');
    t.notMatch(raw, /[\u0000-\u0008\u000b-\u001f\u202a-\u202e\u2066-\u2069]/, 'no control character or bidi override reaches the page');
    await shot(pa, 'hostile-text');
  });

  t.test('the code screen shows the same digits on both sides, and the live check verifies', async (t) => {
    await pa.click('#codes-btn');
    await pb.click('#codes-btn');
    await pa.waitForSelector('#code-mine', { timeout: WAIT_MS });
    await pb.waitForSelector('#code-mine', { timeout: WAIT_MS });
    const ca = { mine: await text(pa, '#code-mine'), theirs: await text(pa, '#code-theirs'), number: await text(pa, '#safety-number') };
    const cb = { mine: await text(pb, '#code-mine'), theirs: await text(pb, '#code-theirs'), number: await text(pb, '#safety-number') };
    t.match(ca.mine, /^\d{6}$/);
    t.equal(ca.mine, cb.theirs);
    t.equal(ca.theirs, cb.mine);
    t.equal(ca.number.replace(/\s/g, '').length, 60);
    t.equal(ca.number, cb.number, 'the same 60-digit safety number on both sides');
    await shot(pa, 'codes');

    await pa.click('#verify-btn');
    await pa.waitForSelector('#live-code', { timeout: WAIT_MS });
    await pb.waitForSelector('#live-code', { timeout: WAIT_MS });
    t.equal(await text(pa, '#live-code'), await text(pb, '#live-code'), 'the same live code on both screens');
    await shot(pb, 'live-check');
    await pa.click('#live-yes');
    await pb.click('#live-yes');
    await pa.waitForSelector('#live-result.ok', { timeout: WAIT_MS });
    await pb.waitForSelector('#live-result.ok', { timeout: WAIT_MS });
    t.equal(a.node.contacts()[0]?.verification, 'verified');
    t.equal(b.node.contacts()[0]?.verification, 'verified');
  });

  t.test('a reload keeps the history', async (t) => {
    await pa.reload();
    await pa.waitForSelector(`#convs li[data-key="${b.node.fingerprint}"]`, { timeout: WAIT_MS });
    await pa.click(`#convs li[data-key="${b.node.fingerprint}"]`);
    await waitText(pa, '#messages li .text', 'line two');
    const shown = await pa.$$eval('#messages li .text', (els) => els.map((e) => e.textContent ?? ''));
    t.ok(shown.includes('hello bob') && shown.includes('hi alice'), 'both messages are there after the reload');
    t.equal(await text(pa, '#verification'), 'verified');
    t.equal(await pa.$$eval('#messages li.out .state[data-state="delivered"]', (e) => e.length), 1);
  });

  t.test('your address with its QR code', async (t) => {
    await pa.click('#me-btn');
    await pa.waitForSelector('#my-address', { timeout: WAIT_MS });
    t.equal(await text(pa, '#my-address'), a.node.address);
    await pa.waitForFunction(() => (document.getElementById('qr') as HTMLImageElement | null)?.complete === true, { timeout: WAIT_MS });
    t.ok((await pa.$eval('#qr', (e) => (e as HTMLImageElement).naturalWidth)) > 0, 'the QR code image loaded');
    await shot(pa, 'me');
  });

  t.test('groups: made in the page, and a hostile group name from the network shown as text', async (t) => {
    await pa.click('#group-btn');
    await pa.waitForSelector('#group-form', { timeout: WAIT_MS });
    await pa.type('#group-name', 'friends');
    await pa.click('#group-form input[type="checkbox"][value="bob"]');
    await pa.click('#group-form button[type="submit"]');
    await sendInPage(pa, 'hi group');
    await pa.waitForSelector('#messages li.out .state[data-state="delivered"]', { timeout: WAIT_MS });
    await waitText(pb, '#convs li[data-kind="group"] .name', 'friends');
    await shot(pa, 'group');

    const evil = '<b>x</b>\u202Eevil\u001b[31m';
    const g = b.node.createGroup(evil, ['alice']);
    b.node.sendGroup(g, 'in the evil group');
    await waitText(pa, '#convs li[data-kind="group"] .preview', 'in the evil group');
    const names = await pa.$$eval('#convs li[data-kind="group"] .name', (els) => els.map((e) => e.textContent ?? ''));
    t.ok(names.includes('<b>x</b><U+202E>evil^[[31m'), `the group name is shown as text: ${JSON.stringify(names)}`);
    t.equal(await pa.$$eval('#convs b', (e) => e.length), 0);
  });

  t.test('a contact whose certificate cannot be found: the page says why, and a message to it fails with the reason', async (t) => {
    const ghost = `${'ab'.repeat(32)}@${a.node.address.split('@')[1]!}`;
    await pa.click('#add-btn');
    await pa.waitForSelector('#add-form', { timeout: WAIT_MS });
    await pa.type('#add-address', ghost);
    await pa.type('#add-name', 'ghost');
    await pa.click('#add-submit');
    await pa.waitForSelector('#add-result[data-ok="false"]', { timeout: WAIT_MS });
    t.match(await text(pa, '#add-result'), /could not be checked: certificate-not-found/);
    await shot(pa, 'add-contact-failed');
    await pa.click(`#convs li[data-key="${'ab'.repeat(32)}"]`);
    await sendInPage(pa, 'anyone?');
    const sel = '#messages li.out .state[data-state="failed"]';
    await pa.waitForSelector(sel, { timeout: WAIT_MS });
    t.equal(await text(pa, sel), 'failed (certificate-not-found)');
    await shot(pa, 'failed');
  });

  t.test('a message to a node that is down stays queued', async (t) => {
    await b.web.close();
    await b.node.close();
    await pa.click(`#convs li[data-key="${b.node.fingerprint}"]`);
    await sendInPage(pa, 'are you there?');
    await waitText(pa, '#messages li.out .text', 'are you there?');
    const states = await pa.$$eval('#messages li.out', (els) => els.map((e) => [e.querySelector('.text')?.textContent, e.querySelector('.state')?.getAttribute('data-state')]));
    t.same(states.at(-1), ['are you there?', 'queued']);
  });

  t.test('a wrong or missing token is refused; a page of another origin can do nothing', async (t) => {
    const ctx = await browser.createBrowserContext();
    try {
      const p = await ctx.newPage();
      const none = await p.goto(`${a.web.origin}/`);
      t.equal(none?.status(), 401, 'no token: 401');
      const wrong = await p.goto(`${a.web.origin}/?token=${'A'.repeat(43)}`);
      t.equal(wrong?.status(), 403, 'a wrong token: 403');
      t.match(await p.evaluate(() => document.body.textContent ?? ''), /wrong token/);
      const api = await p.goto(`${a.web.origin}/api/contacts`);
      t.equal(api?.status(), 401);
    } finally {
      await ctx.close();
    }

    // Another site on this machine (another port: same site for cookies, another origin) tries
    // to act with alice's cookie: a forged send, a read, and the live socket.
    const evil: Server = createServer((_req, res) => {
      res.writeHead(200, { 'content-type': 'text/html' });
      res.end('<!doctype html><title>elsewhere</title>');
    });
    await new Promise<void>((r) => evil.listen(0, '127.0.0.1', r));
    try {
      const port = (evil.address() as { port: number }).port;
      const p = await ctxA.newPage();
      await p.goto(`http://127.0.0.1:${port}/`);
      const outcome = await p.evaluate(async (target: string) => {
        const r: Record<string, string> = {};
        try {
          await fetch(`${target}/api/send`, { method: 'POST', mode: 'no-cors', credentials: 'include', headers: { 'content-type': 'text/plain' }, body: JSON.stringify({ to: 'bob', text: 'forged' }) });
          r.send = 'sent';
        } catch (e) {
          r.send = String(e);
        }
        try {
          const res = await fetch(`${target}/api/contacts`, { credentials: 'include' });
          r.read = `read ${res.status}`;
        } catch {
          r.read = 'blocked';
        }
        r.ws = await new Promise<string>((resolve) => {
          const ws = new WebSocket(`${target.replace('http', 'ws')}/api/events`);
          ws.onopen = () => resolve('open');
          ws.onerror = () => resolve('refused');
        });
        return r;
      }, a.web.origin);
      t.equal(outcome.read, 'blocked', 'the other origin cannot read');
      t.equal(outcome.ws, 'refused', 'the live socket refuses another origin');
      t.notOk(a.node.history('bob', { limit: 100 }).some((m) => m.text === 'forged'), 'the forged send did nothing');
      await p.close();
    } finally {
      await new Promise<void>((r) => evil.close(() => r()));
    }
  });
}
