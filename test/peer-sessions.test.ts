/**
 * Authenticated client sessions at the peer: after registration only SESSION datagrams with a
 * fresh counter and a valid MAC act for a client; its address changes only on one of them; the
 * answers to unproven sources cost a MAC, not a signature; the registration's expensive step is
 * bounded and says BUSY under load, while registered clients are still served.
 */
import t from 'tap';
import { MsgType, WireError, decode, encode } from '../src/protocol/index.js';
import { Peer } from '../src/peer/index.js';
import type { Identity } from '../src/identity/certificate.js';
import { sealSession, sessionTag } from '../src/crypto/session.js';
import { PEER_ADDR, clientAddr, identityNo, makeWorld, seededRandom, Link } from './helpers/link.js';
import { RawClient } from './helpers/raw-client.js';

const blob = (n = 200, fill = 7): Uint8Array => new Uint8Array(n).fill(fill);

t.test('a spoofed POLL, KEEPALIVE or ACK from a registered client\'s address makes the peer send it nothing', async (t) => {
  const { link, peer, clients } = await makeWorld(2);
  const [a, b] = clients as [RawClient, RawClient];
  a.register(PEER_ADDR);
  b.hello(PEER_ADDR);
  link.flush();
  a.autoAck = false;
  // B is A's contact (it holds A's capability), so 16 may wait, beyond a stranger's quota.
  const cap = a.capabilityFor(b.fingerprint);
  for (let i = 0; i < 16; i++) b.deliver(PEER_ADDR, a.fingerprint, blob(1000, i), undefined, cap);
  link.flush();
  link.advance(3 * 3000 + 10); // every push series times out: 16 messages wait
  link.flush();
  const before = link.sentTo(clientAddr(0));
  const spoofs = [
    encode({ type: MsgType.POLL }),
    encode({ type: MsgType.KEEPALIVE, answer: true }),
    encode({ type: MsgType.ACK, ids: [new Uint8Array(16)] }),
    // A SESSION datagram with A's session id (seen on the wire) but a forged tag.
    encode({ type: MsgType.SESSION, sessionId: a.session!.keys.sessionId, counter: 99, inner: { type: MsgType.POLL }, tag: new Uint8Array(16) }),
  ];
  let bytesIn = 0;
  for (const d of spoofs) {
    bytesIn += d.length;
    link.inject(clientAddr(0), PEER_ADDR, d);
  }
  const out = link.sentTo(clientAddr(0)) - before;
  t.equal(out, 0, `nothing sent to the client for ${bytesIn} spoofed bytes (was 16 PUSHes, 17,968 bytes, for a 2-byte POLL)`);
  const d = peer.stats().drops;
  t.equal(d.not_in_session, 3);
  t.equal(d.bad_session_tag, 1);
  t.equal(peer.stats().waitingMessages, 16, 'and nothing acknowledged away');
  // A's own POLL, in its session, gets them.
  a.poll();
  link.flush();
  t.equal(a.pushes.length >= 16, true, 'the real client still gets its messages');
});

t.test('a captured SESSION datagram sent again is refused by its counter', async (t) => {
  const { link, peer, clients } = await makeWorld(1);
  const [a] = clients as [RawClient];
  a.register(PEER_ADDR);
  link.flush();
  link.record = true;
  a.keepalive(true);
  link.flush();
  const captured = link.recorded.find((x) => x.data[1] === MsgType.SESSION && x.to.port === PEER_ADDR.port)!.data;
  const oks = a.oks.length;
  link.inject(clientAddr(0), PEER_ADDR, captured);
  link.inject({ host: '10.66.0.1', port: 1 }, PEER_ADDR, captured);
  t.equal(peer.stats().drops.session_replay, 2, 'replayed from its address and from another one');
  t.equal(a.oks.length, oks, 'no answer');
});

