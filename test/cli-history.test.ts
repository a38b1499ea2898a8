/**
 * History as a user meets it: a home of the previous release migrates on start; `history`,
 * `contacts list` and `backup` work while the node runs, `delete` and `contacts remove` wait for
 * the lock; the chat shows the last messages on start (after a restart too), on /to, /history and
 * /search; network text is printed through safeText.
 */
import t from 'tap';
import { chmodSync, copyFileSync, existsSync, mkdirSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { ChatProcess, type Event } from './helpers/chat-process.js';
import { runCli, tempDir } from './helpers/cli.js';

const FIXTURE = resolve(import.meta.dirname, 'fixtures', 'home-v1', 'client-state.json');
const ready = (e: Event): boolean => e.event === 'ready';
const lines = (s: string): Array<Record<string, unknown>> => s.trim().split('\n').filter(Boolean).map((l) => JSON.parse(l) as Record<string, unknown>);

t.test('migration on start, history while the node runs, chat history views, delete and backup', async (t) => {
  const tmp = tempDir();
  t.teardown(tmp.cleanup);
  const homeA = join(tmp.dir, 'a');
  const homeB = join(tmp.dir, 'b');
  // A home of the previous release: its identity and its client-state.json.
  mkdirSync(homeA, { recursive: true, mode: 0o700 });
  for (const f of ['client-state.json', 'cert.pem', 'key.pem']) copyFileSync(join(dirname(FIXTURE), f), join(homeA, f));
  chmodSync(join(homeA, 'key.pem'), 0o600);

  let a = ChatProcess.start(['node', '--home', homeA, '--port', '0', '--json']);
  const b = ChatProcess.start(['node', '--home', homeB, '--port', '0', '--json']);
  t.teardown(async () => {
    await a.stop();
    await b.stop();
  });
  const ra = await a.waitFor(ready, 'node a ready');
  const rb = await b.waitFor(ready, 'node b ready');
  const migrated = await a.waitFor((e) => e.event === 'history', 'history at start');
  t.same((migrated.messages as Array<{ text: string }>).map((m) => m.text), ['hello bob', 'how are you?', 'line one\nline two'],
    'the messages of the old home are shown at start');
  t.ok(existsSync(join(homeA, 'client-state.json.migrated')), 'the old file is kept as .migrated');

  const oldContacts = await runCli(['contacts', 'list', '--home', homeA, '--json']);
  t.equal(oldContacts.code, 0, oldContacts.stderr);
  t.same((lines(oldContacts.stdout)[0]!.contacts as Array<{ petname: string }>).map((c) => c.petname), ['alice'], 'contacts migrated, read while the node runs');

  a.line(`/add ${rb.address as string} bob`);
  b.line(`/add ${ra.address as string} alice2`);
  await a.waitFor((e) => e.event === 'contact-cert' && e.ok === true, 'bob certificate');
  await b.waitFor((e) => e.event === 'contact-cert' && e.ok === true, 'alice certificate');
  const texts = Array.from({ length: 24 }, (_, i) => `note ${i}`);
  texts.push('red \u001b[31malert\u001b[0m \u202eevil');
  for (const x of texts) a.line(`/msg bob ${x}`);
  await b.waitFor(() => b.events.filter((e) => e.event === 'message').length === texts.length, 'all messages at bob', 30_000);

  const h = await runCli(['history', 'bob', '--home', homeA, '--limit', '5', '--json']);
  t.equal(h.code, 0, `history while the node runs: ${h.stderr}`);
  const page = lines(h.stdout)[0]!.messages as Array<{ id: string; text: string; dir: string }>;
  t.same(page.map((m) => m.text), texts.slice(-5), 'the newest five, oldest first');
  t.ok(page.every((m) => m.dir === 'out'));
  const before = await runCli(['history', 'bob', '--home', homeA, '--limit', '3', '--before', page[0]!.id, '--json']);
  t.same((lines(before.stdout)[0]!.messages as Array<{ text: string }>).map((m) => m.text), texts.slice(-8, -5), '--before pages back');
  const found = await runCli(['history', 'bob', '--home', homeA, '--search', 'note 7', '--json']);
  t.same((lines(found.stdout)[0]!.messages as Array<{ text: string }>).map((m) => m.text), ['note 7'], '--search');
  const text = await runCli(['history', 'bob', '--home', homeA, '--limit', '1']);
  t.match(text.stdout, /me → bob: red \^\[\[31malert\^\[\[0m <U\+202E>evil/, 'network text through safeText');
  t.notMatch(text.stdout, /\u001b/, 'no escape reaches the terminal');

  const busy = await runCli(['contacts', 'remove', 'bob', '--home', homeA]);
  t.equal(busy.code, 1, 'a command that writes waits for the lock');
  t.match(busy.stderr, /PEERPOST_HOME_BUSY|another peerpost process/);
  const backupFile = join(tmp.dir, 'a-backup.db');
  const bk = await runCli(['backup', backupFile, '--home', homeA, '--json']);
  t.equal(bk.code, 0, `backup while the node runs: ${bk.stderr}`);
  t.ok((lines(bk.stdout)[0]!.messages as number) >= texts.length + 3);

  b.line('/to alice2');
  const conv = await b.waitFor((e) => e.event === 'history' && e.contact === ra.fingerprint, 'history on /to');
  t.equal((conv.messages as unknown[]).length, 20, 'the last 20 messages on /to');
  b.line('/history 3');
  const h3 = await b.waitFor((e) => e.event === 'history' && (e.messages as unknown[]).length === 3, '/history 3');
  // In the order they were received (the network may reorder them): the last three of the /to view.
  t.same((h3.messages as Array<{ text: string }>).map((m) => m.text), (conv.messages as Array<{ text: string }>).slice(-3).map((m) => m.text));
  b.line('/search note 12');
  const s = await b.waitFor((e) => e.event === 'history' && e.search === 'note 12', '/search');
  t.same((s.messages as Array<{ text: string }>).map((m) => m.text), ['note 12']);

  // After a restart the chat shows the conversation again.
  t.equal(await a.stop(), 0);
  a = ChatProcess.start(['node', '--home', homeA, '--port', '0', '--json']);
  await a.waitFor(ready, 'node a ready again');
  const again = await a.waitFor((e) => e.event === 'history', 'history after the restart');
  t.same((again.messages as Array<{ text: string }>).map((m) => m.text).slice(-2), texts.slice(-2), 'the last messages after a restart');
  t.equal(await a.stop(), 0);

  const one = await runCli(['delete', '--message', page[0]!.id, '--home', homeA, '--json']);
  t.equal(one.code, 0, one.stderr);
  const all = await runCli(['delete', 'bob', '--home', homeA, '--json']);
  t.equal(lines(all.stdout)[0]!.deleted, texts.length - 1, 'the rest of the conversation deleted');
  const none = await runCli(['history', 'bob', '--home', homeA, '--json']);
  t.same(lines(none.stdout)[0]!.messages, []);
  const missing = await runCli(['delete', '--message', page[0]!.id, '--home', homeA]);
  t.equal(missing.code, 2);
  t.match(missing.stderr, /no message/);
});
