/**
 * Two clients on two peers (the real Peer, the real seal) over the virtual network: exactly-once
 * delivery under loss, duplication and reordering, peer and client restarts, chunking.
 */
import t, { type Test } from 'tap';
import { Peer } from '../src/peer/index.js';
import { CLIENT_DEFAULTS, Client, MemoryClientStore, RETENTION_INTERVAL_MS, emptyBatch, type ClientEvent, type ClientOptions, type KeyedField } from '../src/client/index.js';
import { randomBytes } from 'node:crypto';
import { Identity, fingerprintFromHex, generateIdentity } from '../src/identity/certificate.js';
import { seal } from '../src/crypto/seal.js';
import { decode, encode } from '../src/protocol/codec.js';
import { capabilityField, capabilityId, capabilityKey } from '../src/crypto/session.js';
import { MsgType, WireError } from '../src/protocol/constants.js';
import { ContentKind, encodeText } from '../src/client/content.js';
import type { Addr } from '../src/core/types.js';
import { VNet, type Faults } from './helpers/vnet.js';

const START_MS = Date.UTC(2026, 0, 1);
const P1: Addr = { host: '10.0.0.1', port: 7000 };
const P2: Addr = { host: '10.0.0.2', port: 7000 };
const A: Addr = { host: '10.0.1.1', port: 5000 };
const B: Addr = { host: '10.0.2.1', port: 5000 };

type Who = 'p1' | 'p2' | 'a' | 'b' | 'm' | 'p3';
const ids: Record<Who, Identity> = {} as Record<Who, Identity>;

t.before(async () => {
  const notBefore = new Date(START_MS - 86400_000);
  const who: Who[] = ['p1', 'p2', 'a', 'b', 'm', 'p3'];
  const made = await Promise.all(who.map(() => generateIdentity({ notBefore })));
  who.forEach((k, i) => (ids[k] = made[i]!));
});

interface World {
  net: VNet;
  storeA: MemoryClientStore;
  storeB: MemoryClientStore;
  events: { a: ClientEvent[]; b: ClientEvent[] };
  a(): Client;
  b(): Client;
  newClient(which: 'a' | 'b'): Client;
  restartPeer(which: 'p1' | 'p2', identity?: Identity): void;
  drain(): void;
}

function world(seed: number | string, faults: Partial<Faults> = {}, extra: Partial<ClientOptions> = {}): World {
  const net = new VNet({ seed, startMs: START_MS, faults });
  const mkPeer = (id: Identity, label: string): Peer => new Peer({ identity: id, random: net.random(label), rateLimit: null }, net.now);
  net.add(P1, mkPeer(ids.p1, 'p1'));
  net.add(P2, mkPeer(ids.p2, 'p2'));
  const storeA = new MemoryClientStore();
  const storeB = new MemoryClientStore();
  const events = { a: [] as ClientEvent[], b: [] as ClientEvent[] };
  let gen = 0;
  const newClient = (which: 'a' | 'b'): Client =>
    new Client(
      {
        identity: which === 'a' ? ids.a : ids.b,
        peer: which === 'a' ? P1 : P2,
        store: which === 'a' ? storeA : storeB,
        random: net.random(`${which}${gen++}`),
        ...extra,
      },
      net.now,
    );
  net.add(A, newClient('a'));
  net.add(B, newClient('b'));
  const w: World = {
    net, storeA, storeB, events,
    a: () => net.machine<Client>(A),
    b: () => net.machine<Client>(B),
    newClient,
    restartPeer: (which, identity) =>
      net.replace(which === 'p1' ? P1 : P2, mkPeer(identity ?? (which === 'p1' ? ids.p1 : ids.p2), `${which}-${gen++}`)),
    drain: () => {
      for (let e = w.a().pollEvent(); e; e = w.a().pollEvent()) events.a.push(e);
      for (let e = w.b().pollEvent(); e; e = w.b().pollEvent()) events.b.push(e);
    },
  };
  const origStep = net.step.bind(net);
  net.step = (limit?: number) => {
    const r = origStep(limit);
    w.drain();
    return r;
  };
  return w;
}

function registered(w: World): boolean {
  return w.a().registered && w.b().registered;
}

/** Register both, exchange contacts (certificates fetched over the network). */
function connect(w: World, t: Test): void {
  t.ok(w.net.runUntil(() => registered(w), 600_000), 'both registered');
  w.a().addContact(w.net.now, `${ids.b.fingerprintHex}@10.0.0.2:7000`, 'bob');
  w.b().addContact(w.net.now, `${ids.a.fingerprintHex}@10.0.0.1:7000`, 'alice');
  t.ok(w.net.runUntil(() => !!w.a().contacts()[0]?.cert && !!w.b().contacts()[0]?.cert, 300_000), 'certificates fetched');
  const cardsDone = (): boolean =>
    w.storeA.load()?.cardsAcked?.[ids.b.fingerprintHex] !== undefined && w.storeB.load()?.cardsAcked?.[ids.a.fingerprintHex] !== undefined;
  t.ok(w.net.runUntil(cardsDone, 600_000), 'cards exchanged: each holds the other\'s capability');
  t.ok(w.storeA.load()?.caps?.[ids.b.fingerprintHex] && w.storeB.load()?.caps?.[ids.a.fingerprintHex]);
}

function messages(evs: ClientEvent[]): Array<Extract<ClientEvent, { type: 'message' }>> {
  return evs.filter((e): e is Extract<ClientEvent, { type: 'message' }> => e.type === 'message');
}

function allDelivered(c: Client, idsSent: string[]): boolean {
  return idsSent.every((id) => c.messageState(id)?.state === 'delivered');
}

/** Every sent id arrives exactly once with its text, and ends `delivered`. */
function checkExactlyOnce(t: Test, sender: Client, recvEvents: ClientEvent[], sent: Map<string, string>): void {
  const got = messages(recvEvents);
  const counts = new Map<string, number>();
  for (const m of got) counts.set(m.id, (counts.get(m.id) ?? 0) + 1);
  let bad = 0;
  for (const [id, text] of sent) {
    if (counts.get(id) !== 1) bad++;
    const m = got.find((x) => x.id === id);
    if (m && m.text !== text) bad++;
    if (sender.messageState(id)?.state !== 'delivered') bad++;
  }
  t.equal(bad, 0, `all ${sent.size} messages shown exactly once and delivered`);
  t.equal(got.length, sent.size, 'no extra message shown');
}