t.test('roaming: the address moves on an authenticated datagram only', async (t) => {
  const { link, peer, clients } = await makeWorld(2);
  const [a, b] = clients as [RawClient, RawClient];
  a.register(PEER_ADDR);
  b.hello(PEER_ADDR);
  link.flush();
  // A's NAT mapping changes: the same client now sends from another address.
  const newAddr = { host: '10.9.0.9', port: 6000 };
  link.remove(clientAddr(0));
  link.add(newAddr, a);
  // An attacker at a third address sends garbage naming A's session: no move.
  const thief = { host: '10.66.0.2', port: 7 };
  link.inject(thief, PEER_ADDR, encode({ type: MsgType.SESSION, sessionId: a.session!.keys.sessionId, counter: 1000, inner: { type: MsgType.POLL }, tag: new Uint8Array(16) }));
  a.keepalive(false);
  link.flush();
  t.equal(peer.stats().drops.path_probe, 1, 'the new address was probed and A answered from it');
  b.deliver(PEER_ADDR, a.fingerprint, blob());
  link.flush();
  t.equal(a.pushes.length, 1, 'the push reached A at its new address');
  t.equal(link.sentTo(thief), 0, 'nothing went to the thief');
  t.equal(peer.stats().drops.bad_session_tag, 1);
});

t.test('a fresh datagram of a client, sent first by an on-path attacker from its own address, does not move the client', async (t) => {
  const { link, peer, clients } = await makeWorld(2);
  const [a, b] = clients as [RawClient, RawClient];
  a.register(PEER_ADDR);
  b.hello(PEER_ADDR);
  link.flush();
  // The attacker captures A's next datagram and races it (the original is lost on the way).
  link.record = true;
  link.filter = (d) => !(d.data[1] === MsgType.SESSION && d.to.port === PEER_ADDR.port);
  a.keepalive(false);
  link.flush();
  link.filter = undefined;
  const captured = link.recorded.find((d) => d.data[1] === MsgType.SESSION && d.to.port === PEER_ADDR.port)!.data;
  const attacker = { host: '10.66.0.3', port: 8 };
  link.inject(attacker, PEER_ADDR, captured);
  t.equal(peer.stats().drops.path_probe, 1, 'the attacker\'s address gets one probe');
  b.deliver(PEER_ADDR, a.fingerprint, blob());
  link.flush();
  t.equal(a.pushes.length, 1, 'the push still goes to A');
  const probeBytes = link.sentTo(attacker);
  t.ok(probeBytes <= captured.length, `the probe (${probeBytes} B) is no larger than the datagram that caused it (${captured.length} B)`);
});

t.test('a reused IP:PORT of a departed client cannot acknowledge its messages away', async (t) => {
  const { link, peer, clients } = await makeWorld(2);
  const [a, b] = clients as [RawClient, RawClient];
  a.register(PEER_ADDR);
  b.hello(PEER_ADDR);
  link.flush();
  // A leaves; another machine gets A's address (NAT port reuse) and acks whatever comes.
  link.remove(clientAddr(0));
  const squatter = new RawClient(await identityNo(8));
  link.add(clientAddr(0), squatter);
  // B is A's contact (it holds A's capability), so five may wait, beyond a stranger's quota.
  const cap = a.capabilityFor(b.fingerprint);
  const ids = [1, 2, 3, 4, 5].map((i) => b.deliver(PEER_ADDR, a.fingerprint, blob(100, i), undefined, cap));
  link.flush();
  squatter.send(PEER_ADDR, { type: MsgType.ACK, ids });
  link.flush();
  t.equal(peer.stats().waitingMessages, 5, 'all five still wait (the squatter holds no session key)');
  // A comes back from a new address and gets all five.
  const back = { host: '10.9.0.10', port: 6001 };
  link.add(back, a);
  a.register(PEER_ADDR);
  link.flush();
  t.equal(new Set(a.pushes.map((p) => Buffer.from(p.id).toString('hex'))).size, 5, '5 of 5 reach the real client');
  t.equal(peer.stats().waitingMessages, 0);
});

