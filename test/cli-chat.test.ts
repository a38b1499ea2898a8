/**
 * The CLI as a user runs it: real processes on 127.0.0.1 exchanging messages through real peers.
 */
import t from 'tap';
import { join } from 'node:path';
import { ChatProcess, type Event } from './helpers/chat-process.js';
import { runCli, tempDir } from './helpers/cli.js';

const ready = (e: Event): boolean => e.event === 'ready';

t.test('two nodes: contacts, a message each way, codes and the live check', async (t) => {
  const tmp = tempDir();
  t.teardown(tmp.cleanup);
  const a = ChatProcess.start(['node', '--home', join(tmp.dir, 'a'), '--port', '0', '--json', '--directory']);
  const b = ChatProcess.start(['node', '--home', join(tmp.dir, 'b'), '--port', '0', '--json']);
  t.teardown(async () => {
    await a.stop();
    await b.stop();
  });
  const ra = await a.waitFor(ready, 'node a ready');
  const rb = await b.waitFor(ready, 'node b ready');
  t.match(ra.address, /^[0-9a-f]{64}@127\.0\.0\.1:\d+$/);
  t.match(ra.code, /^\d{6}$/);

  a.line(`/add ${rb.address as string} bob`);
  b.line(`/add ${ra.address as string} alice`);
  const certKnown = (e: Record<string, unknown>): boolean => (e.event === 'contact-cert' && e.ok === true) || (e.event === 'contact-added' && typeof e.cert === 'string');
  await a.waitFor(certKnown, 'bob certificate');
  await b.waitFor(certKnown, 'alice certificate');

  a.line('/msg bob hello bob');
  const got = await b.waitFor((e) => e.event === 'message', 'message at bob');
  t.equal(got.text, 'hello bob');
  t.equal(got.fromName, 'alice');
  t.equal(got.from, ra.fingerprint);
  await a.waitFor((e) => e.event === 'delivery' && e.id === got.id && e.state === 'delivered', 'end-to-end receipt at alice');

  b.line('/to alice');
  b.line('and hello alice');
  const back = await a.waitFor((e) => e.event === 'message', 'message at alice');
  t.equal(back.text, 'and hello alice');

  a.line('/code bob');
  b.line('/code alice');
  const ca = await a.waitFor((e) => e.event === 'code', 'codes at alice');
  const cb = await b.waitFor((e) => e.event === 'code', 'codes at bob');
  t.equal(ca.safetyNumber, cb.safetyNumber, 'both sides see the same safety number');
  t.equal(ca.mine, cb.theirs);
  t.equal(ca.theirs, cb.mine);
  t.equal(ca.mine, ra.code, 'the code shown at start is the identity code');

  a.line('/verify bob');
  const va = await a.waitFor((e) => e.event === 'verify-code', 'live code at alice');
  const vb = await b.waitFor((e) => e.event === 'verify-code', 'live code at bob');
  t.match(va.code, /^\d{6}$/);
  t.equal(va.code, vb.code, 'honest sides see equal live codes');
  a.line('/verify yes bob');
  b.line('/verify yes alice');
  await a.waitFor((e) => e.event === 'verify-done' && e.verified === true, 'alice verified bob');
  await b.waitFor((e) => e.event === 'verify-done' && e.verified === true, 'bob verified alice');
  a.line('/contacts');
  const list = await a.waitFor((e) => e.event === 'contacts', 'contacts');
  t.equal((list.contacts as Array<{ verification: string }>)[0]?.verification, 'verified');

  a.line('/who join Alice Example');
  await a.waitFor((e) => e.event === 'directory-join', 'joined the directory');
  const peerA = String(ra.address).split('@')[1]!;
  b.line(`/who ${peerA}`);
  const dir = await b.waitFor((e) => e.event === 'directory' && e.peer === peerA, 'directory page from node a');
  t.same((dir.entries as Array<{ name: string; address: string }>).map((x) => [x.name, x.address]), [['Alice Example', ra.address]]);
  b.line('/who');
  const none = await b.waitFor((e) => e.event === 'directory' && e.peer !== peerA, 'directory answer from node b');
  t.equal(none.error, 'disabled', 'a peer without --directory says so');

  a.line('/nonsense');
  await a.waitFor((e) => e.event === 'text' && /unknown command/.test(String(e.line)), 'unknown command answer');
  a.line('/msg nobody hi');
  const err = await a.waitFor((e) => e.event === 'error', 'error for an unknown contact');
  t.equal(err.code, 'PEERPOST_UNKNOWN_CONTACT');

  t.equal(a.events.filter((e) => e.event === 'message').length, 1, 'alice saw one message');
  t.equal(b.events.filter((e) => e.event === 'message').length, 1, 'bob saw one message');
  t.equal(await a.stop(), 0, 'SIGTERM ends the node cleanly');
});