t.test('two clients on two peers exchange messages both ways', async (t) => {
  const w = world('basic');
  connect(w, t);
  const sent = new Map<string, string>();
  for (let i = 0; i < 5; i++) {
    const [id] = w.a().send(w.net.now, ['bob'], `hello ${i}`);
    sent.set(id!, `hello ${i}`);
  }
  const [back] = w.b().send(w.net.now, ['alice'], 'hi alice');
  t.ok(w.net.runUntil(() => allDelivered(w.a(), [...sent.keys()]) && allDelivered(w.b(), [back!]), 600_000), 'all delivered');
  checkExactlyOnce(t, w.a(), w.events.b, sent);
  const m = messages(w.events.a)[0]!;
  t.match(m, { from: ids.b.fingerprintHex, fromName: 'bob', fromPeer: '10.0.0.2:7000', text: 'hi alice' });
  t.equal(w.b().inbox().length, 5, 'inbox persisted');
  t.equal(w.storeB.history({ dir: 'in', limit: 100 }).length, 5, 'received messages in the store');
  t.same(w.storeA.history({ dir: 'out', limit: 100 }).map((e) => [e.text, e.state]), [...sent.values()].map((x) => [x, 'delivered']), 'sent messages in the history, delivered');
  const states = w.events.a.filter((e) => e.type === 'delivery' && e.id === [...sent.keys()][0]).map((e) => (e as { state: string }).state);
  t.same(states.at(-1), 'delivered', 'delivery events end in delivered');
});

t.test('a stream both ways at 20% loss: receipts and messages share the peer bound without TOO_MANY_UNACKED', async (t) => {
  const w = world('stream', { loss: 0.2, delayMs: 5, jitterMs: 5 });
  connect(w, t);
  const sent = new Map<string, string>();
  const sentBack = new Map<string, string>();
  for (let i = 0; i < 100; i++) {
    const [id] = w.a().send(w.net.now, ['bob'], `a->b ${i}`);
    sent.set(id!, `a->b ${i}`);
    const [id2] = w.b().send(w.net.now, ['alice'], `b->a ${i}`);
    sentBack.set(id2!, `b->a ${i}`);
  }
  const started = w.net.now;
  t.ok(w.net.runUntil(() => allDelivered(w.a(), [...sent.keys()]) && allDelivered(w.b(), [...sentBack.keys()]), 3600_000), 'all delivered');
  checkExactlyOnce(t, w.a(), w.events.b, sent);
  checkExactlyOnce(t, w.b(), w.events.a, sentBack);
  const refused = [P1, P2].map((p) => w.net.machine<Peer>(p).stats().errorsSent.TOO_MANY_UNACKED ?? 0);
  t.same(refused, [0, 0], 'no DELIVER refused for too many unacknowledged messages');
  t.ok(w.net.now - started < 90_000, `200 messages in ${Math.round((w.net.now - started) / 1000)} s of virtual time`);
});

/** More seeds: PEERPOST_CLIENT_SEEDS=200 npx tap test/client-e2e.test.ts (a failure names its seed). */
const SEED_COUNT = Number(process.env.PEERPOST_CLIENT_SEEDS ?? 8);
for (let seed = 1; seed <= SEED_COUNT; seed++) {
  t.test(`30% loss, duplication and reordering of every packet, seed ${seed}`, async (t) => {
    const w = world(seed, { loss: 0.3, duplicate: 0.2, reorder: 0.3, delayMs: 5, jitterMs: 20, reorderMs: 400 });
    connect(w, t);
    const sent = new Map<string, string>();
    const sentBack = new Map<string, string>();
    for (let i = 0; i < 6; i++) {
      const [id] = w.a().send(w.net.now, ['bob'], `a->b ${seed}/${i}`);
      sent.set(id!, `a->b ${seed}/${i}`);
      const [id2] = w.b().send(w.net.now, ['alice'], `b->a ${seed}/${i}`);
      sentBack.set(id2!, `b->a ${seed}/${i}`);
      w.net.run(300);
    }
    const ok = w.net.runUntil(() => allDelivered(w.a(), [...sent.keys()]) && allDelivered(w.b(), [...sentBack.keys()]), 3 * 3600_000);
    t.ok(ok, `all delivered (seed ${seed}, t=${w.net.now - START_MS} ms)`);
    checkExactlyOnce(t, w.a(), w.events.b, sent);
    checkExactlyOnce(t, w.b(), w.events.a, sentBack);
  });
}

const FEW_SEEDS = Array.from({ length: Math.max(2, Math.ceil(SEED_COUNT / 4)) }, (_, i) => i + 1);
const ROUGH: Partial<Faults> = { loss: 0.2, duplicate: 0.1, reorder: 0.2, delayMs: 5, jitterMs: 10, reorderMs: 200 };

for (const seed of FEW_SEEDS) t.test(`the recipient's peer restarts mid-stream: nothing lost (seed ${seed})`, async (t) => {
  const w = world(`peer-restart-${seed}`, ROUGH);
  connect(w, t);
  w.net.setUp(B, false);
  const sent = new Map<string, string>();
  for (let i = 0; i < 3; i++) {
    const [id] = w.a().send(w.net.now, ['bob'], `m${i}`);
    sent.set(id!, `m${i}`);
  }
  t.ok(w.net.runUntil(() => [...sent.keys()].every((id) => w.a().messageState(id)?.state === 'held'), 120_000), 'held at the recipient peer');
  w.restartPeer('p2');
  w.net.run(5_000);
  w.net.setUp(B, true);
  for (let i = 3; i < 6; i++) {
    const [id] = w.a().send(w.net.now, ['bob'], `m${i}`);
    sent.set(id!, `m${i}`);
  }
  t.ok(w.net.runUntil(() => allDelivered(w.a(), [...sent.keys()]), 3 * 3600_000), 'all delivered after the restart');
  checkExactlyOnce(t, w.a(), w.events.b, sent);
});

