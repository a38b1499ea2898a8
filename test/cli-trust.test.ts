/**
 * The terminal client a user can trust, run as a user runs it: through pipes and in a real
 * pseudo-terminal (util-linux `script`). Network text is made harmless, input given before the
 * node is ready is kept, a failed command saves nothing, closed pipes end quietly, one-shot
 * commands stay quiet, strangers' messages are requests.
 */
import t from 'tap';
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { spawn } from 'node:child_process';
import { ChatProcess, type Event } from './helpers/chat-process.js';
import { CLI_MAIN, ROOT, runCli, tempDir, ensureBuilt } from './helpers/cli.js';
import { PtyProcess, ptyAvailable } from './helpers/pty.js';
import { Client } from '../src/api/client.js';
import { checkHome } from '../src/identity/home.js';

const ready = (e: Event): boolean => e.event === 'ready';
const ESC = '\x1b';

t.test('lines piped before the node is ready are run once it is (pipe)', async (t) => {
  const tmp = tempDir();
  t.teardown(tmp.cleanup);
  const a = ChatProcess.start(['node', '--home', join(tmp.dir, 'a'), '--port', '0', '--json']);
  t.teardown(() => a.stop());
  // Written at once, long before the identity exists and the socket is bound.
  a.line('/contacts');
  a.line('/id');
  a.line('/group list');
  const r = await a.waitFor(ready, 'ready');
  const contacts = await a.waitFor((e) => e.event === 'contacts', '/contacts answered');
  const id = await a.waitFor((e) => e.event === 'id', '/id answered');
  await a.waitFor((e) => e.event === 'groups', '/group list answered');
  t.same(contacts.contacts, []);
  t.equal(id.address, r.address);
  t.ok(a.events.indexOf(r) < a.events.indexOf(contacts), 'after ready, in order');
});

t.test('a failed command saves nothing; a damaged config.json stops the node at once', async (t) => {
  const tmp = tempDir();
  t.teardown(tmp.cleanup);
  const home = join(tmp.dir, 'h');
  const peer = ChatProcess.start(['peer', '--home', join(tmp.dir, 'p'), '--port', '0', '--json']);
  t.teardown(() => peer.stop());
  const peerAddr = (await peer.waitFor((e) => e.event === 'listening', 'peer listening')).address as string;
  const nobody = `${'ab'.repeat(32)}`;

  const bad = await runCli(['contacts', 'add', `${nobody}@999.1.1.1:7777`, 'x', '--home', home, '--peer', peerAddr]);
  t.not(bad.code, 0, 'not an address');
  t.match(bad.stderr, /999\.1\.1\.1/);

  const started = Date.now();
  const missing = await runCli(['contacts', 'add', `${nobody}@${peerAddr}`, 'x', '--home', home, '--peer', peerAddr, '--timeout', '15']);
  t.equal(missing.code, 1);
  t.match(missing.stderr, /not registered at that peer/, 'the cause is named');
  t.ok(Date.now() - started < 10_000, `answered by the peer, not a timeout (${Date.now() - started} ms)`);
  const list = JSON.parse((await runCli(['contacts', 'list', '--home', home, '--json'])).stdout) as { contacts: unknown[] };
  t.same(list.contacts, [], 'no contact saved by the failed adds');

  const ok = await runCli(['inbox', '--home', home, '--peer', peerAddr, '--quiet', '0.2']);
  t.equal(ok.code, 0, 'a peer that answers is saved');
  const t1 = Date.now();
  const toNobody = await runCli(['send', `${nobody}@${peerAddr}`, 'hello?', '--home', home, '--timeout', '15']);
  t.equal(toNobody.code, 1);
  t.match(toNobody.stderr, /cannot go now: certificate-not-found: the recipient is not registered at that peer/, 'send names the cause');
  t.ok(Date.now() - t1 < 10_000, `at once, not after --timeout (${Date.now() - t1} ms)`);
  const qr = await runCli(['id', '--qr', '--home', home]);
  t.equal(qr.code, 0);
  t.match(qr.stdout, /address +[0-9a-f]{64}@[\s\S]*[▄▀█]/, 'peerpost id --qr prints a QR code of the address');
  const silent = await runCli(['inbox', '--home', home, '--peer', '127.0.0.1:9', '--timeout', '1']);
  t.equal(silent.code, 1);
  t.match(silent.stderr, /your own peer 127\.0\.0\.1:9/);
  const cfg = JSON.parse(readFileSync(join(home, 'config.json'), 'utf8')) as { peer?: string };
  t.equal(cfg.peer, peerAddr, 'a --peer that never answered is not saved; the one that did is');
  const id = JSON.parse((await runCli(['id', '--home', home, '--json'])).stdout) as { address: string };
  t.match(id.address, new RegExp(`@${peerAddr.replace(/\./g, '\\.')}$`));

  const broken = join(tmp.dir, 'broken');
  mkdirSync(broken, { mode: 0o700 });
  writeFileSync(join(broken, 'config.json'), '{"peer": ');
  const t0 = Date.now();
  const r = await runCli(['node', '--home', broken, '--port', '0'], { timeoutMs: 10_000 });
  t.equal(r.code, 1, 'exit 1');
  t.equal(r.stderr.trim().split('\n').length, 1, `one line: ${r.stderr}`);
  t.match(r.stderr, /config\.json is not valid JSON/);
  t.ok(Date.now() - t0 < 8000, 'at once');
  t.notOk(existsSync(join(broken, 'lock')), 'the lock is not left behind');
});