t.test('a peer and two clients: offline delivery with send and inbox', async (t) => {
  const tmp = tempDir();
  t.teardown(tmp.cleanup);
  const peer = ChatProcess.start(['peer', '--home', join(tmp.dir, 'peer'), '--port', '0', '--json']);
  t.teardown(() => peer.stop());
  const listening = await peer.waitFor((e) => e.event === 'listening', 'peer listening');
  const peerAddr = listening.address as string;
  const alice = join(tmp.dir, 'alice');
  const bob = join(tmp.dir, 'bob');

  const idA = await runCli(['id', '--home', alice, '--json']);
  t.equal(idA.code, 0, idA.stderr);
  const idB = await runCli(['id', '--home', bob, '--json']);
  const jb = JSON.parse(idB.stdout) as { fingerprint: string; code: string; address: string };
  t.match(jb.fingerprint, /^[0-9a-f]{64}$/);
  t.match(jb.code, /^\d{6}$/);
  t.match(jb.address, /^[0-9a-f]{64}@/);

  // Bob registers once (so his peer knows his certificate), then goes away.
  const bobOnline = ChatProcess.start(['client', '--home', bob, '--peer', peerAddr, '--json']);
  await bobOnline.waitFor(ready, 'bob ready');
  const idB2 = JSON.parse((await runCli(['id', '--home', bob, '--json'])).stdout) as { address: string };
  t.equal(idB2.address, `${jb.fingerprint}@${peerAddr}`, 'id --json gives the address others use');
  const added = await runCli(['contacts', 'add', idB2.address, 'bob', '--home', alice, '--peer', peerAddr, '--json']);
  t.equal(added.code, 0, added.stderr);
  t.equal(JSON.parse(added.stdout).petname, 'bob');
  t.equal(await bobOnline.stop(), 0);

  const sent = await runCli(['send', 'bob', 'while you were away', '--home', alice, '--json']);
  t.equal(sent.code, 0, sent.stderr);
  const js = JSON.parse(sent.stdout) as { id: string; status: string };
  t.equal(js.status, 'held', 'the recipient is offline: its peer holds the message');
  t.match(js.id, /^[0-9a-f]{32}$/);

  const inbox = await runCli(['inbox', '--home', bob, '--json']);
  t.equal(inbox.code, 0, inbox.stderr);
  const msgs = inbox.stdout.trim().split('\n').filter(Boolean).map((l) => JSON.parse(l) as Record<string, unknown>);
  t.equal(msgs.length, 1);
  t.equal(msgs[0]?.text, 'while you were away');
  t.equal(msgs[0]?.from, JSON.parse(idA.stdout).fingerprint);
  t.equal(msgs[0]?.id, js.id);
  t.type(msgs[0]?.sentAt, 'number');
  const again = await runCli(['inbox', '--home', bob, '--json']);
  t.equal(again.stdout.trim(), '', 'a second inbox shows nothing new');

  const list = await runCli(['contacts', 'list', '--home', alice, '--json']);
  t.equal(JSON.parse(list.stdout).contacts[0].petname, 'bob');
  const code = await runCli(['code', 'bob', '--home', alice, '--json']);
  const jc = JSON.parse(code.stdout) as { mine: string; theirs: string; safetyNumber: string };
  t.equal(jc.theirs, jb.code);
  t.match(jc.safetyNumber, /^\d{60}$/);
});