t.test('keepalives: answered only when they ask, naming their counter; cheaper than before', async (t) => {
  const { link, clients } = await makeWorld(1);
  const [a] = clients as [RawClient];
  a.register(PEER_ADDR);
  link.flush();
  const before = link.sentTo(clientAddr(0));
  for (let i = 0; i < 3; i++) a.keepalive(false);
  link.flush();
  t.equal(link.sentTo(clientAddr(0)), before, 'no answer to keepalives that do not ask');
  a.keepalive(true);
  link.flush();
  const ok = a.oks.at(-1)!;
  t.equal(Buffer.from(ok).readUInt32BE(4), a.session!.tx, 'the OK names the keepalive\'s counter');
});

t.test('a SESSION datagram is authenticated before its inner datagram is read; a malformed one with a good MAC does not use up its counter', async (t) => {
  const { link, peer, clients } = await makeWorld(1);
  const [a] = clients as [RawClient];
  a.register(PEER_ADDR);
  link.flush();
  const ss = a.session!;
  const counter = ss.tx + 1;
  const good = sealSession(ss.keys.c2p, ss.keys.sessionId, counter, { type: MsgType.KEEPALIVE, answer: true });
  const innerAt = 2 + 8 + 8;
  // The inner KEEPALIVE's flag byte made invalid (3): with the MAC left as it was, and with a MAC made over it.
  const forged = new Uint8Array(good);
  forged[innerAt + 2] = 3;
  link.inject(clientAddr(0), PEER_ADDR, forged);
  t.equal(peer.stats().drops.bad_session_tag, 1, 'a changed byte fails the MAC: the inner datagram is never decoded');
  t.notOk(peer.stats().drops.bad_schema, 'nothing was parsed past the header');
  const signed = new Uint8Array(forged);
  signed.set(sessionTag(ss.keys.c2p, signed.subarray(0, signed.length - 16)), signed.length - 16);
  link.inject(clientAddr(0), PEER_ADDR, signed);
  t.equal(peer.stats().drops.bad_schema, 1, 'the client\'s own malformed datagram is counted as malformed');
  const oks = a.oks.length;
  link.inject(clientAddr(0), PEER_ADDR, good);
  link.flush();
  t.equal(a.oks.length, oks + 1, 'the counter was not used up: the good keepalive with it is answered');
  t.equal(Buffer.from(a.oks.at(-1)!).readUInt32BE(4), counter, 'naming that counter');
  t.equal(peer.stats().drops.session_replay ?? 0, 0);
});

/** A peer identity whose signatures are counted. */
async function countingIdentity(): Promise<{ identity: Identity; signatures: () => number }> {
  const base = await identityNo(0);
  let n = 0;
  const identity = Object.create(base) as Identity;
  identity.sign = (data: Uint8Array) => {
    n++;
    return base.sign(data);
  };
  return { identity, signatures: () => n };
}

t.test('HELLO and REGISTER answers cost no signature: one per handshake-key epoch', async (t) => {
  const start = 1_800_000_000_000;
  const { identity, signatures } = await countingIdentity();
  const link = new Link(start);
  const peer = new Peer({ identity, random: seededRandom(3), rateLimit: null }, start);
  link.add(PEER_ADDR, peer);
  const cert = (await identityNo(1)).cert;
  for (let i = 0; i < 1000; i++) {
    const from = { host: `198.18.${i >> 8}.${i & 255}`, port: 1000 + i };
    link.inject(from, PEER_ADDR, encode({ type: MsgType.HELLO, nonce: blob(16, i & 255) }));
    link.inject(from, PEER_ADDR, encode({ type: MsgType.REGISTER, cert, nonce: blob(16, i & 255) }));
  }
  t.equal(signatures(), 1, '2,000 answers to 1,000 sources, 1 signature (the epoch key)');
  link.advance(120_000);
  link.inject({ host: '198.18.9.9', port: 1 }, PEER_ADDR, encode({ type: MsgType.REGISTER, cert, nonce: blob(16) }));
  t.equal(signatures(), 2, 'the next epoch signs its new key once');
  const answers = peer.stats().datagramsOut;
  t.equal(answers, 2001);
});