for (const seed of FEW_SEEDS) t.test(`the sender restarts with a persisted outbox: nothing lost (seed ${seed})`, async (t) => {
  const w = world(`sender-restart-${seed}`, ROUGH);
  connect(w, t);
  w.net.setUp(P2, false);
  const sent = new Map<string, string>();
  for (let i = 0; i < 5; i++) {
    const [id] = w.a().send(w.net.now, ['bob'], `persist ${i}`);
    sent.set(id!, `persist ${i}`);
  }
  w.net.run(3_000);
  t.equal(w.storeA.load()!.outbox.filter((m) => m.kind === ContentKind.TEXT).length, 5, 'outbox persisted');
  w.net.replace(A, w.newClient('a'));
  w.net.setUp(P2, true);
  // A long message, and a second restart in the middle of its chunks.
  const long = 'long '.repeat(3000);
  const [lid] = w.a().send(w.net.now, ['bob'], long);
  sent.set(lid!, long);
  w.net.run(1500);
  w.net.replace(A, w.newClient('a'));
  t.ok(w.net.runUntil(() => allDelivered(w.a(), [...sent.keys()]), 3 * 3600_000), 'resumed and delivered');
  checkExactlyOnce(t, w.a(), w.events.b, sent);
});

t.test('a long message is chunked and reassembled under loss, duplication and reordering', async (t) => {
  for (const seed of FEW_SEEDS.map((n) => `chunk-${n}`).concat('chunk-x')) {
    const w = world(seed, { loss: 0.25, duplicate: 0.2, reorder: 0.4, delayMs: 5, jitterMs: 20, reorderMs: 300 });
    connect(w, t);
    const text = Array.from({ length: 6000 }, (_, i) => `word${i} `).join('').slice(0, 40_000) + ' é€😀';
    const [id] = w.a().send(w.net.now, ['bob'], text);
    t.ok(w.a().outbox()[0]!.parts > 40, 'split in many chunks');
    t.ok(w.net.runUntil(() => allDelivered(w.a(), [id!]), 6 * 3600_000), `delivered (${seed})`);
    checkExactlyOnce(t, w.a(), w.events.b, new Map([[id!, text]]));
  }
});

t.test('text over 64 KiB is refused', async (t) => {
  const w = world('too-long');
  connect(w, t);
  t.throws(() => w.a().send(w.net.now, ['bob'], 'x'.repeat(64 * 1024 + 1)), { code: 'PEERPOST_TEXT_TOO_LONG' });
});

t.test('the recipient offline for a while, then online: a contact leaves capWindowMax messages at its peer', async (t) => {
  const w = world('offline', { loss: 0.05 });
  connect(w, t);
  w.net.setUp(B, false);
  const sent = new Map<string, string>();
  const window = CLIENT_DEFAULTS.capWindowMax;
  t.ok(window >= 100, 'at least 100 waiting per contact');
  for (let i = 0; i < window + 2; i++) {
    const [id] = w.a().send(w.net.now, ['bob'], `while away ${i}`);
    sent.set(id!, `while away ${i}`);
  }
  w.net.run(30 * 60_000);
  const states = [...sent.keys()].map((id) => w.a().messageState(id));
  t.equal(states.filter((s) => s?.state === 'held').length, window, 'a window of them held at its peer (capWindowMax)');
  t.equal(w.net.machine<Peer>(P2).stats().waitingMessages, window, 'they wait at the recipient\'s peer, not on the sender\'s disk');
  t.equal(states.filter((s) => s?.state === 'queued').length, 2, 'the rest queued');
  t.equal(messages(w.events.b).length, 0, 'nothing shown yet');
  w.net.setUp(B, true);
  w.b().networkChanged(w.net.now);
  t.ok(w.net.runUntil(() => allDelivered(w.a(), [...sent.keys()]), 3 * 3600_000), 'delivered after coming back');
  checkExactlyOnce(t, w.a(), w.events.b, sent);
});

t.test('several recipients and a group', async (t) => {
  const w = world('group', { loss: 0.1 });
  connect(w, t);
  const [id] = w.a().send(w.net.now, ['bob', `${ids.b.fingerprintHex}@10.0.0.2:7000`], 'twice?');
  t.ok(id);
  const gid = w.a().createGroup(w.net.now, 'friends', ['bob']);
  const gids = w.a().sendGroup(w.net.now, 'friends', 'hello group');
  t.equal(gids.length, 1, 'one id per other member');
  t.ok(w.net.runUntil(() => allDelivered(w.a(), gids), 3 * 3600_000), 'group message delivered');
  const m = messages(w.events.b).find((x) => x.text === 'hello group');
  t.equal(m?.group?.id, gid, 'carries the group id');
  t.same(m?.group?.members.map((x) => x.fingerprint).sort(), [ids.a.fingerprintHex, ids.b.fingerprintHex].sort(), 'members listed');
  t.equal(w.b().groups()[0]?.name, 'friends', 'the recipient learns the group');
  const reply = w.b().sendGroup(w.net.now, gid, 'reply to all');
  t.ok(w.net.runUntil(() => allDelivered(w.b(), reply), 3 * 3600_000), 'the member answers the group');
  t.equal(messages(w.events.a).find((x) => x.text === 'reply to all')?.group?.name, 'friends');
});

// ---------------------------------------------------------------------------------------------
// authentication: what the peer pushes is checked end to end

/**
 * DELIVER `blob` to B's peer from a sender address of the test's own (with a capability of B's
 * for alice, so that a repeated id is pushed again), and hand the peer's PUSH to B at once.
 * Returns what B sends back (its ACK goes to the peer, inside its session).
 */
