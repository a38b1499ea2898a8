/**
 * Several home peers per client, and failover at the sender: the real Client and Peer machines on
 * the virtual network with injected time. Alice is registered with P1 and P2, Bob with P3; Bob's
 * messages reach Alice through whichever of her peers answers, exactly once, and follow her home
 * record (Client.homeResolved) when she moves.
 */
import t, { type Test } from 'tap';
import { Peer } from '../src/peer/index.js';
import { CLIENT_DEFAULTS, Client, MemoryClientStore, type ClientEvent, type ClientOptions } from '../src/client/index.js';
import { Identity, generateIdentity } from '../src/identity/certificate.js';
import type { HomeRecord } from '../src/core/home.js';
import { addrKey, type Addr } from '../src/core/types.js';
import { VNet } from './helpers/vnet.js';

const START_MS = Date.UTC(2026, 0, 1);
const P1: Addr = { host: '10.0.0.1', port: 7000 };
const P2: Addr = { host: '10.0.0.2', port: 7000 };
const P3: Addr = { host: '10.0.0.3', port: 7000 };
const A: Addr = { host: '10.0.1.1', port: 5000 };
const B: Addr = { host: '10.0.2.1', port: 5000 };

type Who = 'p1' | 'p2' | 'p3' | 'a' | 'b';
const ids = {} as Record<Who, Identity>;

t.before(async () => {
  const notBefore = new Date(START_MS - 86400_000);
  const who: Who[] = ['p1', 'p2', 'p3', 'a', 'b'];
  const made = await Promise.all(who.map(() => generateIdentity({ notBefore })));
  who.forEach((k, i) => (ids[k] = made[i]!));
});

interface World {
  net: VNet;
  events: { a: ClientEvent[]; b: ClientEvent[] };
  a(): Client;
  b(): Client;
  /** Resolutions Bob's client asked for, in order. */
  asked: string[];
}

function world(seed: string, alice: { peer: Addr; morePeers?: Addr[] }, extra: Partial<ClientOptions> = {}): World {
  const net = new VNet({ seed, startMs: START_MS, faults: { delayMs: 5 } });
  for (const [addr, id, label] of [[P1, ids.p1, 'p1'], [P2, ids.p2, 'p2'], [P3, ids.p3, 'p3']] as const) {
    net.add(addr, new Peer({ identity: id, random: net.random(label), rateLimit: null }, net.now));
  }
  net.add(A, new Client({ identity: ids.a, ...alice, store: new MemoryClientStore(), random: net.random('a'), ...extra }, net.now));
  net.add(B, new Client({ identity: ids.b, peer: P3, store: new MemoryClientStore(), random: net.random('b'), ...extra }, net.now));
  const w: World = {
    net, events: { a: [], b: [] }, asked: [],
    a: () => net.machine<Client>(A),
    b: () => net.machine<Client>(B),
  };
  w.a().resolveHomes(true);
  w.b().resolveHomes(true);
  const step = net.step.bind(net);
  net.step = (limit?: number) => {
    const r = step(limit);
    for (let e = w.a().pollEvent(); e; e = w.a().pollEvent()) w.events.a.push(e);
    for (let e = w.b().pollEvent(); e; e = w.b().pollEvent()) w.events.b.push(e);
    for (let fp = w.b().pollHomeRequest(); fp; fp = w.b().pollHomeRequest()) w.asked.push(fp);
    return r;
  };
  return w;
}

function record(peers: Addr[], seq: number): HomeRecord {
  const fpOf: Record<string, Identity> = { [addrKey(P1)]: ids.p1, [addrKey(P2)]: ids.p2, [addrKey(P3)]: ids.p3 };
  return { fingerprint: ids.a.fingerprint, peers: peers.map((p) => ({ ...p, fingerprint: fpOf[addrKey(p)]!.fingerprint })), seq, timeMs: START_MS + seq };
}

/** Both registered everywhere, contacts of each other (certificates given), cards exchanged. */
function connect(t: Test, w: World, hint: Addr): void {
  t.ok(w.net.runUntil(() => w.a().peers().every((p) => p.registered) && w.b().registered, 120_000), 'registered with every peer');
  w.a().addContact(w.net.now, `${ids.b.fingerprintHex}@${addrKey(P3)}`, 'bob', ids.b.cert);
  w.b().addContact(w.net.now, `${ids.a.fingerprintHex}@${addrKey(hint)}`, 'alice', ids.a.cert);
  t.ok(w.net.runUntil(() => w.b().outbox().length === 0 && cardsAcked(w), 300_000), 'cards exchanged');
}

