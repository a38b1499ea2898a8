/**
 * Ratcheted sessions in the client (src/client/ratchets.ts): two clients on two peers over the
 * virtual network start a session with their CARDs, then send through it; exactly once under
 * loss, duplication and reordering, replays and restarts.
 */
import t, { type Test } from 'tap';
import { Peer } from '../src/peer/index.js';
import { Client, MemoryClientStore, type ClientEvent } from '../src/client/index.js';
import { generateIdentity, type Identity } from '../src/identity/certificate.js';
import { decode, encode } from '../src/protocol/codec.js';
import { MsgType } from '../src/protocol/constants.js';
import { RATCHET_VERSION } from '../src/crypto/ratchet.js';
import { SEAL_VERSION } from '../src/crypto/seal.js';
import { decodeCard, encodeCard } from '../src/client/content.js';
import { cborEncode } from '../src/protocol/cbor.js';
import { ClientContext, hex } from '../src/client/context.js';
import { Ratchets } from '../src/client/ratchets.js';
import { randomBytes } from 'node:crypto';
import type { Addr } from '../src/core/types.js';
import { VNet, type Faults } from './helpers/vnet.js';

const START_MS = Date.UTC(2026, 0, 1);
const P1: Addr = { host: '10.0.0.1', port: 7000 };
const P2: Addr = { host: '10.0.0.2', port: 7000 };
const A: Addr = { host: '10.0.1.1', port: 5000 };
const B: Addr = { host: '10.0.2.1', port: 5000 };

const ids = {} as Record<'p1' | 'p2' | 'a' | 'b', Identity>;
t.before(async () => {
  const notBefore = new Date(START_MS - 86400_000);
  for (const k of ['p1', 'p2', 'a', 'b'] as const) ids[k] = (await generateIdentity({ notBefore }))!;
});

interface World {
  net: VNet;
  stores: { a: MemoryClientStore; b: MemoryClientStore };
  events: { a: ClientEvent[]; b: ClientEvent[] };
  /** First byte of every DELIVER blob a client sent to the other's peer. */
  versions: { a: number[]; b: number[] };
  /** Every DELIVER from b to p1, as sent. */
  fromB: Uint8Array[];
  c(which: 'a' | 'b'): Client;
  restart(which: 'a' | 'b'): void;
}

function world(seed: string, faults: Partial<Faults> = {}): World {
  const net = new VNet({ seed, startMs: START_MS, faults });
  net.add(P1, new Peer({ identity: ids.p1, random: net.random('p1'), rateLimit: null }, net.now));
  net.add(P2, new Peer({ identity: ids.p2, random: net.random('p2'), rateLimit: null }, net.now));
  const stores = { a: new MemoryClientStore(), b: new MemoryClientStore() };
  let gen = 0;
  const make = (which: 'a' | 'b'): Client =>
    new Client({ identity: ids[which], peer: which === 'a' ? P1 : P2, store: stores[which], random: net.random(`${which}${gen++}`) }, net.now);
  net.add(A, make('a'));
  net.add(B, make('b'));
  const w: World = {
    net, stores, events: { a: [], b: [] }, versions: { a: [], b: [] }, fromB: [],
    c: (which) => net.machine<Client>(which === 'a' ? A : B),
    restart: (which) => net.replace(which === 'a' ? A : B, make(which)),
  };
  net.onDeliver = (d) => {
    const from = d.from.host === A.host ? 'a' : d.from.host === B.host ? 'b' : null;
    if (!from || d.data[1] !== MsgType.DELIVER) return;
    const m = decode(d.data);
    if (!m.ok || m.msg.type !== MsgType.DELIVER) return;
    w.versions[from].push(m.msg.blob[0]!);
    if (from === 'b' && d.to.host === P1.host) w.fromB.push(d.data);
  };
  const step = net.step.bind(net);
  net.step = (limit?: number) => {
    const r = step(limit);
    for (const k of ['a', 'b'] as const) for (let e = w.c(k).pollEvent(); e; e = w.c(k).pollEvent()) w.events[k].push(e);
    return r;
  };
  return w;
}