function pushTo(w: World, blob: Uint8Array, id: Uint8Array): Array<{ to: string; type: number }> {
  const p2 = w.net.machine<Peer>(P2);
  const b = w.b();
  const now = w.net.now;
  const X: Addr = { host: '10.0.9.9', port: 9000 };
  p2.handle(now, X, encode({ type: MsgType.HELLO, nonce: randomBytes(16), padTo: 64 }));
  const c = decode(p2.pollTransmit()!.data);
  if (!c.ok || c.msg.type !== MsgType.COOKIE) throw new Error('no COOKIE from the peer');
  const dk = Buffer.from(w.storeB.load()!.deliveryKey!, 'hex');
  const capId = capabilityId(dk, ids.a.fingerprint);
  const cap = capabilityField(capId, capabilityKey(dk, capId), ids.b.fingerprint, id);
  p2.handle(now, X, encode({ type: MsgType.DELIVER, cookie: c.msg.cookie, to: ids.b.fingerprint, id, blob, cap }));
  for (let x = p2.pollTransmit(); x; x = p2.pollTransmit()) {
    if (x.to.host === B.host) b.handle(now, P2, x.data);
  }
  const out: Array<{ to: string; type: number }> = [];
  for (let x = b.pollTransmit(); x; x = b.pollTransmit()) {
    out.push({ to: `${x.to.host}:${x.to.port}`, type: x.data[1]! });
    if (x.to.host === P2.host) p2.handle(now, B, x.data);
  }
  while (p2.pollTransmit()); // RESULTs to X
  w.drain();
  return out;
}

function sealFrom(sender: Identity, text: string, id: Uint8Array): Uint8Array {
  return seal({
    sender, senderPeer: '10.0.0.1:7000', recipientCert: ids.b.cert,
    content: { kind: ContentKind.TEXT, id, sentAtMs: START_MS, body: encodeText({ text }) }, random: (n) => randomBytes(n),
  });
}

t.test('a forged sender is rejected, and still acknowledged', async (t) => {
  const w = world('forged');
  connect(w, t);
  // Claims alice's fingerprint and certificate, signs with another key.
  const forger = new Identity(ids.a.cert, ids.m.privateKey);
  const id = randomBytes(16);
  const before = w.net.machine<Peer>(P2).stats().waitingMessages;
  const out = pushTo(w, sealFrom(forger, 'I am alice', id), id);
  t.same(out, [{ to: '10.0.0.2:7000', type: MsgType.SESSION }], 'ACKed (in its session) so it leaves the mailbox');
  t.equal(w.net.machine<Peer>(P2).stats().waitingMessages, before, 'the peer let it go');
  t.equal(messages(w.events.b).length, 0, 'not shown');
  t.match(w.events.b.find((e) => e.type === 'rejected'), { reason: 'bad_sender', from: ids.a.fingerprintHex });
  t.equal(w.b().stats().drops.bad_sender, 1, 'counted');
  t.equal(w.b().inbox().length, 0);
});

t.test('a tampered blob is rejected, and still acknowledged', async (t) => {
  const w = world('tampered');
  connect(w, t);
  const id = randomBytes(16);
  const blob = sealFrom(ids.a, 'genuine', id);
  blob[100] = blob[100]! ^ 1;
  const before = w.net.machine<Peer>(P2).stats().waitingMessages;
  const out = pushTo(w, blob, id);
  t.same(out.map((x) => x.type), [MsgType.SESSION], 'the ACK');
  t.equal(w.net.machine<Peer>(P2).stats().waitingMessages, before, 'the peer let it go');
  t.equal(messages(w.events.b).length, 0);
  t.match(w.events.b.find((e) => e.type === 'rejected'), { reason: 'open_decrypt_failed' });
  // The same blob untouched is accepted: the test above fails for the right reason.
  blob[100] = blob[100]! ^ 1;
  pushTo(w, blob, id);
  t.equal(messages(w.events.b).length, 1, 'the genuine blob is shown');
});

t.test('a replayed message is shown once, and receipted each time', async (t) => {
  const w = world('replay');
  connect(w, t);
  const id = randomBytes(16);
  const blob = sealFrom(ids.a, 'only once', id);
  let receipts = 0;
  w.net.onDeliver = (d) => {
    if (d.from.host === B.host && d.to.host === P1.host && d.data[1] === MsgType.DELIVER) receipts++;
  };
  pushTo(w, blob, id);
  w.net.run(60_000);
  t.equal(receipts, 1, 'one receipt after the first copy');
  pushTo(w, blob, id);
  w.net.run(60_000);
  pushTo(w, blob, id);
  w.net.run(60_000);
  t.equal(messages(w.events.b).length, 1, 'shown once');
  t.equal(receipts, 3, 'a receipt for every copy');
  // A new client from the same store still knows it (the dedupe window is persisted).
  w.net.replace(B, w.newClient('b'));
  pushTo(w, blob, id);
  w.net.run(60_000);
  t.equal(messages(w.events.b).length, 1, 'still shown once after a restart');
  t.equal(w.b().inbox().length, 1);
});

t.test('a certificate that does not hash to the fingerprint is never used', async (t) => {
  const w = world('cert-mismatch');
  t.ok(w.net.runUntil(() => registered(w), 600_000));
  const fake = ids.m.fingerprintHex;
  w.net.filter = (d) => !(d.from.host === A.host && d.data[1] === MsgType.CERT_REQUEST);
  w.a().addContact(w.net.now, `${fake}@10.0.0.2:7000`, 'mallory');
  w.net.run(3000);
  w.a().handle(w.net.now, P2, encode({ type: MsgType.CERT, fingerprint: fingerprintFromHex(fake)!, cert: ids.b.cert }));
  w.drain();
  t.match(w.events.a.find((e) => e.type === 'contact-cert'), { ok: false, reason: 'fingerprint-mismatch', fingerprint: fake });
  t.notOk(w.a().contacts()[0]!.cert, 'not stored');
  const [id] = w.a().send(w.net.now, ['mallory'], 'x');
  t.equal(w.a().messageState(id!)?.state, 'queued', 'a message waits, never sealed to the wrong key');
  t.equal(w.a().outbox()[0]!.parts, 0);
});

t.test('a certificate its peer refuses to serve (BAD_CERT) is not used; the message waits with a reason', async (t) => {
  const w = world('cert-refused');
  t.ok(w.net.runUntil(() => registered(w), 600_000));
  const fp = ids.m.fingerprintHex;
  w.net.filter = (d) => !(d.from.host === A.host && d.data[1] === MsgType.CERT_REQUEST);
  w.a().addContact(w.net.now, `${fp}@10.0.0.2:7000`, 'mallory');
  const [id] = w.a().send(w.net.now, ['mallory'], 'x');
  w.net.run(3000);
  w.a().handle(w.net.now, P2, encode({ type: MsgType.ERROR, code: WireError.BAD_CERT, ref: fingerprintFromHex(fp)!, detail: 'bad_self_signature: x' }));
  w.drain();
  t.match(w.a().messageState(id!), { state: 'queued', reason: 'bad-certificate' });
  t.notOk(w.a().contacts()[0]!.cert, 'no certificate stored');
});