t.test('bad input: one clear line, non-zero exit, no stack trace', async (t) => {
  const tmp = tempDir();
  t.teardown(tmp.cleanup);
  const home = join(tmp.dir, 'h');
  const noStack = (r: { stderr: string }): void => {
    t.notMatch(r.stderr, /\n\s+at /, 'no stack trace');
    t.ok(r.stderr.trim().split('\n').length <= 2, `short error: ${r.stderr}`);
  };
  const cases: Array<[string[], number, RegExp]> = [
    [['send', 'nobody', 'hi', '--home', home, '--peer', '127.0.0.1:9'], 2, /no contact "nobody"|does not answer|did not answer/],
    [['contacts', 'add', 'not-an-address', '--home', home, '--peer', '127.0.0.1:9', '--timeout', '1'], 2, /fingerprint|address/i],
    [['node', '--home', home, '--port', '99999'], 2, /port/],
    [['send', 'x', 'hi', '--home', home, '--peer', 'localhost'], 2, /HOST:PORT/],
    [['code', 'nobody', '--home', home], 2, /no contact/],
    [['send', 'x', 'hi', '--home', home, '--peer', '127.0.0.1:9', '--timeout', 'soon'], 2, /timeout|number/i],
  ];
  for (const [args, code, re] of cases) {
    const r = await runCli(args);
    t.equal(r.code, code, `${args.join(' ')} exits ${code}: ${r.stderr}`);
    t.match(r.stderr, re);
    noStack(r);
  }
  const unreachable = await runCli(['inbox', '--home', home, '--peer', '127.0.0.1:9', '--timeout', '2']);
  t.equal(unreachable.code, 1);
  t.match(unreachable.stderr, /127\.0\.0\.1:9 (does not answer|did not answer)/);
  noStack(unreachable);

  const peer = ChatProcess.start(['peer', '--home', join(tmp.dir, 'p'), '--port', '0', '--json']);
  t.teardown(() => peer.stop());
  const l = await peer.waitFor((e) => e.event === 'listening', 'peer listening');
  const port = String(l.address).split(':')[1]!;
  const busy = await runCli(['peer', '--home', join(tmp.dir, 'p2'), '--port', port]);
  t.equal(busy.code, 1);
  t.match(busy.stderr, /already in use/);
  noStack(busy);
});