function connect(w: World, t: Test): void {
  t.ok(w.net.runUntil(() => w.c('a').registered && w.c('b').registered, 600_000), 'both registered');
  w.c('a').addContact(w.net.now, `${ids.b.fingerprintHex}@10.0.0.2:7000`, 'bob');
  w.c('b').addContact(w.net.now, `${ids.a.fingerprintHex}@10.0.0.1:7000`, 'alice');
  const cardsDone = (): boolean =>
    w.stores.a.load()?.cardsAcked?.[ids.b.fingerprintHex] !== undefined && w.stores.b.load()?.cardsAcked?.[ids.a.fingerprintHex] !== undefined;
  t.ok(w.net.runUntil(cardsDone, 600_000), 'cards exchanged');
}

function texts(evs: ClientEvent[]): string[] {
  return evs.filter((e): e is Extract<ClientEvent, { type: 'message' }> => e.type === 'message').map((e) => e.text);
}

function send(w: World, from: 'a' | 'b', n: number, label: string): string[] {
  const out: string[] = [];
  for (let i = 0; i < n; i++) out.push(...w.c(from).send(w.net.now, [from === 'a' ? 'bob' : 'alice'], `${label} ${i}`));
  return out;
}

function delivered(w: World, from: 'a' | 'b', sent: string[]): boolean {
  return sent.every((id) => w.c(from).messageState(id)?.state === 'delivered');
}

t.test('the CARDs start a session; then messages go through it both ways, exactly once', async (t) => {
  const w = world('session');
  connect(w, t);
  const sa = w.stores.a.load()!.ratchets ?? {};
  const sb = w.stores.b.load()!.ratchets ?? {};
  t.ok(sa[ids.b.fingerprintHex] && sb[ids.a.fingerprintHex], 'each side stores one session with the other');
  t.equal(sa[ids.b.fingerprintHex]!.start, sb[ids.a.fingerprintHex]!.start, 'the same session: one start key was kept');
  w.versions.a.length = 0;
  w.versions.b.length = 0;
  const sentA = send(w, 'a', 4, 'from alice');
  const sentB = send(w, 'b', 4, 'from bob');
  t.ok(w.net.runUntil(() => delivered(w, 'a', sentA) && delivered(w, 'b', sentB), 600_000), 'all delivered');
  t.same(texts(w.events.b).sort(), ['from alice 0', 'from alice 1', 'from alice 2', 'from alice 3']);
  t.same(texts(w.events.a).sort(), ['from bob 0', 'from bob 1', 'from bob 2', 'from bob 3']);
  t.ok(w.versions.a.length > 0 && w.versions.a.every((v) => v === RATCHET_VERSION), 'alice sends only session messages (and receipts)');
  t.ok(w.versions.b.length > 0 && w.versions.b.every((v) => v === RATCHET_VERSION), 'and so does bob');
});

t.test('under loss, duplication, reordering and restarts of both clients, each message is shown once', async (t) => {
  const w = world('faults', { loss: 0.15, duplicate: 0.15, reorder: 0.2, delayMs: 20, jitterMs: 30 });
  connect(w, t);
  const sentA: string[] = [];
  const sentB: string[] = [];
  for (let round = 0; round < 4; round++) {
    sentA.push(...send(w, 'a', 3, `a${round}`));
    sentB.push(...send(w, 'b', 3, `b${round}`));
    w.net.run(3_000);
    w.restart(round % 2 === 0 ? 'a' : 'b');
  }
  t.ok(w.net.runUntil(() => delivered(w, 'a', sentA) && delivered(w, 'b', sentB), 3_600_000), 'all delivered');
  const gotB = texts(w.events.b);
  const gotA = texts(w.events.a);
  t.equal(gotB.length, 12, 'bob shows twelve messages');
  t.equal(new Set(gotB).size, 12, 'each once');
  t.equal(gotA.length, 12, 'alice shows twelve messages');
  t.equal(new Set(gotA).size, 12, 'each once');
  t.ok(w.versions.a.filter((v) => v === RATCHET_VERSION).length >= 12, 'through the session');
  t.equal(w.c('a').stats().drops['ratchet_not_this_session'] ?? 0, 0, 'no session message was unreadable');
});