t.test('a contact re-added under its petname with another fingerprint is flagged', async (t) => {
  const w = world('changed');
  connect(w, t);
  w.a().addContact(w.net.now, `${ids.m.fingerprintHex}@10.0.0.2:7000`, 'bob');
  w.drain();
  t.match(w.events.a.find((e) => e.type === 'contact-changed'), { petname: 'bob', fingerprint: ids.m.fingerprintHex, previous: ids.b.fingerprintHex });
  const c = w.a().contacts().find((x) => x.petname === 'bob')!;
  t.equal(c.changed, true);
  t.equal(c.verification, 'unverified', 'verification reset');
  t.throws(() => w.a().send(w.net.now, ['bob'], 'x'), { code: 'PEERPOST_CONTACT_CHANGED' });
  w.a().confirmContact(w.net.now, 'bob');
  t.doesNotThrow(() => w.a().send(w.net.now, ['bob'], 'x'));
  t.throws(() => w.a().addContact(w.net.now, 'nothex@1.2.3.4:5'), { code: 'PEERPOST_CONTACT_FINGERPRINT' });
  t.throws(() => w.a().addContact(w.net.now, `${ids.b.fingerprintHex}@host`), { code: 'PEERPOST_CONTACT_PEER' });
  t.throws(() => w.a().addContact(w.net.now, `${ids.m.fingerprintHex}@1.2.3.4:5`, 'other'), { code: 'PEERPOST_CONTACT_EXISTS' });
});

// ---------------------------------------------------------------------------------------------
// registration

function count(evs: ClientEvent[], type: ClientEvent['type']): number {
  return evs.filter((e) => e.type === type).length;
}

t.test('peer-unavailable after failed tries, then recovery', async (t) => {
  const w = world('unavailable');
  w.net.setUp(P1, false);
  t.ok(w.net.runUntil(() => count(w.events.a, 'peer-unavailable') > 0, 120_000), 'reported');
  const at = w.net.now - START_MS;
  t.ok(at >= 1000 + 2000 + 4000 + 8000 && at < 20_000, `after 4 tries with backoff (${at} ms)`);
  t.notOk(w.a().registered);
  w.net.run(10 * 60_000);
  t.equal(count(w.events.a, 'peer-unavailable'), 1, 'reported once');
  const d = w.a().deadlines().register!;
  t.ok(d - w.net.now <= 60_000, 'retry pace capped at 60 s');
  w.net.setUp(P1, true);
  t.ok(w.net.runUntil(() => w.a().registered, 61_000), 'registered again within the cap');
  t.equal(count(w.events.a, 'registered'), 1);
});

t.test('keepalive keeps the registration; without it the peer forgets the client', async (t) => {
  for (const interval of [25_000, 0]) {
    const w = world(`keepalive-${interval}`, {}, { keepaliveIntervalMs: interval });
    t.ok(w.net.runUntil(() => registered(w), 60_000));
    w.net.run(10 * 60_000);
    const p1 = w.net.machine<Peer>(P1);
    t.equal(p1.stats().registered, interval ? 1 : 0, interval ? 'still registered after 10 min' : 'expired without keepalive');
  }
});

t.test('REGISTER_AGAIN (the peer restarted) triggers a new registration', async (t) => {
  const w = world('register-again');
  t.ok(w.net.runUntil(() => registered(w), 60_000));
  w.restartPeer('p1');
  const restartedAt = w.net.now;
  let again = 0;
  w.net.onDeliver = (d) => {
    if (d.to.host === A.host && d.data[1] === MsgType.REGISTER_AGAIN) again++;
  };
  t.equal(w.net.machine<Peer>(P1).stats().registered, 0);
  t.ok(w.net.runUntil(() => count(w.events.a, 'registered') === 2, 60_000), 'registered again');
  t.equal(w.net.machine<Peer>(P1).stats().registered, 1, 'with the new peer instance');
  t.ok(again >= 1, 'the peer answered a keepalive with REGISTER_AGAIN');
  t.ok(w.net.now - restartedAt <= 31_000, `within one keepalive interval (${w.net.now - restartedAt} ms)`);
});

t.test("a change of the pinned peer's identity is reported and stops registration", async (t) => {
  const w = world('pinned');
  t.ok(w.net.runUntil(() => registered(w), 60_000));
  t.equal(w.a().pinnedPeerFingerprint, ids.p1.fingerprintHex, 'pinned on first use');
  w.restartPeer('p1', ids.p3);
  t.ok(w.net.runUntil(() => count(w.events.a, 'peer-identity-changed') > 0, 60_000));
  t.match(w.events.a.find((e) => e.type === 'peer-identity-changed'), { expected: ids.p1.fingerprintHex, actual: ids.p3.fingerprintHex });
  w.net.run(10 * 60_000);
  t.equal(w.net.machine<Peer>(P1).stats().registered, 0, 'never registered with the unknown peer');
  t.equal(count(w.events.a, 'peer-identity-changed'), 1);
  w.a().acceptPeerIdentity(w.net.now);
  t.ok(w.net.runUntil(() => w.a().registered, 60_000), 'registered after acceptance');
  t.equal(w.a().pinnedPeerFingerprint, ids.p3.fingerprintHex);
  t.equal(w.storeA.load()!.peerFingerprint, ids.p3.fingerprintHex, 'new pin persisted');
});