function cardsAcked(w: World): boolean {
  // Internal CARDs are not in outbox(); a quiet transfer timer means they are done.
  return w.b().stats().transfers === 0 && w.a().stats().transfers === 0;
}

function shown(w: World, id: string): number {
  return w.events.a.filter((e) => e.type === 'message' && e.id === id).length;
}

/** Send one message from Bob to Alice; returns its id and how long until it was delivered (or -1). */
function sendAndWait(w: World, text: string, maxMs = 10 * 60_000): { id: string; ms: number } {
  const at = w.net.now;
  const [id] = w.b().send(w.net.now, ['alice'], text);
  const ok = w.net.runUntil(() => w.b().messageState(id!)?.state === 'delivered', maxMs);
  return { id: id!, ms: ok ? w.net.now - at : -1 };
}

t.test('a client registered with two peers collects from both, each message shown once', async (t) => {
  const w = world('two-peers', { peer: P1, morePeers: [P2] });
  connect(t, w, P2);
  t.same(w.a().peers().map((p) => p.peer), [addrKey(P1), addrKey(P2)], 'both peers, in order');
  t.same(w.a().homePeers().map((p) => `${p.host}:${p.port}`), [addrKey(P1), addrKey(P2)], 'the home a record announces');
  t.ok(w.a().homePeers().every((p) => p.fingerprint.length === 32), 'with each peer\'s pinned fingerprint');
  const m = sendAndWait(w, 'through P2');
  t.ok(m.ms >= 0, 'delivered through the second peer');
  t.equal(shown(w, m.id), 1, 'shown once');
  // The same message again through P1 (Bob learns Alice's record, P2 is taken away).
  w.b().homeResolved(w.net.now, ids.a.fingerprintHex, record([P1, P2], 1));
  const again = sendAndWait(w, 'through P1');
  t.ok(again.ms >= 0, 'delivered through the first peer of her record');
  t.equal(shown(w, again.id), 1, 'shown once');
  w.net.run(5 * 60_000);
  t.equal(w.events.a.filter((e) => e.type === 'message').length, 2, 'no message twice');
});

t.test('setPeers: a new peer is registered with, a removed one is no longer kept alive, home-changed is emitted', async (t) => {
  const w = world('set-peers', { peer: P1, morePeers: [P2] }, { keepaliveIntervalMs: 10_000 });
  t.ok(w.net.runUntil(() => w.a().peers().every((p) => p.registered), 120_000), 'registered with P1 and P2');
  w.events.a.length = 0;
  w.a().setPeers(w.net.now, [P3]);
  for (let e = w.a().pollEvent(); e; e = w.a().pollEvent()) w.events.a.push(e);
  t.same(w.events.a.find((e) => e.type === 'home-changed'), { type: 'home-changed', peers: [addrKey(P3)] }, 'home-changed names the new list');
  t.equal(w.a().peerKey, addrKey(P3), 'the first peer is P3 now');
  t.equal(w.a().senderPeer, addrKey(P3), 'and our messages name it');
  t.ok(w.net.runUntil(() => w.a().peers()[0]?.registered === true, 120_000), 'registered with P3');
  let toOld = 0;
  const prev = w.net.onDeliver;
  w.net.onDeliver = (d, at) => {
    prev?.(d, at);
    if (addrKey(d.from) === addrKey(A) && (addrKey(d.to) === addrKey(P1) || addrKey(d.to) === addrKey(P2))) toOld++;
  };
  w.net.run(5 * 60_000);
  t.equal(toOld, 0, 'nothing more to P1 or P2');
  t.throws(() => w.a().setPeers(w.net.now, []), { code: 'PEERPOST_NO_PEER' });
  t.throws(() => w.a().setPeers(w.net.now, [P1, P1]), { code: 'PEERPOST_PEER_ADDRESS' });
  t.throws(() => w.a().setPeers(w.net.now, Array.from({ length: CLIENT_DEFAULTS.homePeersMax + 1 }, (_, i) => ({ host: '10.9.0.1', port: 1000 + i }))), { code: 'PEERPOST_TOO_MANY_PEERS' });
});