t.test('a session message replayed, also after a restart: shown once, receipted each time', async (t) => {
  const w = world('replay');
  connect(w, t);
  w.fromB.length = 0;
  const [id] = send(w, 'b', 1, 'only once');
  t.ok(w.net.runUntil(() => delivered(w, 'b', [id!]), 600_000));
  const deliver = w.fromB.find((d) => {
    const m = decode(d);
    return m.ok && m.msg.type === MsgType.DELIVER && Buffer.from(m.msg.id).toString('hex') === id;
  });
  t.ok(deliver && decode(deliver).ok, 'the DELIVER was recorded');
  const m = decode(deliver!);
  if (!m.ok || m.msg.type !== MsgType.DELIVER) return;
  const dm = m.msg;
  t.equal(dm.blob[0], RATCHET_VERSION);
  let receipts = 0;
  const prev = w.net.onDeliver;
  w.net.onDeliver = (d, now) => {
    prev?.(d, now);
    if (d.from.host === A.host && d.to.host === P2.host && d.data[1] === MsgType.DELIVER) receipts++;
  };
  const replay = (): void => {
    // The same DELIVER again, with a fresh cookie from alice's peer.
    const X: Addr = { host: '10.0.9.9', port: 9000 };
    const p1 = w.net.machine<Peer>(P1);
    p1.handle(w.net.now, X, encode({ type: MsgType.HELLO, nonce: new Uint8Array(16).fill(7), padTo: 64 }));
    const c = decode(p1.pollTransmit()!.data);
    if (!c.ok || c.msg.type !== MsgType.COOKIE) throw new Error('no cookie');
    p1.handle(w.net.now, X, encode({ ...dm, cookie: c.msg.cookie }));
    for (let x = p1.pollTransmit(); x; x = p1.pollTransmit()) if (x.to.host === A.host) w.c('a').handle(w.net.now, P1, x.data);
    w.net.run(60_000);
  };
  replay();
  replay();
  t.equal(receipts, 2, 'a receipt for each copy');
  w.restart('a');
  t.ok(w.net.runUntil(() => w.c('a').registered, 600_000), 'registered again');
  replay();
  t.equal(receipts, 3, 'and after a restart');
  t.same(texts(w.events.a), ['only once 0'], 'shown once');
  t.equal(w.c('a').stats().drops['ratchet_not_this_session'] ?? 0, 0);
});

t.test('a long message goes in chunks through the session, exactly once under duplication and reordering', async (t) => {
  const w = world('chunks', { duplicate: 0.2, reorder: 0.2, delayMs: 10, jitterMs: 20 });
  connect(w, t);
  w.versions.a.length = 0;
  const text = 'x'.repeat(3000);
  const [id] = w.c('a').send(w.net.now, ['bob'], text);
  t.ok(w.net.runUntil(() => delivered(w, 'a', [id!]), 600_000));
  t.same(texts(w.events.b), [text]);
  const parts = w.stores.a.load()!.outbox.find((m) => m.id === id)!.parts;
  t.ok(parts.length >= 4, `${parts.length} chunks`);
  t.ok(parts.every((p) => p.chain !== undefined && p.n !== undefined), 'each chunk has its place in the sending chain');
  t.ok(w.versions.a.length >= parts.length && w.versions.a.every((v) => v === RATCHET_VERSION), 'every chunk went through the session, none sealed');
  t.equal(SEAL_VERSION, 1);
});