t.test('a message from a stranger: its certificate comes in its CARD, no lookup at an address it chose', async (t) => {
  const w = world('stranger', { loss: 0.2, duplicate: 0.1, reorder: 0.2, reorderMs: 200 });
  t.ok(w.net.runUntil(() => registered(w), 600_000));
  let certRequestsFromB = 0;
  w.net.onDeliver = (d) => {
    if (d.from.host === B.host && d.data[1] === MsgType.CERT_REQUEST) certRequestsFromB++;
  };
  w.a().addContact(w.net.now, `${ids.b.fingerprintHex}@10.0.0.2:7000`, 'bob');
  const [id] = w.a().send(w.net.now, ['bob'], 'who am I?');
  t.ok(w.net.runUntil(() => messages(w.events.b).length === 1, 3600_000), 'shown to bob');
  const m = messages(w.events.b);
  t.equal(m[0]!.from, ids.a.fingerprintHex);
  t.equal(m[0]!.fromName, undefined, 'no petname for a stranger');
  t.equal((m[0] as { request?: boolean }).request, true, 'a message request');
  w.net.run(120_000);
  t.not(w.a().messageState(id!)?.state, 'delivered', 'no receipt to a stranger before bob accepts');
  t.equal(w.b().acceptRequest(w.net.now, ids.a.fingerprintHex, 'alice').petname, 'alice');
  t.ok(w.net.runUntil(() => allDelivered(w.a(), [id!]), 3600_000), 'delivered once accepted');
  t.equal(w.storeB.load()!.certs[ids.a.fingerprintHex], Buffer.from(ids.a.cert).toString('hex'), 'certificate kept');
  t.equal(certRequestsFromB, 0, 'B never asked anyone for the stranger\'s certificate');
  t.ok(w.storeB.load()!.caps?.[ids.a.fingerprintHex], 'A (who added B) handed B its capability');
});

t.test('pushes that cannot be processed never stay at the peer: no CARD, a full table', async (t) => {
  const w = world('wedge', {}, { pendingVerifyMax: 4 });
  t.ok(w.net.runUntil(() => registered(w), 600_000));
  // Sealed to B by a sender B has no certificate for (and no CARD comes): the push waits for its
  // CARD at most unknownSenderGraceMs, unacknowledged; beyond pendingVerifyMax, rejected at once.
  const p2 = w.net.machine<Peer>(P2);
  const before = p2.stats().waitingMessages;
  const outs: Array<Array<{ to: string; type: number }>> = [];
  for (let i = 0; i < 6; i++) {
    const id = randomBytes(16);
    outs.push(pushTo(w, sealFrom(ids.m, `wedge ${i}`, id), id));
  }
  t.same(outs.map((o) => o.length), [0, 0, 0, 0, 1, 1], 'four wait for a CARD, the fifth and sixth are refused at once');
  t.equal(w.events.b.filter((e) => e.type === 'rejected' && e.reason === 'pending_full').length, 2);
  t.equal(p2.stats().waitingMessages, before + 4, 'the four waiting ones are still at the peer');
  w.net.run(CLIENT_DEFAULTS.unknownSenderGraceMs + 10_000);
  t.equal(w.events.b.filter((e) => e.type === 'rejected' && e.reason === 'sender_unknown').length, 4, 'then rejected and acknowledged');
  t.equal(p2.stats().waitingMessages, before, 'nothing of them is left at the peer');
  t.equal(messages(w.events.b).length, 0);
});

t.test('freshness: a message sent outside the window in which its id is remembered is refused', async (t) => {
  const w = world('fresh');
  connect(w, t);
  const old = randomBytes(16);
  const blobOld = seal({
    sender: ids.a, senderPeer: '10.0.0.1:7000', recipientCert: ids.b.cert,
    content: { kind: ContentKind.TEXT, id: old, sentAtMs: w.net.now - 8 * 24 * 3600_000, body: encodeText({ text: 'eight days old' }) }, random: (n) => randomBytes(n),
  });
  pushTo(w, blobOld, old);
  t.match(w.events.b.find((e) => e.type === 'rejected'), { reason: 'stale', from: ids.a.fingerprintHex });
  const future = randomBytes(16);
  pushTo(w, seal({
    sender: ids.a, senderPeer: '10.0.0.1:7000', recipientCert: ids.b.cert,
    content: { kind: ContentKind.TEXT, id: future, sentAtMs: w.net.now + 2 * 24 * 3600_000, body: encodeText({ text: 'from the future' }) }, random: (n) => randomBytes(n),
  }), future);
  t.ok(w.events.b.some((e) => e.type === 'rejected' && e.reason === 'stale_future'));
  t.equal(messages(w.events.b).length, 0, 'neither shown');
  t.ok(CLIENT_DEFAULTS.messageTtlMs <= CLIENT_DEFAULTS.dedupeTtlMs - CLIENT_DEFAULTS.clockSkewMaxMs, 'a sender gives up before the window ends');
});

t.test('freshness: when the dedupe window overflows, its sender\'s older messages are refused, not shown again', async (t) => {
  const w = world('floor', {}, { dedupeEntriesMax: 3 });
  connect(w, t);
  const sentAt = w.net.now;
  const blobs = Array.from({ length: 5 }, (_, i) => {
    const id = randomBytes(16);
    return { id, blob: seal({
      sender: ids.a, senderPeer: '10.0.0.1:7000', recipientCert: ids.b.cert,
      content: { kind: ContentKind.TEXT, id, sentAtMs: sentAt + i, body: encodeText({ text: `m${i}` }) }, random: (n) => randomBytes(n),
    }) };
  });
  for (const b of blobs) pushTo(w, b.blob, b.id);
  t.equal(messages(w.events.b).length, 5, 'five shown');
  // The window (3) forgot the first two: replaying them must not show them again.
  pushTo(w, blobs[0]!.blob, blobs[0]!.id);
  pushTo(w, blobs[1]!.blob, blobs[1]!.id);
  t.equal(messages(w.events.b).length, 5, 'still five: the replays are refused');
  t.equal(w.events.b.filter((e) => e.type === 'rejected' && e.reason === 'stale_floor').length, 2);
  t.equal(w.storeB.load()!.dedupeFloors?.[ids.a.fingerprintHex], sentAt + 1, 'the floor is persisted');
});

