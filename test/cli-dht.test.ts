/**
 * Reaching a contact by fingerprint alone, with real processes on 127.0.0.1: a private HyperDHT of
 * 10 nodes in this process, two peers and two clients as CLI processes. Alice's client publishes
 * its home record when it registers; Bob adds Alice by her fingerprint (typed as openssl prints
 * it) and his message arrives exactly once. With a bootstrap that never answers, commands finish
 * within the bound with one status line, and a lookup names the cause.
 */
import t from 'tap';
import { join } from 'node:path';
import { createSocket } from 'node:dgram';
import createTestnet from 'hyperdht/testnet.js';
import { runCli, tempDir } from './helpers/cli.js';
import { ChatProcess } from './helpers/chat-process.js';
import { DHT_ONESHOT_WAIT_MS, dhtSettings, isPublicHost, normalizeFingerprint } from '../src/cli/dht.js';
import { contactInput } from '../src/cli/commands/contacts.js';
import { HomeDht } from '../src/discovery/home-dht.js';
import { fingerprintFromHex } from '../src/identity/certificate.js';

/** A free UDP port on 127.0.0.1 (bound once, then released). */
async function freePort(): Promise<number> {
  const s = createSocket('udp4');
  await new Promise<void>((r) => s.bind(0, '127.0.0.1', r));
  const { port } = s.address();
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

const withDht = { env: { PEERPOST_NO_DHT: undefined } };

t.test('fingerprints as typed, public hosts, DHT settings', async (t) => {
  const fp = '0a'.repeat(32);
  t.equal(normalizeFingerprint(fp.toUpperCase()), fp);
  t.equal(normalizeFingerprint(fp.toUpperCase().match(/../g)!.join(':')), fp, 'openssl form');
  for (const bad of ['', fp.slice(2), `${fp}0`, fp.match(/../g)!.join('-'), `${fp.slice(0, 62)}zz`, fp.match(/../g)!.join(':').slice(1)]) t.equal(normalizeFingerprint(bad), null, bad);
  t.same(contactInput(fp.toUpperCase()), { fingerprint: fp });
  t.same(contactInput(`${fp.toUpperCase().match(/../g)!.join(':')}@127.0.0.1:7777`), { fingerprint: fp, address: `${fp}@127.0.0.1:7777` });
  t.throws(() => contactInput('abc@127.0.0.1:1'), { code: 'PEERPOST_CONTACT_FINGERPRINT' });
  for (const h of ['203.0.113.7', '8.8.8.8', '2001:db8::1']) t.ok(isPublicHost(h), h);
  for (const h of ['127.0.0.1', '10.1.2.3', '192.168.1.1', '172.16.0.1', '169.254.1.1', '100.64.0.1', '0.0.0.0', '::1', '::', 'fe80::1', 'fd00::1', 'localhost']) t.notOk(isPublicHost(h), h);
  t.same(dhtSettings({}, {}), { enabled: true });
  t.same(dhtSettings({ dht: false }, {}), { enabled: false });
  t.same(dhtSettings({}, { PEERPOST_NO_DHT: '1' }), { enabled: false });
  t.same(dhtSettings({ dht: true }, { PEERPOST_NO_DHT: '1' }), { enabled: true }, '--dht wins over the environment');
  t.same(dhtSettings({}, { PEERPOST_DHT_BOOTSTRAP: '127.0.0.1:1' }), { enabled: true, bootstrap: [{ host: '127.0.0.1', port: 1 }] });
  t.same(dhtSettings({ 'dht-bootstrap': '127.0.0.1:2' }, { PEERPOST_DHT_BOOTSTRAP: '127.0.0.1:1' }).bootstrap, [{ host: '127.0.0.1', port: 2 }]);
  t.throws(() => dhtSettings({ 'dht-bootstrap': 'nope' }, {}), { code: 'PEERPOST_BAD_OPTION' });
});

t.test('contacts add FP: resolved in the DHT, message delivered once', async (t) => {
  const tmp = tempDir();
  t.teardown(tmp.cleanup);
  const tn = await createTestnet(10, { host: '127.0.0.1' });
  t.teardown(() => tn.destroy());
  const bs = tn.bootstrap.map((b) => `${b.host}:${b.port}`).join(',');
  const p1 = ChatProcess.start(['peer', '--home', join(tmp.dir, 'p1'), '--port', '0', '--json']);
  const p2 = ChatProcess.start(['peer', '--home', join(tmp.dir, 'p2'), '--port', '0', '--json']);
  t.teardown(() => p1.stop());
  t.teardown(() => p2.stop());
  const p1Addr = (await p1.waitFor((e) => e.event === 'listening', 'p1 listening')).address as string;
  const p2Addr = (await p2.waitFor((e) => e.event === 'listening', 'p2 listening')).address as string;
  const alice = join(tmp.dir, 'alice');
  const bob = join(tmp.dir, 'bob');

  const before = JSON.parse((await runCli(['id', '--home', alice, '--json'])).stdout) as { fingerprint: string; address: string };
  t.match(before.address, /@/, 'before publishing, the address needs the peer');
  const reg = await runCli(['inbox', '--home', alice, '--peer', p1Addr, '--dht-bootstrap', bs, '--quiet', '0.2'], withDht);
  t.equal(reg.code, 0, reg.stderr);
  t.notMatch(reg.stderr, /not reachable/);
  const after = JSON.parse((await runCli(['id', '--home', alice, '--json'])).stdout) as { fingerprint: string; address: string; hint: string };
  t.equal(after.address, after.fingerprint, 'once published, the fingerprint alone is the address');
  t.equal(after.hint, `${after.fingerprint}@${p1Addr}`);

  const openssl = after.fingerprint.toUpperCase().match(/../g)!.join(':');
  const add = await runCli(['contacts', 'add', openssl, 'alice', '--home', bob, '--peer', p2Addr, '--dht-bootstrap', bs, '--json'], withDht);
  t.equal(add.code, 0, add.stderr);
  t.match(JSON.parse(add.stdout), { petname: 'alice', fingerprint: after.fingerprint, peer: p1Addr, found: 'dht' });

  const sent = await runCli(['send', 'alice', 'hello by fingerprint', '--home', bob, '--dht-bootstrap', bs, '--json'], withDht);
  t.equal(sent.code, 0, sent.stderr);
  const got = await runCli(['inbox', '--home', alice, '--dht-bootstrap', bs, '--json', '--all', '--quiet', '0.5'], withDht);
  const lines = got.stdout.trim().split('\n').filter(Boolean).map((l) => JSON.parse(l) as { text: string });
  t.same(lines.map((m) => m.text), ['hello by fingerprint'], 'arrives exactly once');

  const nobody = 'cd'.repeat(32);
  const missing = await runCli(['contacts', 'add', nobody, 'x', '--home', bob, '--dht-bootstrap', bs], withDht);
  t.equal(missing.code, 1);
  t.match(missing.stderr, /cannot find .* in the DHT/);
  const bad = await runCli(['contacts', 'add', 'AB:CD', 'x', '--home', bob], withDht);
  t.equal(bad.code, 2);
  t.match(bad.stderr, /64 hex characters/);
  const off = await runCli(['contacts', 'add', nobody, 'x', '--home', bob, '--no-dht']);
  t.equal(off.code, 1);
  t.match(off.stderr, /without the DHT/);
});

t.test('an unreachable DHT: one status line, bounded wait, a clear error', async (t) => {
  const tmp = tempDir();
  t.teardown(tmp.cleanup);
  const silent = createSocket('udp4');
  await new Promise<void>((r) => silent.bind(0, '127.0.0.1', r));
  t.teardown(() => silent.close());
  const bs = `127.0.0.1:${silent.address().port}`;
  const p = ChatProcess.start(['peer', '--home', join(tmp.dir, 'p'), '--port', '0', '--json']);
  t.teardown(() => p.stop());
  const pAddr = (await p.waitFor((e) => e.event === 'listening', 'peer listening')).address as string;
  const home = join(tmp.dir, 'h');
  const t0 = Date.now();
  const r = await runCli(['inbox', '--home', home, '--peer', pAddr, '--quiet', '0.2'], { env: { PEERPOST_NO_DHT: undefined, PEERPOST_DHT_BOOTSTRAP: bs } });
  const took = Date.now() - t0;
  t.equal(r.code, 0, r.stderr);
  t.equal(r.stderr.match(/not reachable/g)?.length, 1, `one status line: ${r.stderr}`);
  t.ok(took < DHT_ONESHOT_WAIT_MS + 8000, `finished in ${took} ms`);
  const add = await runCli(['contacts', 'add', 'cd'.repeat(32), 'x', '--home', home, '--dht-bootstrap', bs], withDht);
  t.equal(add.code, 1);
  t.match(add.stderr, /the DHT is not reachable; give FP@HOST:PORT/);
  const id = JSON.parse((await runCli(['id', '--home', home, '--json'])).stdout) as { address: string };
  t.match(id.address, /@/, 'nothing published: the address keeps its peer');
});

t.test('chat: a node publishes with an explicit --advertise; /add FP in another chat', async (t) => {
  const tmp = tempDir();
  t.teardown(tmp.cleanup);
  const tn = await createTestnet(10, { host: '127.0.0.1' });
  t.teardown(() => tn.destroy());
  const bs = tn.bootstrap.map((b) => `${b.host}:${b.port}`).join(',');
  const port = await freePort();
  const a = ChatProcess.start(['node', '--home', join(tmp.dir, 'a'), '--port', String(port), '--advertise', `127.0.0.1:${port}`, '--json', '--dht', '--dht-bootstrap', bs]);
  const b = ChatProcess.start(['node', '--home', join(tmp.dir, 'b'), '--port', '0', '--json', '--dht', '--dht-bootstrap', bs]);
  t.teardown(async () => {
    await a.stop();
    await b.stop();
  });
  const ra = await a.waitFor((e) => e.event === 'ready', 'node a ready');
  await b.waitFor((e) => e.event === 'ready', 'node b ready');
  // Wait, with a bound, until alice's record can be resolved.
  const probe = new HomeDht({ bootstrap: tn.bootstrap });
  t.teardown(() => probe.close());
  let found = false;
  for (let i = 0; i < 20 && !found; i++) found = (await probe.resolve(fingerprintFromHex(ra.fingerprint as string)!, { timeoutMs: 2000 })).ok;
  t.ok(found, "alice's node published its record");
  b.line(`/add ${ra.fingerprint as string} alice`);
  const added = await b.waitFor((e) => e.event === 'contact-added', 'contact added at bob');
  t.equal(added.peer, `127.0.0.1:${port}`, 'the peer comes from the record');
  t.type(added.cert, 'string', 'the certificate came with the record');
  b.line('/msg alice hello from the DHT');
  const got = await a.waitFor((e) => e.event === 'message', 'message at alice');
  t.equal(got.text, 'hello from the DHT');
  // Alice has not added bob: his message is a request, its receipt withheld ('held').
  await b.waitFor((e) => e.event === 'delivery' && e.state === 'held', 'reached alice');
  b.line(`/add ${'ef'.repeat(32)} nobody`);
  const err = await b.waitFor((e) => e.event === 'error', 'error for an unknown fingerprint');
  t.match(err.message, /cannot find .* in the DHT/);
  t.equal(a.events.filter((e) => e.event === 'message').length, 1, 'exactly once');
});