t.test('under load: REGISTER_PROOF gets BUSY beyond proofRate, registered clients keep being served', async (t) => {
  const { link, peer, clients } = await makeWorld(4, { proofRate: { perSecond: 1, burst: 2 } });
  const [a, b, c, d] = clients as [RawClient, RawClient, RawClient, RawClient];
  a.register(PEER_ADDR);
  b.register(PEER_ADDR);
  c.register(PEER_ADDR);
  link.flush();
  t.ok(a.registered && b.registered, 'the burst');
  t.notOk(c.registered);
  t.equal(c.errors.at(-1)?.code, WireError.BUSY, 'the peer says it is busy');
  t.match(c.errors.at(-1)?.detail, /busy/);
  d.hello(PEER_ADDR);
  link.flush();
  a.autoAck = true;
  d.deliver(PEER_ADDR, a.fingerprint, blob());
  a.keepalive(true);
  link.flush();
  t.equal(a.pushes.length, 1, 'a registered client still gets its messages');
  t.equal(a.oks.length, 2, 'and its keepalive answered');
  link.advance(1000);
  c.register(PEER_ADDR);
  link.flush();
  t.ok(c.registered, 'a second later there is room again');
  t.equal(peer.stats().errorsSent.BUSY, 1);
});

t.test('REGISTER_AGAIN names the unknown session, and a client takes only its own', async (t) => {
  const { link, clients } = await makeWorld(2);
  const [a, b] = clients as [RawClient, RawClient];
  a.register(PEER_ADDR);
  b.register(PEER_ADDR);
  link.flush();
  // A spoofed REGISTER_AGAIN naming another session is ignored by A.
  link.inject(PEER_ADDR, clientAddr(0), encode({ type: MsgType.REGISTER_AGAIN, sessionId: b.session!.keys.sessionId }));
  t.equal(a.registerAgainCount, 0);
  // A session the peer does not know is answered REGISTER_AGAIN with its id, 10 bytes.
  link.record = true;
  const d = sealSession(new Uint8Array(32), new Uint8Array(8).fill(9), 1, { type: MsgType.POLL });
  link.inject({ host: '10.77.0.1', port: 1 }, PEER_ADDR, d);
  const ra = link.recorded.find((x) => x.data[1] === MsgType.REGISTER_AGAIN)!;
  t.equal(ra.data.length, 10);
  const r = decode(ra.data);
  t.same(r.ok && r.msg.type === MsgType.REGISTER_AGAIN ? [...r.msg.sessionId] : null, new Array(8).fill(9));
});

t.test('a capability verified from an address is taken from it again without a MAC; from another address it is checked', async (t) => {
  const { link, peer, clients } = await makeWorld(3);
  const [a, b, c] = clients as [RawClient, RawClient, RawClient];
  a.register(PEER_ADDR);
  b.hello(PEER_ADDR);
  c.hello(PEER_ADDR);
  link.flush();
  const cap = a.capabilityFor(b.fingerprint);
  b.deliver(PEER_ADDR, a.fingerprint, blob(100, 1), undefined, cap);
  link.flush();
  const wrong = { capId: cap.capId, capKey: new Uint8Array(32) };
  c.deliver(PEER_ADDR, a.fingerprint, blob(100, 2), undefined, wrong);
  link.flush();
  t.equal(peer.stats().drops.bad_capability, 1, 'a wrong tag from another address is refused (counted, taken as a stranger\'s)');
  b.deliver(PEER_ADDR, a.fingerprint, blob(100, 3), undefined, wrong);
  link.flush();
  t.equal(peer.stats().drops.bad_capability, 1, 'from the address that showed a valid tag in this cookie window it is not checked again');
});