t.test('keepalives without an answer lead to a new registration', async (t) => {
  const w = world('keepalive-misses');
  t.ok(w.net.runUntil(() => registered(w), 60_000));
  let drop = true;
  w.net.filter = (d) => !(drop && d.to.host === A.host && d.data[1] === MsgType.SESSION);
  let registers = 0;
  w.net.onDeliver = (d) => {
    if (d.from.host === A.host && d.data[1] === MsgType.REGISTER) registers++;
  };
  w.net.run(3 * 30_000 + 1000);
  t.ok(registers >= 1, 'registers again after missed keepalive answers');
  drop = false;
  t.ok(w.net.runUntil(() => count(w.events.a, 'registered') >= 2, 120_000), 'registered again');
});

t.test('messages that cannot be delivered fail visibly after messageTtlMs', async (t) => {
  const w = world('ttl', {}, { messageTtlMs: 20 * 60_000 });
  connect(w, t);
  w.net.setUp(B, false);
  const [held] = w.a().send(w.net.now, ['bob'], 'never read');
  // A contact that is not registered at its peer: its certificate is never found.
  w.a().addContact(w.net.now, `${ids.m.fingerprintHex}@10.0.0.2:7000`, 'ghost');
  const [ghost] = w.a().send(w.net.now, ['ghost'], 'to nobody');
  t.ok(w.net.runUntil(() => w.a().messageState(ghost!)?.reason === 'certificate-not-found', 60_000), 'queued, certificate not found');
  t.equal(w.a().messageState(ghost!)?.state, 'queued');
  t.ok(w.net.runUntil(() => w.a().messageState(held!)?.state === 'held', 60_000), 'held by the offline recipient\'s peer');
  t.ok(w.net.runUntil(() => w.a().messageState(held!)?.state === 'failed' && w.a().messageState(ghost!)?.state === 'failed', 3600_000));
  t.same(w.a().messageState(held!), { state: 'failed', reason: 'expired' });
  t.same(w.a().messageState(ghost!), { state: 'failed', reason: 'certificate-not-found' });
  t.ok(w.net.now - START_MS >= 20 * 60_000, 'not before the TTL');
  const last = w.events.a.filter((e) => e.type === 'delivery' && e.id === held).at(-1);
  t.match(last, { state: 'failed', reason: 'expired' }, 'a delivery event reports it');
  t.equal(w.a().stats().transfers, 0, 'nothing left in flight');
});

t.test('VERIFY bodies reach the contact as a verify event, once', async (t) => {
  const w = world('verify', { loss: 0.2, duplicate: 0.2 });
  connect(w, t);
  const body = new Uint8Array([1, 2, 3, 4]);
  const id = w.a().sendVerify(w.net.now, 'bob', body);
  t.ok(w.net.runUntil(() => allDelivered(w.a(), [id]), 3600_000), 'receipted like any message');
  const v = w.events.b.filter((e) => e.type === 'verify');
  t.equal(v.length, 1);
  t.match(v[0], { from: ids.a.fingerprintHex });
  t.same([...(v[0] as { body: Uint8Array }).body], [...body]);
  t.equal(messages(w.events.b).length, 0, 'not shown as a text message');
  w.b().setVerification(w.net.now, 'alice', 'verified');
  w.net.flushAll(); // what a driver does after a user call: the change is committed then
  t.equal(w.storeB.load()!.contacts[0]!.verification, 'verified', 'verification state persisted');
  t.throws(() => w.a().sendVerify(w.net.now, 'bob', new Uint8Array(513)), { code: 'PEERPOST_VERIFY_BODY' });
});

t.test('a window larger than the peer allows: a refused message goes again as soon as a slot frees, not after its busy backoff', async (t) => {
  // 40 in flight per recipient against the peer's 32: the peer refuses some with TOO_MANY_UNACKED.
  // A holds no capability of B's here (so the per-address bound applies): it forgets the one it got.
  const w = world('slots', { delayMs: 5, jitterMs: 2 }, { unackedPerRecipientMax: 40 });
  connect(w, t);
  const caps = Object.keys(w.storeA.load()!.caps ?? {});
  t.equal(caps.length, 1, 'A holds the capability B handed it');
  w.storeA.commit({ ...emptyBatch(), keyed: caps.map((k): [KeyedField, string, unknown] => ['caps', k, undefined]) });
  w.net.replace(A, w.newClient('a'));
  const sent = new Map<string, string>();
  for (let i = 0; i < 100; i++) {
    const [id] = w.a().send(w.net.now, ['bob'], `slot ${i}`);
    sent.set(id!, `slot ${i}`);
  }
  const started = w.net.now;
  t.ok(w.net.runUntil(() => allDelivered(w.a(), [...sent.keys()]), 600_000), 'all delivered');
  checkExactlyOnce(t, w.a(), w.events.b, sent);
  const refused = w.net.machine<Peer>(P2).stats().errorsSent.TOO_MANY_UNACKED ?? 0;
  t.ok(refused > 0, `the peer refused ${refused} DELIVERs for too many unacknowledged messages`);
  const took = w.net.now - started;
  t.ok(took < CLIENT_DEFAULTS.busyBackoffInitialMs, `100 messages in ${took} ms of virtual time, less than one busy backoff (${CLIENT_DEFAULTS.busyBackoffInitialMs} ms)`);
});

/**
 * Bob's client behind a driver that has not drained yet (`held`), then drains: what it handled
 * meanwhile is committed once, and nothing (no ACK, no event) leaves before that commit.
 */
class HeldDriver {
  held = true;
  constructor(readonly c: Client) {}
  handle(now: number, from: Addr, data: Uint8Array): void {
    this.c.handle(now, from, data);
  }
  pollTransmit() {
    return this.held ? undefined : this.c.pollTransmit();
  }
  pollEvent() {
    return this.held ? undefined : this.c.pollEvent();
  }
  pollTimeout() {
    return this.c.pollTimeout();
  }
  handleTimeout(now: number): void {
    this.c.handleTimeout(now);
  }
}

