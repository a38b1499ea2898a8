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
  /** Script errors and refused requests of the two pages: a user would see none. */
  const troubles: string[] = [];

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
    for (const [who, p] of [['alice', pa], ['bob', pb]] as const) {
      p.on('pageerror', (e) => troubles.push(`${who}: script error: ${(e as Error).message}`));
      p.on('response', (r) => {
        if (r.status() >= 400) troubles.push(`${who}: ${r.status()} for ${r.url()}`);
      });
    }
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

  /**
   * Opens a conversation and waits until it is on screen (its history shown): the list is drawn
   * again whenever it changes, so the item is clicked where it is now, not where it was.
   */
  const openConv = async (p: Page, key: string): Promise<void> => {
    const item = `#convs li[data-key="${key}"]`;
    await p.waitForSelector(item, { timeout: WAIT_MS });
    await p.$eval(item, (e) => (e as unknown as { click(): void }).click());
    await p.waitForSelector(`#composer[data-key="${key}"]`, { timeout: WAIT_MS });
  };

  /** Sends in the conversation `key`, once its composer is the one on screen. */
  const sendInPage = async (p: Page, key: string, msg: string): Promise<void> => {
    await p.waitForSelector(`#composer[data-key="${key}"]`, { timeout: WAIT_MS });
    await p.type('#text', msg);
    await p.click('#send-btn');
  };

  /** Waits until the sent message `msg` is shown with the state `state`. */
  const waitState = (p: Page, msg: string, state: string): Promise<unknown> =>
    p.waitForFunction((m: string, st: string) => [...document.querySelectorAll('#messages li.out')].some((li: any) =>
      li.querySelector('.text')?.textContent === m && li.querySelector('.state')?.getAttribute('data-state') === st), { timeout: WAIT_MS }, msg, state)
      .catch(async (e: Error) => {
        const shown = await p.$$eval('#messages li.out', (els) => els.map((li) => `${li.querySelector('.text')?.textContent}: ${li.querySelector('.state')?.textContent}`)).catch(() => []);
        throw new Error(`${e.message}; "${msg}" is not ${state}; the page shows ${JSON.stringify(shown)}`);
      });

  /** The texts shown in the open conversation, of messages received ('in') or sent ('out'). */
  const shownTexts = (p: Page, dir: 'in' | 'out'): Promise<string[]> =>
    p.$$eval(`#messages li.${dir} .text`, (els) => els.map((e) => e.textContent ?? ''));

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
    await openConv(pa, b.node.fingerprint);
    await sendInPage(pa, b.node.fingerprint, 'hello bob');
    await waitState(pa, 'hello bob', 'delivered');
    t.same(await shownTexts(pa, 'out'), ['hello bob']);

    const unread = `#convs li[data-key="${a.node.fingerprint}"] .unread`;
    await pb.waitForSelector(unread, { timeout: WAIT_MS });
    t.equal(await text(pb, unread), '1', 'one unread message from alice');
    await shot(pb, 'conversations');
    await openConv(pb, a.node.fingerprint);
    t.same(await shownTexts(pb, 'in'), ['hello bob']);
    t.equal(await pb.$(unread), null, 'the conversation on screen shows no unread count');

    await sendInPage(pb, a.node.fingerprint, 'hi alice');
    await waitState(pb, 'hi alice', 'delivered');
    await waitText(pa, '#messages li.in .text', 'hi alice');
    t.same(await shownTexts(pa, 'in'), ['hi alice'], 'a message to the open conversation is shown once');
    await shot(pa, 'conversation');

    // Bob leaves the conversation: it stays read (the server's mark came before the list it shows).
    await pb.click('#me-btn');
    await pb.waitForSelector('#my-address', { timeout: WAIT_MS });
    await pb.waitForFunction((k: string) => (document.querySelector(`#convs li[data-key="${k}"] .preview`)?.textContent ?? '').includes('hi alice'), { timeout: WAIT_MS }, a.node.fingerprint);
    t.equal(await pb.$(unread), null, 'no unread count once read');
    const counts = await pb.evaluate(async () => ((await (await fetch('/api/conversations')).json()) as { conversations: Array<{ name: string; unread: number }> }).conversations.map((c) => `${c.name}:${c.unread}`));
    t.same(counts, ['alice:0'], 'the server counts it read too');
  });

  t.test('a message and a delivery state that come while a conversation loads are shown once, with the newest state', async (t) => {
    // Alice's answers to /api/history are held in the browser (after the server made them) until
    // the live event they miss has reached the page: the page must add that event on top.
    const cdp = await pa.createCDPSession();
    const held: string[] = [];
    let onHeld: (() => void) | undefined;
    cdp.on('Fetch.requestPaused', (e: { requestId: string }) => {
      held.push(e.requestId);
      onHeld?.();
    });
    const frames: string[] = [];
    let onFrame: (() => void) | undefined;
    cdp.on('Network.webSocketFrameReceived', (e: { response: { payloadData: string } }) => {
      frames.push(e.response.payloadData);
      onFrame?.();
    });
    const until = (what: string, ok: () => boolean, set: (f: (() => void) | undefined) => void): Promise<void> =>
      new Promise<void>((resolve, reject) => {
        if (ok()) return resolve();
        const timer = setTimeout(() => reject(new Error(`waited ${WAIT_MS} ms for ${what}`)), WAIT_MS);
        set(() => {
          if (!ok()) return;
          clearTimeout(timer);
          set(undefined);
          resolve();
        });
      });
    const release = async (): Promise<void> => {
      for (const id of held.splice(0)) await cdp.send('Fetch.continueRequest', { requestId: id });
    };
    try {
      await cdp.send('Network.enable');
      await cdp.send('Fetch.enable', { patterns: [{ urlPattern: '*/api/history*', requestStage: 'Response' }] });

      await pa.click('#me-btn');
      await pa.waitForSelector('#my-address', { timeout: WAIT_MS });
      await pa.$eval(`#convs li[data-key="${b.node.fingerprint}"]`, (e) => (e as unknown as { click(): void }).click());
      await until('the history answer', () => held.length > 0, (f) => { onHeld = f; });
      b.node.send('alice', 'while it loads');
      await until('the live message', () => frames.some((f) => f.includes('while it loads')), (f) => { onFrame = f; });
      await release();
      await pa.waitForSelector(`#composer[data-key="${b.node.fingerprint}"]`, { timeout: WAIT_MS });
      t.same(await shownTexts(pa, 'in'), ['hi alice', 'while it loads'], 'the message is shown, once');

      const seen = frames.length;
      await sendInPage(pa, b.node.fingerprint, 'sent while it loads');
      await until('the history answer after sending', () => held.length > 0, (f) => { onHeld = f; });
      await until('the delivered state', () => frames.slice(seen).some((f) => f.includes('"delivered"')), (f) => { onFrame = f; });
      await release();
      await waitState(pa, 'sent while it loads', 'delivered');
      t.same(await shownTexts(pa, 'out'), ['hello bob', 'sent while it loads']);
    } finally {
      await cdp.send('Fetch.disable').catch(() => undefined);
      await release().catch(() => undefined);
      await cdp.detach().catch(() => undefined);
    }
  });

  t.test('text from the network is shown as text, never as HTML', async (t) => {
    const hostile = [
      '<script>window.__pwned = 1</script>',
      '<img src=x onerror="window.__pwned = 2">',
      'title\u001b]0;owned\u0007 and \rerased',
      'invoice\u202Efdp.exe',
      'line one\nline two',
    ];
    const expected = [
      '<script>window.__pwned = 1</script>',
      '<img src=x onerror="window.__pwned = 2">',
      'title^[]0;owned^G and ^Merased',
      'invoice<U+202E>fdp.exe',
      'line one\nline two',
    ];
    for (const s of hostile) b.node.send('alice', s);
    // All five (the network may reorder them), each shown as its visible form.
    await pa.waitForFunction((want: string[]) => {
      const shown = [...document.querySelectorAll('#messages li.in .text')].map((e: { textContent: string | null }) => e.textContent ?? '');
      return want.every((w) => shown.includes(w));
    }, { timeout: WAIT_MS }, expected).catch(async (e: Error) => {
      throw new Error(`${e.message}; the page shows ${JSON.stringify(await shownTexts(pa, 'in'))}`);
    });
    const shown = await shownTexts(pa, 'in');
    t.ok(shown.includes('<script>window.__pwned = 1</script>'), 'the script tag is shown as text');
    t.ok(shown.includes('<img src=x onerror="window.__pwned = 2">'), 'the img tag is shown as text');
    t.ok(shown.includes('title^[]0;owned^G and ^Merased'), 'control characters are made visible');
    t.ok(shown.includes('invoice<U+202E>fdp.exe'), 'the bidi override is made visible');
    t.ok(shown.includes('line one\nline two'), 'a line break stays a line break');
    t.equal(shown.length, 2 + hostile.length, 'each message once');
    t.equal(await pa.evaluate(() => (window as unknown as { __pwned?: number }).__pwned), undefined, 'nothing ran');
    t.equal(await pa.$$eval('#messages script, #messages img, #convs script, #convs img', (els) => els.length), 0, 'no element was made from network text');
    const raw = await pa.$eval('#messages', (e) => e.textContent ?? '');
    t.notMatch(raw, /[\u0000-\u0008\u000b-\u001f\u202a-\u202e\u2066-\u2069]/, 'no control character or bidi override reaches the page');
    await shot(pa, 'hostile-text');
  });

  t.test('the code screen shows the same digits on both sides, and the live check verifies', async (t) => {
    await openConv(pa, b.node.fingerprint);
    await openConv(pb, a.node.fingerprint);
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
    t.equal(await pa.$(`#convs li[data-key="${b.node.fingerprint}"] .unread`), null, 'what was read before the reload stays read');
    await openConv(pa, b.node.fingerprint);
    const shown = await pa.$$eval('#messages li .text', (els) => els.map((e) => e.textContent ?? ''));
    t.ok(shown.includes('hello bob') && shown.includes('hi alice') && shown.includes('line one\nline two'), 'the messages are there after the reload');
    t.equal(await text(pa, '#verification'), 'verified');
    t.equal(await pa.$$eval('#messages li.out .state[data-state="delivered"]', (e) => e.length), 2);
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
    await pa.waitForSelector('#composer[data-key^="g:"]', { timeout: WAIT_MS });
    const groupKey = await pa.$eval('#composer', (e) => e.getAttribute('data-key') ?? '');
    await sendInPage(pa, groupKey, 'hi group');
    await waitState(pa, 'hi group', 'delivered');
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
    await openConv(pa, 'ab'.repeat(32));
    await sendInPage(pa, 'ab'.repeat(32), 'anyone?');
    await waitState(pa, 'anyone?', 'failed');
    t.equal(await text(pa, '#messages li.out .state'), 'failed (certificate-not-found)');
    await shot(pa, 'failed');

    // A group message shows the member furthest behind, and the history gives each member's state.
    await pa.click('#group-btn');
    await pa.waitForSelector('#group-form input[type="checkbox"][value="ghost"]', { timeout: WAIT_MS });
    await pa.type('#group-name', 'pair');
    await pa.click('#group-form input[type="checkbox"][value="bob"]');
    await pa.click('#group-form input[type="checkbox"][value="ghost"]');
    await pa.click('#group-form button[type="submit"]');
    await pa.waitForSelector('#composer[data-key^="g:"]', { timeout: WAIT_MS });
    const pairKey = await pa.$eval('#composer', (e) => e.getAttribute('data-key') ?? '');
    await sendInPage(pa, pairKey, 'to both');
    await waitState(pa, 'to both', 'failed');
    t.equal(await text(pa, '#messages li.out .state'), 'failed (certificate-not-found)');
    // Bob's copy is delivered in its own time: the history is asked again until it says so.
    const partsOf = async (): Promise<Array<{ id: string; state: string }>> => {
      const h = await pa.evaluate(async (id: string) => ((await (await fetch(`/api/history?group=${encodeURIComponent(id)}&limit=10`)).json()) as {
        messages: Array<{ parts?: Array<{ id: string; state: string }> }>;
      }).messages, pairKey.slice(2));
      return h[0]?.parts ?? [];
    };
    await pa.waitForFunction(async (id: string) => {
      const r = await fetch(`/api/history?group=${encodeURIComponent(id)}&limit=10`);
      const parts = ((await r.json()) as { messages: Array<{ parts?: Array<{ state: string }> }> }).messages[0]?.parts ?? [];
      return parts.some((p) => p.state === 'delivered');
    }, { timeout: WAIT_MS, polling: 100 }, pairKey.slice(2)).catch(async (e: Error) => {
      throw new Error(`${e.message}; the parts: ${JSON.stringify(await partsOf())}`);
    });
    const parts = await partsOf();
    const [bobId] = b.node.history('alice', { limit: 100 }).filter((m) => m.text === 'to both').map((m) => m.id);
    t.same(parts.map((p) => p.state).sort(), ['delivered', 'failed'], 'each member\'s state');
    t.equal(parts.find((p) => p.state === 'delivered')?.id, bobId, 'bob has it');
    t.equal(await text(pa, '#messages li.out .state'), 'failed (certificate-not-found)', 'the page still shows the member furthest behind');
  });

  t.test('a message to a node that is down stays queued', async (t) => {
    await b.web.close();
    await b.node.close();
    await openConv(pa, b.node.fingerprint);
    await sendInPage(pa, b.node.fingerprint, 'are you there?');
    await waitText(pa, '#messages li.out .text', 'are you there?');
    const states = await pa.$$eval('#messages li.out', (els) => els.map((e) => [e.querySelector('.text')?.textContent, e.querySelector('.state')?.getAttribute('data-state')]));
    t.same(states.at(-1), ['are you there?', 'queued']);
    t.equal(await pa.$eval('#messages', (e) => e.getAttribute('data-key')), b.node.fingerprint, 'in the conversation with bob');
  });

  t.test('the pages met no script error, no refused request and no error notice', async (t) => {
    t.same(troubles, []);
    t.equal(await pa.$eval('#notice', (e) => (e as unknown as { hidden: boolean }).hidden), true, `alice's page shows no notice: ${await text(pa, '#notice')}`);
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