t.test('the first peer of a record stops answering: the next one takes the message, exactly once', async (t) => {
  const w = world('silent-first', { peer: P1, morePeers: [P2] });
  connect(t, w, P1);
  t.ok(w.b().homeResolved(w.net.now, ids.a.fingerprintHex, record([P1, P2], 1)), 'record taken');
  t.notOk(w.b().homeResolved(w.net.now, ids.a.fingerprintHex, record([P3], 1)), 'a record that is not newer is refused');
  t.same(w.b().homeOf(ids.a.fingerprintHex, addrKey(P1)), [addrKey(P1), addrKey(P2)], 'her home, in order');
  w.net.setUp(P1, false);
  w.asked.length = 0;
  const m = sendAndWait(w, 'P1 is gone');
  t.ok(m.ms >= 0, `delivered through P2 after ${m.ms} ms`);
  t.ok(m.ms < 60_000, 'within the retransmission schedule');
  t.equal(shown(w, m.id), 1, 'shown once');
  t.ok((w.b().stats().drops.home_peer_silent ?? 0) >= 1, 'counted as a failover');
  t.same(w.asked, [ids.a.fingerprintHex], 'her home was asked for again, once');
  const next = sendAndWait(w, 'and the next one');
  t.ok(next.ms >= 0 && next.ms < 5_000, `the next message goes straight to P2 (${next.ms} ms)`);
  w.net.setUp(P1, true);
  w.net.run(10 * 60_000);
  t.equal(w.events.a.filter((e) => e.type === 'message').length, 2, 'nothing shown twice, even once P1 is back');
});

t.test('the hint peer answers the recipient is not there: the resolved record moves the message', async (t) => {
  const w = world('moved', { peer: P1 });
  connect(t, w, P1);
  // Alice moves to P2 only; P1 still runs and holds what comes for her.
  w.a().setPeers(w.net.now, [P2]);
  t.ok(w.net.runUntil(() => w.a().peers()[0]?.registered === true, 120_000), 'Alice registered with P2');
  w.asked.length = 0;
  const [id] = w.b().send(w.net.now, ['alice'], 'where are you');
  // P1 still has her old registration: it holds the message, or tries to push it to her old
  // session until that times out; either way Bob asks for her home.
  t.ok(w.net.runUntil(() => w.asked.length > 0, 60_000), 'P1 does not get it to her: Bob asks for her home');
  t.not(w.b().messageState(id!)?.state, 'delivered', 'not delivered meanwhile');
  t.equal(w.asked[0], ids.a.fingerprintHex);
  const at = w.net.now;
  w.b().homeResolved(w.net.now, ids.a.fingerprintHex, record([P2], 2));
  t.ok(w.net.runUntil(() => w.b().messageState(id!)?.state === 'delivered', 60_000), `delivered through P2, ${w.net.now - at} ms after the record came`);
  t.equal(shown(w, id!), 1, 'shown once');
  // She comes back to P1 as well: P1 pushes its held copy; dedupe keeps it once.
  w.a().setPeers(w.net.now, [P2, P1]);
  w.net.run(10 * 60_000);
  t.equal(shown(w, id!), 1, 'still shown once after P1 pushed its copy');
});

t.test('every peer of the record is down: queued, recipient-unreachable, until a record lists a live peer', async (t) => {
  const w = world('all-down', { peer: P1, morePeers: [P2] });
  connect(t, w, P1);
  w.b().homeResolved(w.net.now, ids.a.fingerprintHex, record([P1, P2], 1));
  w.net.setUp(P1, false);
  w.net.setUp(P2, false);
  const [id] = w.b().send(w.net.now, ['alice'], 'anyone?');
  w.net.run(5 * 60_000);
  t.same(w.b().messageState(id!), { state: 'queued', reason: 'recipient-unreachable' }, 'queued, recipient-unreachable');
  t.ok(w.asked.length >= 2, `her home asked for again while unreachable (${w.asked.length} times)`);
  t.ok(w.asked.length <= 1 + (5 * 60_000) / CLIENT_DEFAULTS.homeResolveIntervalMs, 'at most once per homeResolveIntervalMs');
  w.a().setPeers(w.net.now, [P3]);
  t.ok(w.net.runUntil(() => w.a().peers()[0]?.registered === true, 120_000), 'Alice moved to P3');
  const at = w.net.now;
  w.b().homeResolved(w.net.now, ids.a.fingerprintHex, record([P3], 2));
  t.ok(w.net.runUntil(() => w.b().messageState(id!)?.state === 'delivered', 60_000), `delivered ${w.net.now - at} ms after the new record`);
  t.equal(shown(w, id!), 1, 'shown once');
});