t.test('pushes handled together are committed once, before any ACK leaves, and acknowledged together; a refused commit keeps the ACKs', async (t) => {
  const w = world('batch');
  connect(w, t);
  w.net.run(5000); // what connecting put on the wire (CARDs and their ACKs) arrives first
  const acks: number[] = [];
  let ackDatagrams = 0;
  let pushes = 0;
  w.net.onDeliver = (d) => {
    const r = decode(d.data);
    const type = r.ok ? (r.msg.type === MsgType.SESSION ? r.msg.inner.type : r.msg.type) : -1;
    if (d.from.host === B.host && d.from.port === B.port && type === MsgType.ACK && r.ok && r.msg.type === MsgType.SESSION && r.msg.inner.type === MsgType.ACK) {
      ackDatagrams++;
      for (const _ of r.msg.inner.ids) acks.push(w.net.now);
    }
    if (d.to.host === B.host && d.to.port === B.port && type === MsgType.PUSH) pushes++;
  };
  let refuse = true;
  const commit = w.storeB.commit.bind(w.storeB);
  w.storeB.commit = (b) => {
    if (refuse) throw new Error('disk full');
    commit(b);
  };
  const bob = new HeldDriver(w.b());
  w.net.replace(B, bob as never);
  const sent = new Map<string, string>();
  for (let i = 0; i < 5; i++) sent.set(w.a().send(w.net.now, ['bob'], `batched ${i}`)[0]!, `batched ${i}`);
  const inBefore = w.storeB.historyCount('in');
  const commitsBefore = w.storeB.commits;
  t.ok(w.net.runUntil(() => pushes >= 5, 60_000), 'five pushes handled');
  t.equal(w.storeB.commits, commitsBefore, 'nothing committed while the driver has not drained');
  t.equal(acks.length, 0, 'no ACK left');
  bob.held = false;
  t.throws(() => bob.pollTransmit(), /disk full/, 'the refused commit reaches the driver');
  t.equal(acks.length, 0, 'still no ACK after the refused commit');
  t.equal(w.storeB.historyCount('in'), inBefore, 'nothing in the history');
  refuse = false;
  w.net.flushAll();
  t.equal(w.storeB.commits, commitsBefore + 1, 'one commit for the five pushes');
  t.equal(w.storeB.historyCount('in'), inBefore + 5, 'all five in the history');
  t.ok(w.net.runUntil(() => allDelivered(w.a(), [...sent.keys()]), 120_000), 'delivered');
  t.ok(acks.length >= 5, 'the ACKs left after the commit');
  t.ok(ackDatagrams < acks.length, `pushes handled together are acknowledged together: ${acks.length} ids in ${ackDatagrams} ACKs`);
});


t.test('historyRetainMs: history older than that is deleted, at start and then every RETENTION_INTERVAL_MS', async (t) => {
  const dayMs = 24 * 3600_000;
  const w = world('retain', {}, { historyRetainMs: dayMs });
  connect(w, t);
  const [id] = w.a().send(w.net.now, ['bob'], 'old news');
  t.ok(w.net.runUntil(() => allDelivered(w.a(), [id!]), 60_000), 'delivered');
  t.equal(w.storeB.historyCount('in'), 1);
  t.equal(w.storeA.historyCount('out'), 1);
  t.ok(w.b().deadlines().retention! <= w.net.now + RETENTION_INTERVAL_MS, 'the retention timer is armed');
  w.net.run(dayMs - 2 * RETENTION_INTERVAL_MS);
  t.equal(w.storeB.historyCount('in'), 1, 'kept while younger than a day');
  w.net.run(3 * RETENTION_INTERVAL_MS);
  t.equal(w.storeB.historyCount('in'), 0, 'deleted once older than a day');
  t.equal(w.storeA.historyCount('out'), 0);
  const [id2] = w.a().send(w.net.now, ['bob'], 'fresh');
  t.ok(w.net.runUntil(() => allDelivered(w.a(), [id2!]), 60_000));
  t.same(w.b().history({ limit: 5 }).map((e) => e.text), ['fresh'], 'new messages are kept');
});

t.test('keepalives: every interval 80 to 100% of keepaliveIntervalMs (below a 30 s NAT timeout), every 4th asks for an answer', async (t) => {
  const w = world('keepalive-jitter');
  t.ok(w.net.runUntil(() => registered(w), 60_000));
  const at: number[] = [];
  const answers: boolean[] = [];
  w.net.onDeliver = (d) => {
    if (d.from.host !== A.host || d.data[1] !== MsgType.SESSION) return;
    const r = decode(d.data);
    if (r.ok && r.msg.type === MsgType.SESSION && r.msg.inner.type === MsgType.KEEPALIVE) {
      at.push(w.net.now);
      answers.push(r.msg.inner.answer);
    }
  };
  w.net.run(40 * CLIENT_DEFAULTS.keepaliveIntervalMs);
  const gaps = at.slice(1).map((x, i) => x - at[i]!);
  t.ok(gaps.length >= 35, `${gaps.length} intervals`);
  t.ok(gaps.every((g) => g <= CLIENT_DEFAULTS.keepaliveIntervalMs && g >= 0.8 * CLIENT_DEFAULTS.keepaliveIntervalMs - 1), `all within [20 s, 25 s]: ${Math.min(...gaps)}..${Math.max(...gaps)} ms`);
  t.ok(Math.max(...gaps) < 30_000, 'below the common 30 s NAT timeout');
  const asked = answers.filter(Boolean).length;
  t.ok(asked >= answers.length / 4 - 1 && asked <= answers.length / 4 + 2, `${asked} of ${answers.length} ask for an answer`);
});

t.test('a lost registration OK: the client sends the same proof again and the peer answers the same OK', async (t) => {
  const w = world('ok-lost');
  let dropped = 0;
  let registers = 0;
  let proofs = 0;
  w.net.filter = (d) => {
    if (d.to.host === A.host && d.data[1] === MsgType.SESSION && dropped === 0) {
      dropped++;
      return false;
    }
    return true;
  };
  w.net.onDeliver = (d) => {
    if (d.from.host === A.host && d.data[1] === MsgType.REGISTER) registers++;
    if (d.from.host === A.host && d.data[1] === MsgType.REGISTER_PROOF) proofs++;
  };
  t.ok(w.net.runUntil(() => w.a().registered, 60_000), 'registered');
  t.equal(dropped, 1, 'the first OK was lost');
  t.equal(registers, 1, 'one REGISTER only');
  t.equal(proofs, 2, 'the same proof twice');
  t.equal(w.net.machine<Peer>(P1).stats().errorsSent.REPLAY, undefined, 'never refused as a replay');
});