t.test('the first SIGTERM stops a node that is starting or running', async (t) => {
  const tmp = tempDir();
  t.teardown(tmp.cleanup);
  const a = ChatProcess.start(['node', '--home', join(tmp.dir, 'a'), '--port', '0', '--json']);
  await a.waitFor(ready, 'ready');
  t.equal(await a.stop(), 0, 'one SIGTERM, clean exit');
});

t.test('a closed stdout ends the program quietly with 141 (128 + SIGPIPE)', async (t) => {
  ensureBuilt();
  const tmp = tempDir();
  t.teardown(tmp.cleanup);
  const child = spawn(process.execPath, [CLI_MAIN, 'id', '--json', '--home', join(tmp.dir, 'h')], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
  child.stdout.destroy(); // the reader is gone before anything is written (like `| head -0`)
  let stderr = '';
  child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  const code = await new Promise<number | null>((resolve) => child.on('exit', (c) => resolve(c)));
  t.equal(code, 141);
  t.notMatch(stderr, /EPIPE|\n\s+at |error/i, `no stack trace, no error: ${stderr}`);
});

t.test('one-shot commands log nothing at info unless asked; --json errors are JSON', async (t) => {
  const tmp = tempDir();
  t.teardown(tmp.cleanup);
  const peer = ChatProcess.start(['peer', '--home', join(tmp.dir, 'p'), '--port', '0', '--json']);
  t.teardown(() => peer.stop());
  const peerAddr = (await peer.waitFor((e) => e.event === 'listening', 'peer listening')).address as string;
  const home = join(tmp.dir, 'h');
  const quiet = await runCli(['inbox', '--home', home, '--peer', peerAddr, '--quiet', '0.2']);
  t.equal(quiet.code, 0, quiet.stderr);
  t.notMatch(quiet.stderr, /listening|"level":30/, 'no info log lines');
  const loud = await runCli(['inbox', '--home', home, '--quiet', '0.2', '--log-level', 'info']);
  t.match(loud.stderr, /listening/, 'info logs when asked');
  const err = await runCli(['send', 'nobody', 'hi', '--home', home, '--json']);
  t.equal(err.code, 2);
  const j = JSON.parse(err.stdout) as { error: { code: string; message: string }; exitCode: number };
  t.equal(j.error.code, 'PEERPOST_UNKNOWN_CONTACT');
  t.equal(j.exitCode, 2);
  const named = await runCli(['inbox', '--home', join(tmp.dir, 'h2'), '--peer', `localhost:${peerAddr.split(':')[1]!}`, '--quiet', '0.2']);
  t.equal(named.code, 0, `a host name is resolved: ${named.stderr}`);
});

t.test('the home folder: refused when others can write to it or it is another user\'s', async (t) => {
  const tmp = tempDir();
  t.teardown(tmp.cleanup);
  const open = join(tmp.dir, 'open');
  mkdirSync(open);
  chmodSync(open, 0o777);
  const r = await runCli(['id', '--home', open]);
  t.equal(r.code, 1);
  t.match(r.stderr, /other users can write to it .*chmod go-w/);
  t.notOk(existsSync(join(open, 'key.pem')), 'nothing written there');
  const mine = join(tmp.dir, 'mine');
  mkdirSync(mine, { mode: 0o700 });
  t.doesNotThrow(() => checkHome(mine));
  const uid = process.getuid?.();
  if (uid !== undefined) t.throws(() => checkHome(mine, uid + 1), { code: 'PEERPOST_HOME_UNSAFE', message: /belongs to another user/ });
  t.doesNotThrow(() => checkHome(join(tmp.dir, 'not-yet')), 'a folder that does not exist yet is created 0700');
});

t.test('message requests: withheld receipts, /accept, /block, no group from a stranger (pipe)', async (t) => {
  const tmp = tempDir();
  t.teardown(tmp.cleanup);
  const bob = ChatProcess.start(['node', '--home', join(tmp.dir, 'bob'), '--port', '0', '--json']);
  t.teardown(() => bob.stop());
  const rb = await bob.waitFor(ready, 'bob ready');
  const peerAddr = (rb.address as string).split('@')[1]!;
  const alice = await Client.start({ peer: peerAddr, home: join(tmp.dir, 'alice') });
  const carol = await Client.start({ peer: peerAddr, home: join(tmp.dir, 'carol') });
  t.teardown(async () => {
    await alice.close();
    await carol.close();
  });
  await Promise.all([alice, carol].map((c) => (c.registered ? undefined : new Promise((r) => c.once('registered', r)))));

  const [id1] = alice.send(rb.address as string, 'hello, it is alice');
  const req = await bob.waitFor((e) => e.event === 'message' && e.request === true, 'request at bob');
  t.equal(req.from, alice.fingerprint);
  t.match(req.code, /^\d{6}$/, 'shown with the sender\'s 6-digit code');
  // Receipts go out within receiptBatchDelayMs (20 ms) of a message: 1.5 s without one is no receipt.
  const deliveredWithin = (id: string, ms: number): Promise<boolean> =>
    new Promise((resolve) => {
      if (alice.messageState(id)?.state === 'delivered') return resolve(true);
      const timer = setTimeout(() => {
        alice.off('delivery', on);
        resolve(false);
      }, ms);
      const on = (d: { id: string; state: string }): void => {
        if (d.id !== id || d.state !== 'delivered') return;
        clearTimeout(timer);
        alice.off('delivery', on);
        resolve(true);
      };
      alice.on('delivery', on);
    });
  t.equal(await deliveredWithin(id1!, 1500), false, 'no receipt while the request is not accepted');
  const accepted = deliveredWithin(id1!, 10_000);
  bob.line(`/accept ${alice.fingerprint.slice(0, 8)} alice`);
  await bob.waitFor((e) => e.event === 'contact-added' && e.petname === 'alice', 'accepted');
  t.equal(await accepted, true, 'the withheld receipt is sent on /accept');

  // A stranger's group does not appear; blocking drops the stranger silently.
  carol.createGroup('party', [rb.address as string]);
  carol.sendGroup('party', 'join my group');
  const g = await bob.waitFor((e) => e.event === 'message' && e.from === carol.fingerprint, 'carol\'s request');
  t.equal(g.request, true);
  t.notOk(g.group, 'no group from a stranger');
  bob.line('/group list');
  const groups = await bob.waitFor((e) => e.event === 'groups', 'groups');
  t.same(groups.groups, []);
  bob.line(`/block ${carol.fingerprint.slice(0, 8)}`);
  await bob.waitFor((e) => e.event === 'blocked', 'blocked');
  carol.send(rb.address as string, 'are you there?');
  alice.send('' + (rb.address as string), 'after carol');
  await bob.waitFor((e) => e.event === 'message' && e.text === 'after carol', 'alice\'s next message');
  t.notOk(bob.events.some((e) => e.event === 'message' && e.text === 'are you there?'), 'nothing shown from a blocked sender');
  const cfg = JSON.parse(readFileSync(join(tmp.dir, 'bob', 'config.json'), 'utf8')) as { blocked?: string[] };
  t.same(cfg.blocked, [carol.fingerprint], `the block is kept for next time: ${JSON.stringify(cfg)}`);
});

t.test('in a terminal: escapes made visible, indented lines, Tab, bell, unread, /id QR, colours', { skip: !ptyAvailable() && 'util-linux script is not available' }, async (t) => {
  const tmp = tempDir();
  t.teardown(tmp.cleanup);
  const bobHome = join(tmp.dir, 'bob');
  const bob = PtyProcess.start(['node', '--home', bobHome, '--port', '0'], { NO_COLOR: undefined, FORCE_COLOR: undefined });
  t.teardown(() => bob.stop());
  // Typed before the node is ready: kept and run once it is.
  bob.type('/requests\r');
  const addr = (await bob.waitFor(/your address +([0-9a-f]{64}@[0-9.]+:\d+)/, 'bob ready'))[1]!;
  await bob.waitFor(/no message requests/, 'the early line ran');
  const peerAddr = addr.split('@')[1]!;
  const alice = await Client.start({ peer: peerAddr, home: join(tmp.dir, 'alice') });
  t.teardown(() => alice.close());
  if (!alice.registered) await new Promise((r) => alice.once('registered', r));

  const from = bob.output.length;
  alice.send(addr, `\x1b]0;pwned\x07\x1b]52;c;ZXZpbA==\x07\x1b[31mred\r${ESC}[2K19:05 mallory: hi\nsecond line\u202Eabc`);
  const shown = await bob.waitFor(/REQUEST from \?[0-9a-f]{12}[^\n]*\(code \d{6}\)[^\n]*\n/, 'the request on screen', 15_000, from);
  const screen = bob.output.slice(from);
  t.match(screen, /\^\[\]0;pwned\^G\^\[\]52;c;ZXZpbA==\^G\^\[\[31mred\^M\^\[\[2K19:05 mallory: hi/, 'escapes shown, not run');
  t.notMatch(screen, /\x1b\]0;pwned|\x1b\]52|\x1b\[31mred/, 'no escape sequence from the message reaches the terminal');
  t.match(screen, /\n {4}second line<U\+202E>abc/, 'the second line is indented under the sender; the bidi override named');
  t.ok(shown);
  await bob.waitFor(/\x07/, 'a bell for a message outside the current conversation', 10_000, from);
  await bob.waitFor(/\(1 unread: [0-9a-f]{12} 1\)/, 'the unread count in the prompt', 10_000, from);

  const typed = bob.output.length;
  bob.type(`/accept ${alice.fingerprint.slice(0, 6)}\t`);
  await bob.waitFor(new RegExp(`/accept ${alice.fingerprint.slice(0, 12)} `), 'Tab completed the request id', 10_000, typed);
  bob.type('alice\r');
  await bob.waitFor(/accepted alice/, 'accepted');
  const typed2 = bob.output.length;
  bob.type('/to al\t');
  await bob.waitFor(/\/to alice /, 'Tab completed the contact name', 10_000, typed2);
  bob.type('\r');
  await bob.waitFor(/talking to alice/, '/to');
  const at = bob.output.length;
  bob.type('/id\r');
  await bob.waitFor(/your code +\d{6}\r?\n[\s\S]*[▄▀█]/, 'a QR code', 10_000, at);
  bob.type('/contacts\r');
  await bob.waitFor(/\x1b\[1m\x1b\[3\dmalice/, 'names in colour on a terminal', 10_000, at);
  bob.type('/quit\r');
  t.equal(await bob.exit(), 0);

  // Restarted: /to is remembered; NO_COLOR turns colours off.
  const again = PtyProcess.start(['node', '--home', bobHome, '--port', '0'], { NO_COLOR: '1' });
  t.teardown(() => again.stop());
  await again.waitFor(/talking to +alice/, '/to remembered across restarts');
  again.type('/contacts\r');
  await again.waitFor(/alice {11}/, 'contacts');
  t.notMatch(again.output.replace(/\x1b\[[0-9;]*[GKJ]|\x1b\[\?[0-9]+[hl]|\x1b\[\d*[ABCD]/g, ''), /\x1b\[[0-9;]*m/, 'no colour with NO_COLOR');
  again.type('/quit\r');
  t.equal(await again.exit(), 0);
});

t.test('in a terminal: progress while contacts add waits, its cause named; Ctrl-C stops the chat', { skip: !ptyAvailable() && 'util-linux script is not available' }, async (t) => {
  const tmp = tempDir();
  t.teardown(tmp.cleanup);
  const peer = ChatProcess.start(['peer', '--home', join(tmp.dir, 'p'), '--port', '0', '--json']);
  t.teardown(() => peer.stop());
  const peerAddr = (await peer.waitFor((e) => e.event === 'listening', 'peer listening')).address as string;
  const add = PtyProcess.start(['contacts', 'add', `${'ef'.repeat(32)}@127.0.0.1:9`, 'x', '--home', join(tmp.dir, 'h'), '--peer', peerAddr, '--timeout', '2']);
  t.teardown(() => add.stop());
  await add.waitFor(/fetching the certificate of x from 127\.0\.0\.1:9 \.\.\. \d s \(up to 2 s\)/, 'progress on the terminal');
  t.equal(await add.exit(), 1);
  t.match(add.output, /their peer does not answer/, 'the contact\'s peer is named as the cause');
  t.notMatch(add.output, /your own peer/, 'not confused with our own peer');

  const node = PtyProcess.start(['node', '--home', join(tmp.dir, 'n'), '--port', '0']);
  t.teardown(() => node.stop());
  await node.waitFor(/type \/help/, 'ready');
  node.type('\x03');
  t.equal(await node.exit(), 0, 'the first Ctrl-C stops the chat and the node');
});