t.test('the receiver restarts in the middle of a long message: the chunks it lost go again, the message is shown once', async (t) => {
  const w = world('chunks-restart', { delayMs: 10 });
  connect(w, t);
  const text = 'y'.repeat(4000);
  let pushes = 0;
  // Bob's peer pushes only the first two chunks before bob restarts (the others wait in the mailbox).
  w.net.filter = (d) => {
    if (d.from.host !== P2.host || d.to.host !== B.host || d.data.length < 1000) return true;
    return ++pushes <= 2;
  };
  const [id] = w.c('a').send(w.net.now, ['bob'], text);
  t.ok(w.net.runUntil(() => pushes >= 2, 600_000), 'two chunks reached bob');
  w.net.run(1_000);
  t.equal(w.c('b').stats().partials, 1, 'bob holds a partial message in RAM');
  w.restart('b');
  w.net.filter = undefined;
  t.ok(w.net.runUntil(() => delivered(w, 'a', [id!]), 3_600_000), 'delivered');
  t.same(texts(w.events.b), [text], 'shown once, whole');
  t.ok((w.c('b').stats().drops['ratchet_chunk_again'] ?? 0) > 0, 'copies of the lost chunks no longer opened');
  t.ok(w.events.a.some((e) => e.type === 'session-restarted' && e.by === 'us'), 'alice restarted the session and sent them again');
});

t.test('CARD bodies: the start key is an optional third item', async (t) => {
  const cert = ids.a.cert;
  const start = new Uint8Array(32).fill(5);
  const cap = new Uint8Array(36).fill(1);
  t.same(decodeCard(encodeCard({ cert })), { cert }, 'two items, as before');
  t.same(decodeCard(encodeCard({ cert, cap, start })), { cert, cap, start }, 'with a start key');
  t.same(decodeCard(encodeCard({ cert, start })), { cert, start }, 'a start key without a capability');
  t.same(decodeCard(cborEncode([cert, null, null])), { cert }, 'a null start');
  t.equal(decodeCard(cborEncode([cert, null, new Uint8Array(31)])), null, 'a start of 31 bytes is refused');
  t.equal(decodeCard(cborEncode([cert, null, start, null])), null, 'four items are refused');
});

