/**
 * Unread counts of the web page's conversation list (/api/conversations) over HTTP: a conversation
 * is read up to the newest message the page showed (`POST /api/read { key, last }`), so a message
 * that reached the server before the page's read but after what the page showed stays unread,
 * whatever the order of the two; a mark never moves back; without `last`, up to the read's time.
 */
import t from 'tap';
import { cookieName } from '../src/web/guard.js';
import { startWebNode, type WebNode } from './helpers/web.js';

/** Longest wait for a message to arrive. */
const WAIT_MS = 15_000;

async function call(w: WebNode, method: 'GET' | 'POST', path: string, body?: unknown): Promise<unknown> {
  const res = await fetch(`${w.web.origin}${path}`, {
    method,
    headers: { cookie: `${cookieName(w.web.port)}=${w.web.token}`, ...(method === 'POST' ? { 'content-type': 'application/json', 'x-peerpost': '1' } : {}) },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  if (res.status !== 200) throw new Error(`${method} ${path}: ${res.status} ${await res.text()}`);
  return res.json();
}

async function unread(w: WebNode, key: string): Promise<number | undefined> {
  const { conversations } = (await call(w, 'GET', '/api/conversations')) as { conversations: Array<{ key: string; unread: number }> };
  return conversations.find((c) => c.key === key)?.unread;
}

t.test('a conversation is read up to the newest message the page showed', async (t) => {
  const [a, b] = await Promise.all([startWebNode('marks-a'), startWebNode('marks-b')]);
  t.teardown(() => Promise.all([a.close(), b.close()]));
  a.node.addContact(b.node.address, 'bob');
  b.node.addContact(a.node.address, 'alice');

  const got: string[] = [];
  const arrived = (n: number): Promise<void> => new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`waited ${WAIT_MS} ms for ${n} messages at alice, got ${got.length}`)), WAIT_MS);
    const check = (): void => {
      if (got.length < n) return;
      clearTimeout(timer);
      a.node.off('message', check);
      resolve();
    };
    a.node.on('message', check);
    check();
  });
  a.node.on('message', (m) => got.push(m.id));
  const key = b.node.fingerprint;

  b.node.send('alice', 'one');
  await arrived(1);
  t.equal(await unread(a, key), 1);
  b.node.send('alice', 'two');
  await arrived(2);
  const [first, second] = a.node.history('bob', { limit: 10 }).filter((m) => m.dir === 'in').map((m) => m.id);
  t.ok(first && second);

  // The page showed only the first when it marked the conversation read; the second came before the read.
  await call(a, 'POST', '/api/read', { key, last: first });
  t.equal(await unread(a, key), 1, 'the message the page had not shown stays unread');
  await call(a, 'POST', '/api/read', { key, last: second });
  t.equal(await unread(a, key), 0);
  await call(a, 'POST', '/api/read', { key, last: first });
  t.equal(await unread(a, key), 0, 'a mark never moves back');

  b.node.send('alice', 'three');
  await arrived(3);
  t.equal(await unread(a, key), 1);
  await call(a, 'POST', '/api/read', { key });
  t.equal(await unread(a, key), 0, 'without "last": everything up to the read');
  await t.rejects(call(a, 'POST', '/api/read', { key, last: 5 }), /400/, '"last" must be a string');
});