t.test('resolutions are bounded: one in flight per recipient, unanswered ones time out', async (t) => {
  const w = world('bounds', { peer: P1 }, { homeResolveTimeoutMs: 5_000, homeResolveIntervalMs: 20_000 });
  connect(t, w, P1);
  w.net.setUp(P1, false);
  const asked: number[] = [];
  const prevStep = w.net.step;
  w.net.step = (limit?: number) => {
    const n = w.asked.length;
    const r = prevStep(limit);
    if (w.asked.length > n) asked.push(w.net.now);
    return r;
  };
  const [id] = w.b().send(w.net.now, ['alice'], 'nobody answers the resolutions');
  w.net.run(3 * 60_000);
  t.same(w.b().messageState(id!), { state: 'queued', reason: 'recipient-unreachable' }, 'the lone hint is down: unreachable');
  t.ok(asked.length >= 2, 'asked again after the timeout');
  for (let i = 1; i < asked.length; i++) t.ok(asked[i]! - asked[i - 1]! >= 20_000, 'never twice within homeResolveIntervalMs');
  t.throws(() => w.b().homeResolved(w.net.now, ids.a.fingerprintHex, { ...record([P2], 5), fingerprint: ids.b.fingerprint }), { code: 'PEERPOST_HOME_RECORD' }, 'a record of another fingerprint is refused');
  t.throws(() => w.b().homeResolved(w.net.now, ids.a.fingerprintHex, { ...record([P2], 5), peers: [] }), { code: 'PEERPOST_HOME_RECORD' });
  t.throws(() => w.b().homeResolved(w.net.now, 'nope', null), { code: 'PEERPOST_CONTACT_FINGERPRINT' });
  w.net.setUp(P1, true);
  t.ok(w.net.runUntil(() => w.b().messageState(id!)?.state === 'delivered', 5 * 60_000), 'delivered when the peer is back');
  t.equal(shown(w, id!), 1, 'shown once');
});

t.test('a certificate lookup at a peer that does not have the contact follows the resolved record', async (t) => {
  const w = world('lookup', { peer: P2 });
  t.ok(w.net.runUntil(() => w.a().registered && w.b().registered, 120_000), 'registered');
  w.b().addContact(w.net.now, `${ids.a.fingerprintHex}@${addrKey(P1)}`, 'alice');
  t.ok(w.net.runUntil(() => w.asked.length > 0, 60_000), 'P1 has no such client: Bob asks for her home');
  t.notOk(w.b().contacts()[0]?.cert, 'no certificate yet');
  w.b().homeResolved(w.net.now, ids.a.fingerprintHex, record([P2], 1));
  t.ok(w.net.runUntil(() => !!w.b().contacts()[0]?.cert, 60_000), 'the certificate comes from P2');
  w.a().addContact(w.net.now, `${ids.b.fingerprintHex}@${addrKey(P3)}`, 'bob', ids.b.cert);
  const m = sendAndWait(w, 'found you');
  t.ok(m.ms >= 0, 'delivered through P2');
  t.equal(shown(w, m.id), 1, 'shown once');
});

t.test('a client whose embedding does not answer resolutions asks for none, and fails over along a record given', async (t) => {
  const w = world('no-resolver', { peer: P1, morePeers: [P2] });
  w.b().resolveHomes(false);
  connect(t, w, P1);
  w.b().homeResolved(w.net.now, ids.a.fingerprintHex, record([P1, P2], 1));
  w.net.setUp(P1, false);
  w.asked.length = 0;
  const m = sendAndWait(w, 'no resolver');
  t.ok(m.ms >= 0, 'delivered through P2');
  t.same(w.asked, [], 'no resolution asked for');
});

t.test('a receipt held at the peer the message named, which its sender has left, goes on at once to the sender\'s home', async (t) => {
  // Bob waits for P1's answer (P1 answers once its push to her old session has timed out).
  const w = world('receipt-moved', { peer: P1 }, { homeFailoverTries: 10 });
  connect(t, w, P1);
  // Alice's message names P1; she moves to P2 only, and Bob knows her new record, before his
  // receipt goes back. P1 still runs and keeps what comes for her.
  const [id] = w.a().send(w.net.now, ['bob'], 'sent from P1');
  w.a().setPeers(w.net.now, [P2]);
  w.b().homeResolved(w.net.now, ids.a.fingerprintHex, record([P2], 2));
  t.ok(w.net.runUntil(() => w.a().messageState(id!)?.state === 'delivered', 30_000),
    'the receipt P1 held goes on to P2: delivered before her first receipt wait is over');
  t.equal(w.events.b.filter((e) => e.type === 'message' && e.id === id).length, 1, 'shown once');
});