t.test('which start key a client takes: both at once, a CARD sent again, a running session', async (t) => {
  const mk = (who: 'a' | 'b'): { ctx: ClientContext; r: Ratchets } => {
    const ctx = new ClientContext({ identity: ids[who], peer: P1, store: new MemoryClientStore(), random: (n) => new Uint8Array(randomBytes(n)) }, START_MS);
    return { ctx, r: new Ratchets(ctx) };
  };
  const [low, high] = ids.a.fingerprintHex < ids.b.fingerprintHex ? [mk('a'), mk('b')] : [mk('b'), mk('a')];
  const lowStart = low.r.startFor(high.ctx.fingerprint, hex(high.ctx.identity.cert))!;
  const highStart = high.r.startFor(low.ctx.fingerprint, hex(low.ctx.identity.cert))!;
  t.same(low.r.startFor(high.ctx.fingerprint, hex(high.ctx.identity.cert)), lowStart, 'a waiting session gives the same start again');
  t.equal(low.r.accept(START_MS, high.ctx.fingerprint, highStart, START_MS), 'kept_ours');
  t.equal(low.r.accept(START_MS, high.ctx.fingerprint, highStart, START_MS), 'ignored', 'a duplicate of that CARD is answered once');
  t.equal(low.ctx.s.ratchets![high.ctx.fingerprint]!.start, hex(lowStart), 'both started: the lower fingerprint keeps its own');
  t.equal(high.r.accept(START_MS, low.ctx.fingerprint, lowStart, START_MS), 'taken');
  t.equal(high.ctx.s.ratchets![low.ctx.fingerprint]!.start, hex(lowStart), 'and the higher takes the lower one\'s');
  const running = high.ctx.s.ratchets![low.ctx.fingerprint]!.s;
  t.equal(high.r.accept(START_MS, low.ctx.fingerprint, lowStart, START_MS + 1), 'ignored');
  t.equal(high.ctx.s.ratchets![low.ctx.fingerprint]!.s, running, 'the same start again changes nothing');
  t.equal(high.r.accept(START_MS, low.ctx.fingerprint, new Uint8Array(randomBytes(32)), START_MS), 'ignored');
  t.equal(high.ctx.s.ratchets![low.ctx.fingerprint]!.s, running, 'a running session is kept against a CARD no newer than its own');
  t.equal(low.r.accept(START_MS, high.ctx.fingerprint, highStart, START_MS + 5), 'ignored', 'a start key once ignored stays ignored, however late');
  t.equal(high.r.startFor(low.ctx.fingerprint, hex(low.ctx.identity.cert)), undefined, 'and our CARD carries no start');
  const blob = high.r.blobFor(low.ctx.fingerprint, hex(low.ctx.identity.cert), { kind: 1, id: new Uint8Array(16), sentAtMs: START_MS, body: new Uint8Array(3) });
  t.equal(blob[0], RATCHET_VERSION, 'the responder sends through the session at once');
  const opened = low.r.open(START_MS, blob);
  t.ok(opened.ok && opened.opened.fromHex === high.ctx.fingerprint, 'the initiator opens it and knows the sender');
  low.ctx.s.ratchets![high.ctx.fingerprint] = { ...low.ctx.s.ratchets![high.ctx.fingerprint]!, s: 'ff' };
  t.same(low.r.open(START_MS, blob), { ok: false, reason: 'not_this_session' }, 'a corrupted stored session is dropped');
  t.equal(low.ctx.s.ratchets![high.ctx.fingerprint], undefined);
  t.equal(low.ctx.drops.toJSON()['ratchet_bad_state'], 1, 'and counted');
  // Low lost its session; its next CARD carries a new start key, newer than the one high took.
  const again = low.r.startFor(high.ctx.fingerprint, hex(high.ctx.identity.cert))!;
  t.not(hex(again), hex(lowStart), 'a new start key');
  t.equal(high.r.accept(START_MS, low.ctx.fingerprint, again, START_MS + 10), 'restarted', 'a newer CARD with a new start key replaces the running session');
  t.equal(high.ctx.s.ratchets![low.ctx.fingerprint]!.start, hex(again));
  t.equal(high.r.accept(START_MS, low.ctx.fingerprint, lowStart, START_MS + 20), 'ignored', 'the start key it replaced, replayed later, does not');
  t.equal(high.ctx.s.ratchets![low.ctx.fingerprint]!.start, hex(again));
});

t.test('a stranger\'s start key is not taken; once accepted as a contact, one session starts', async (t) => {
  const w = world('request');
  t.ok(w.net.runUntil(() => w.c('a').registered && w.c('b').registered, 600_000), 'both registered');
  w.c('a').addContact(w.net.now, `${ids.b.fingerprintHex}@10.0.0.2:7000`, 'bob');
  const [first] = send(w, 'a', 1, 'hello stranger');
  t.ok(w.net.runUntil(() => texts(w.events.b).length === 1, 600_000), 'bob shows the request');
  t.equal(w.stores.b.load()!.ratchets?.[ids.a.fingerprintHex], undefined, 'bob took no start key from a stranger');
  t.ok(w.stores.a.load()!.ratchets?.[ids.b.fingerprintHex], 'alice waits with her own');
  w.c('b').acceptRequest(w.net.now, ids.a.fingerprintHex, 'alice');
  t.ok(w.net.runUntil(() => delivered(w, 'a', [first!]), 600_000), 'the withheld receipt comes');
  const same = (): boolean => {
    const ra = w.stores.a.load()!.ratchets?.[ids.b.fingerprintHex];
    const rb = w.stores.b.load()!.ratchets?.[ids.a.fingerprintHex];
    return !!ra && !!rb && ra.start === rb.start;
  };
  t.ok(w.net.runUntil(same, 600_000), 'both hold one session from the same start key');
  w.versions.a.length = 0;
  w.versions.b.length = 0;
  const sentA = send(w, 'a', 2, 'after');
  const sentB = send(w, 'b', 2, 'reply');
  t.ok(w.net.runUntil(() => delivered(w, 'a', sentA) && delivered(w, 'b', sentB), 600_000), 'all delivered');
  t.ok(w.versions.a.includes(RATCHET_VERSION) && w.versions.b.includes(RATCHET_VERSION), 'through the session both ways');
  t.same(texts(w.events.b), ['hello stranger 0', 'after 0', 'after 1']);
  t.same(texts(w.events.a), ['reply 0', 'reply 1']);
});

