/**
 * Home records on a private HyperDHT of 10 nodes on 127.0.0.1 (real UDP): a record published by
 * one node is resolved by another; forged values announced on the same topic are refused; a held
 * seq refuses an older record; an unreachable bootstrap gives one status line and answers within
 * the bound.
 */
import t from 'tap';
import createTestnet from 'hyperdht/testnet.js';
import HyperDHT from 'hyperdht';
import { createSocket } from 'node:dgram';
import { generateIdentity } from '../src/identity/certificate.js';
import { HomeDht, HomePublisher, identityKeyPair, parseBootstrap } from '../src/discovery/home-dht.js';
import { encodeHomeBody, homeSignatureInput, homeTopic, signHomeRecord } from '../src/discovery/home-record.js';
import { cborEncode } from '../src/protocol/cbor.js';

const peerFp = new Uint8Array(32).fill(7);

t.test('publish and resolve on a testnet of 10 nodes; forgeries refused', async (t) => {
  const tn = await createTestnet(10, { host: '127.0.0.1' });
  t.teardown(() => tn.destroy());
  const alice = await generateIdentity({ commonName: 'alice' });
  const mallory = await generateIdentity({ commonName: 'mallory' });
  const a = new HomeDht({ bootstrap: tn.bootstrap });
  const b = new HomeDht({ bootstrap: tn.bootstrap });
  t.teardown(async () => { await a.close(); await b.close(); });
  t.equal(await a.ready(), 'ready');
  const pub = new HomePublisher(a, alice);
  t.teardown(() => pub.stop());
  const p1 = await pub.set([{ host: '127.0.0.1', port: 7001, fingerprint: peerFp }]);
  t.ok(p1.ok, 'published');
  const r1 = await b.resolve(alice.fingerprint);
  t.ok(r1.ok, r1.ok ? 'resolved' : r1.detail);
  if (!r1.ok) return;
  t.same(r1.home.record.peers.map((p) => p.port), [7001]);
  t.same(Buffer.from(r1.home.cert), Buffer.from(alice.cert), 'the certificate comes with the value');

  // The peer list changes: the new record (newer seq) replaces the old one.
  await pub.set([{ host: '127.0.0.1', port: 7002, fingerprint: peerFp }, { host: '127.0.0.1', port: 7001, fingerprint: peerFp }]);
  const r2 = await b.resolve(alice.fingerprint);
  t.ok(r2.ok && r2.home.record.seq > r1.home.record.seq, 'newer seq');
  t.same(r2.ok && r2.home.record.peers.map((p) => p.port), [7002, 7001]);
  // A sender holding that seq refuses the same record again.
  const r3 = await b.resolve(alice.fingerprint, { heldSeq: r2.ok ? r2.home.record.seq : 0 });
  t.match(r3, { ok: false, reason: 'invalid' }, 'held seq: nothing newer');

  // Mallory announces on alice's topic with her own key: (1) a record naming alice's fingerprint,
  // carrying alice's certificate, signed by mallory; (2) alice's genuine value under mallory's key.
  const m = new HyperDHT({ bootstrap: tn.bootstrap });
  t.teardown(() => m.destroy());
  const mkp = identityKeyPair(mallory);
  const body = encodeHomeBody({ fingerprint: alice.fingerprint, peers: [{ host: '127.0.0.1', port: 6666, fingerprint: peerFp }], seq: Number.MAX_SAFE_INTEGER - 1, timeMs: 1 });
  const forged = cborEncode([body, mallory.sign(homeSignatureInput(body)), alice.cert]);
  await m.mutablePut(mkp, Buffer.from(forged), { seq: Number.MAX_SAFE_INTEGER - 1 });
  await m.announce(Buffer.from(homeTopic(alice.fingerprint)), mkp).finished();
  const r4 = await b.resolve(alice.fingerprint);
  t.ok(r4.ok, 'alice still resolves');
  t.same(r4.ok && r4.home.record.peers.map((p) => p.port), [7002, 7001], "mallory's record is not taken");
  const mallory2 = await generateIdentity({ commonName: 'mallory 2' });
  const mkp2 = identityKeyPair(mallory2);
  await m.mutablePut(mkp2, Buffer.from(signHomeRecord(alice, { fingerprint: alice.fingerprint, peers: [{ host: '127.0.0.1', port: 6667, fingerprint: peerFp }], seq: 5, timeMs: 1 })), { seq: Number.MAX_SAFE_INTEGER });
  await m.announce(Buffer.from(homeTopic(alice.fingerprint)), mkp2).finished();
  const r5 = await b.resolve(alice.fingerprint, { heldSeq: r2.ok ? r2.home.record.seq : 0 });
  // Both of mallory's values carry alice's certificate under another key (wrong_key); alice's own is not newer.
  t.match(r5, { ok: false, reason: 'invalid' }, 'only forged or old values: refused with their reasons');
  t.ok(!r5.ok && r5.refused?.includes('stale_seq') && r5.refused.filter((x) => x === 'wrong_key').length === 2, `reasons: ${!r5.ok ? r5.refused?.join(',') : ''}`);

  const unknown = await generateIdentity({ commonName: 'nobody' });
  t.match(await b.resolve(unknown.fingerprint), { ok: false, reason: 'not-found' });
});

t.test('an unreachable bootstrap: one status line, answers within the bound', async (t) => {
  // A bound UDP port that never answers.
  const silent = createSocket('udp4');
  await new Promise<void>((r) => silent.bind(0, '127.0.0.1', r));
  t.teardown(() => silent.close());
  const lines: string[] = [];
  const d = new HomeDht({ bootstrap: parseBootstrap(`127.0.0.1:${silent.address().port}`), readyWaitMs: 1500, onStatus: (_s, l) => lines.push(l) });
  t.teardown(() => d.close());
  const alice = await generateIdentity({ commonName: 'alice' });
  const t0 = Date.now();
  const r = await d.resolve(alice.fingerprint);
  const p = await d.publish(alice, { fingerprint: alice.fingerprint, peers: [{ host: '127.0.0.1', port: 1, fingerprint: peerFp }], seq: 1, timeMs: 1 });
  const took = Date.now() - t0;
  t.match(r, { ok: false, reason: 'dht-unreachable' });
  t.match(p, { ok: false, reason: 'dht-unreachable' });
  t.ok(took < 4000, `answered in ${took} ms`);
  t.equal(lines.length, 1, 'one status line');
  t.match(lines[0], /not reachable/);
});

t.test('parseBootstrap', async (t) => {
  t.same(parseBootstrap('127.0.0.1:49737, node1.example:1,[::1]:7'), [{ host: '127.0.0.1', port: 49737 }, { host: 'node1.example', port: 1 }, { host: '::1', port: 7 }]);
  for (const bad of ['', 'x', '1.2.3.4:0', '1.2.3.4:70000', 'a b:1']) t.throws(() => parseBootstrap(bad), TypeError, bad);
});