t.test('peerpost verify: the live check from the command line against a running client', async (t) => {
  const tmp = tempDir();
  t.teardown(tmp.cleanup);
  const peer = ChatProcess.start(['peer', '--home', join(tmp.dir, 'peer'), '--port', '0', '--json']);
  t.teardown(() => peer.stop());
  const peerAddr = (await peer.waitFor((e) => e.event === 'listening', 'peer listening')).address as string;
  const alice = join(tmp.dir, 'alice');
  const bob = ChatProcess.start(['client', '--home', join(tmp.dir, 'bob'), '--peer', peerAddr, '--json']);
  t.teardown(() => bob.stop());
  const rb = await bob.waitFor(ready, 'bob ready');
  await bob.waitFor((e) => e.event === 'registered', 'bob registered');
  const added = await runCli(['contacts', 'add', rb.address as string, 'bob', '--home', alice, '--peer', peerAddr]);
  t.equal(added.code, 0, added.stderr);
  const ida = JSON.parse((await runCli(['id', '--home', alice, '--json'])).stdout) as { address: string };
  bob.line(`/add ${ida.address} alice`);
  // Alice's CARD may have brought her certificate already (then no lookup, no contact-cert event).
  await bob.waitFor((e) => (e.event === 'contact-cert' && e.ok === true) || (e.event === 'contact-added' && typeof e.cert === 'string'), 'alice certificate at bob');

  // Bob answers in his chat once he sees the code; the command reports his real answer.
  const bobAnswers = async (answer: 'yes' | 'no', n: number): Promise<Record<string, unknown>> => {
    const e = await bob.waitFor((x) => x.event === 'verify-code' && bob.events.filter((y) => y.event === 'verify-code').length >= n, `code ${n} at bob`, 30_000);
    bob.line(`/verify ${answer} ${String(e.contact)}`);
    return e;
  };
  const [v, atBob] = await Promise.all([runCli(['verify', 'bob', '--home', alice, '--json'], { input: 'yes\n', timeoutMs: 40_000 }), bobAnswers('yes', 1)]);
  t.equal(v.code, 0, v.stderr);
  const lines = v.stdout.trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
  const code = lines.find((l) => l.event === 'verify-code');
  const done = lines.find((l) => l.event === 'verify-done');
  t.match(code?.code, /^\d{6}$/);
  t.equal(done?.verified, true);
  t.equal(done?.theirAnswer, true, "bob's yes is reported");
  t.equal(atBob.code, code?.code, 'both sides show the same six digits');
  const list = JSON.parse((await runCli(['contacts', 'list', '--home', alice, '--json'])).stdout) as { contacts: Array<{ verification: string }> };
  t.equal(list.contacts[0]?.verification, 'verified');

  // Alice says yes, Bob says no: a mismatch on both sides, and Alice is told why.
  const [yes] = await Promise.all([runCli(['verify', 'bob', '--home', alice, '--json'], { input: 'yes\n', timeoutMs: 40_000 }), bobAnswers('no', 2)]);
  t.equal(yes.code, 1, "bob's no makes alice's yes a mismatch");
  t.match(yes.stderr, /bob answered no/);
  const doneYes = yes.stdout.trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>).find((l) => l.event === 'verify-done');
  t.equal(doneYes?.verified, false);
  t.equal(doneYes?.theirAnswer, false);
  const list2 = JSON.parse((await runCli(['contacts', 'list', '--home', alice, '--json'])).stdout) as { contacts: Array<{ verification: string }> };
  t.equal(list2.contacts[0]?.verification, 'mismatch', 'recorded at alice');
  await bob.waitFor((e) => e.event === 'verify-done' && e.verified === false, 'mismatch at bob');

  // Carol (a third identity, starting unverified) says no, Bob says yes: Bob sees the mismatch too.
  const carol = join(tmp.dir, 'carol');
  t.equal((await runCli(['contacts', 'add', rb.address as string, 'bob', '--home', carol, '--peer', peerAddr])).code, 0);
  const idc = JSON.parse((await runCli(['id', '--home', carol, '--json'])).stdout) as { address: string };
  bob.line(`/add ${idc.address} carol`);
  const carolFp = idc.address.split('@')[0];
  // Carol's certificate is checked when fetched, or came already in her CARD.
  await bob.waitFor((e) => (e.event === 'contact-cert' && e.ok === true && e.fingerprint === carolFp) || (e.event === 'contact-added' && e.fingerprint === carolFp && Boolean(e.cert)), 'carol certificate at bob');
  const [no] = await Promise.all([runCli(['verify', 'bob', '--home', carol, '--json'], { input: 'no\n', timeoutMs: 40_000 }), bobAnswers('yes', 3)]);
  t.equal(no.code, 1, 'a mismatch exits non-zero');
  t.match(no.stderr, /you answered no, bob answered yes/);
  await bob.waitFor((e) => e.event === 'verify-answer' && e.contact === 'carol' && e.match === false, "carol's no at bob");
  const bobDone = await bob.waitFor((e) => e.event === 'verify-done' && e.contact === 'carol' && e.theirAnswer === false, 'bob told of the mismatch');
  t.equal(bobDone.verified, false, "carol's no undoes bob's yes");
  t.notOk(bob.events.some((e) => e.event === 'delivery'), "the live checks' own messages are not shown as bob's deliveries");
});