t.test('a replaced session still opens what was on its way under it; a CARD older than the session\'s messages restarts nothing', async (t) => {
  const mk = (who: 'a' | 'b'): { ctx: ClientContext; r: Ratchets } => {
    const ctx = new ClientContext({ identity: ids[who], peer: P1, store: new MemoryClientStore(), random: (n) => new Uint8Array(randomBytes(n)) }, START_MS);
    return { ctx, r: new Ratchets(ctx) };
  };
  const a = mk('a');
  const b = mk('b');
  const fa = a.ctx.fingerprint;
  const fb = b.ctx.fingerprint;
  const part = (n: number): { kind: number; id: Uint8Array; sentAtMs: number; body: Uint8Array } => ({ kind: 1, id: new Uint8Array(16).fill(n), sentAtMs: START_MS + n, body: new Uint8Array(3) });
  const start = a.r.startFor(fb, hex(b.ctx.identity.cert))!;
  t.equal(b.r.accept(START_MS, fa, start, START_MS), 'taken');
  const first = b.r.blobFor(fa, hex(a.ctx.identity.cert), part(5));
  t.ok(a.r.open(START_MS, first).ok, 'alice opens bob\'s first message: her session runs');
  t.equal(a.ctx.s.ratchets![fb]!.at, START_MS + 5, 'and notes its sending time');
  t.equal(a.r.accept(START_MS, fb, new Uint8Array(randomBytes(32)), START_MS + 3), 'ignored', 'a CARD bob sent before that message restarts nothing');
  const fromA = a.r.blobFor(fb, hex(b.ctx.identity.cert), part(6));
  const fromB = b.r.blobFor(fa, hex(a.ctx.identity.cert), part(7));
  t.equal(fromA[0], RATCHET_VERSION);
  // Alice finds the session out of step and restarts it; bob's message under the old one is still on its way.
  t.ok(a.r.restart(START_MS + 10, fb, hex(b.ctx.identity.cert)));
  const again = a.r.startFor(fb, hex(b.ctx.identity.cert))!;
  t.not(hex(again), hex(start), 'a new start key');
  const o1 = a.r.open(START_MS + 11, fromB);
  t.ok(o1.ok && o1.opened.fromHex === fb, 'alice opens it with the session she replaced');
  t.equal(b.r.accept(START_MS + 12, fa, again, START_MS + 10), 'restarted', 'bob takes the new start key over his running session');
  const o2 = b.r.open(START_MS + 13, fromA);
  t.ok(o2.ok && o2.opened.fromHex === fa, 'and still opens alice\'s message sent under the old one');
  const reply = b.r.blobFor(fa, hex(a.ctx.identity.cert), part(8));
  t.ok(a.r.open(START_MS + 14, reply).ok, 'the new session carries bob\'s next message');
  t.ok(a.r.canSend(fb), 'and alice can send through it');
  const later = START_MS + 9 * 24 * 3600_000;
  t.same(b.r.open(later, fromA), { ok: false, reason: 'not_this_session' }, 'a copy is not opened again');
  t.equal(b.ctx.s.ratchets![fa]!.prev, undefined, 'the replaced session is forgotten after RATCHET_SKIPPED_KEY_AGE_MAX_MS');
});
