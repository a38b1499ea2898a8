/**
 * Ratcheted sessions that get out of step (src/client/outgoing.ts, src/client/ratchets.ts): a
 * home restored from a `peerpost backup` copy, one side's session reset, and the skip bound. Two
 * clients on two peers over the virtual network; the session restarts by itself, both users get
 * one `session-restarted` event, every message is shown exactly once, and a message beyond the
 * skip bound fails for its sender with `session-skip-bound`.
 */
import t, { type Test } from 'tap';
import { copyFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Peer } from '../src/peer/index.js';
import { MsgType, decode } from '../src/protocol/index.js';
import { Client, MemoryClientStore, type ClientEvent, type ClientOptions, type ClientStore } from '../src/client/index.js';
import { generateIdentity, type Identity } from '../src/identity/certificate.js';
import { kdfCk, RATCHET_SKIP_PER_MESSAGE_MAX, RATCHET_VERSION } from '../src/crypto/ratchet.js';
import { decodeRatchetState, encodeRatchetState } from '../src/crypto/ratchet-state.js';
import { backupStore, openStore, storePath, type SqliteClientStore } from '../src/store/index.js';
import { legacyBatch } from '../src/store/open.js';
import { hex, unhex } from '../src/client/context.js';
import { SESSION_RECOVERY_MIN_MS, SESSION_RECOVERY_ROUNDS, SESSION_RESTART_WAIT_MS } from '../src/client/outgoing.js';
import type { Addr } from '../src/core/types.js';
import { VNet, type Faults } from './helpers/vnet.js';

const START_MS = Date.UTC(2026, 0, 1);
const P1: Addr = { host: '10.0.0.1', port: 7000 };
const P2: Addr = { host: '10.0.0.2', port: 7000 };
const A: Addr = { host: '10.0.1.1', port: 5000 };
const B: Addr = { host: '10.0.2.1', port: 5000 };
type Who = 'a' | 'b';

const ids = {} as Record<'p1' | 'p2' | 'a' | 'b', Identity>;
t.before(async () => {
  const notBefore = new Date(START_MS - 86400_000);
  for (const k of ['p1', 'p2', 'a', 'b'] as const) ids[k] = (await generateIdentity({ notBefore }))!;
});

interface World {
  net: VNet;
  stores: Record<Who, ClientStore>;
  events: Record<Who, ClientEvent[]>;
  c(which: Who): Client;
  /** A new client process on `store` (its own store when not given). */
  restart(which: Who, store?: ClientStore): void;
}

function world(seed: string, stores: Record<Who, ClientStore>, faults: Partial<Faults> = {}, opts: Partial<ClientOptions> = {}): World {
  const net = new VNet({ seed, startMs: START_MS, faults });
  net.add(P1, new Peer({ identity: ids.p1, random: net.random('p1'), rateLimit: null }, net.now));
  net.add(P2, new Peer({ identity: ids.p2, random: net.random('p2'), rateLimit: null }, net.now));
  let gen = 0;
  const make = (which: Who): Client =>
    new Client({ identity: ids[which], peer: which === 'a' ? P1 : P2, store: w.stores[which], random: net.random(`${which}${gen++}`), ...opts }, net.now);
  const w: World = {
    net, stores, events: { a: [], b: [] },
    c: (which) => net.machine<Client>(which === 'a' ? A : B),
    restart: (which, store) => {
      if (store) w.stores[which] = store;
      net.replace(which === 'a' ? A : B, make(which));
    },
  };
  net.add(A, make('a'));
  net.add(B, make('b'));
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
  const running = (): boolean => {
    const ra = w.stores.a.load()?.ratchets?.[ids.b.fingerprintHex];
    const rb = w.stores.b.load()?.ratchets?.[ids.a.fingerprintHex];
    return !!ra && !!rb && ra.start === rb.start;
  };
  t.ok(w.net.runUntil(running, 600_000), 'one session from one start key');
}

function texts(evs: ClientEvent[]): string[] {
  return evs.filter((e): e is Extract<ClientEvent, { type: 'message' }> => e.type === 'message').map((e) => e.text);
}

function restarts(evs: ClientEvent[]): Array<Extract<ClientEvent, { type: 'session-restarted' }>> {
  return evs.filter((e): e is Extract<ClientEvent, { type: 'session-restarted' }> => e.type === 'session-restarted');
}

function send(w: World, from: Who, n: number, label: string): string[] {
  const out: string[] = [];
  for (let i = 0; i < n; i++) out.push(...w.c(from).send(w.net.now, [from === 'a' ? 'bob' : 'alice'], `${label} ${i}`));
  return out;
}

const done = (w: World, from: Who, sent: string[]): boolean => sent.every((id) => w.c(from).messageState(id)?.state === 'delivered');

/** Messages both ways until every one is delivered, so the session has stepped. */
function exchange(w: World, t: Test, label: string, n: number): void {
  const a = send(w, 'a', n, `${label} a`);
  t.ok(w.net.runUntil(() => done(w, 'a', a), 600_000), `${label}: alice's delivered`);
  const b = send(w, 'b', n, `${label} b`);
  t.ok(w.net.runUntil(() => done(w, 'b', b), 600_000), `${label}: bob's delivered`);
}

function shownOnce(t: Test, evs: ClientEvent[], who: string): void {
  const got = texts(evs);
  t.equal(new Set(got).size, got.length, `${who} shows no message twice`);
}

t.test('a home restored from a backup: the session restarts, both are told once, nothing is lost or shown twice', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'peerpost-recovery-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const homes = { a: join(dir, 'a'), b: join(dir, 'b') };
  const open = (who: Who): SqliteClientStore => openStore(homes[who]);
  const w = world('restore', { a: open('a'), b: open('b') });
  t.teardown(() => {
    for (const s of Object.values(w.stores)) (s as SqliteClientStore).close();
  });
  connect(w, t);
  exchange(w, t, 'before', 2);
  const backup = join(dir, 'b-backup.db');
  const made = await backupStore(homes.b, backup);
  t.ok(made.messages >= 4, 'the backup holds the history so far');
  exchange(w, t, 'after backup', 3);

  // Bob's home goes back to the backup: stop, copy it over client.db, drop the WAL files, start.
  (w.stores.b as SqliteClientStore).close();
  const file = storePath(homes.b);
  copyFileSync(backup, file);
  rmSync(`${file}-wal`, { force: true });
  rmSync(`${file}-shm`, { force: true });
  w.restart('b', open('b'));
  t.ok(w.net.runUntil(() => w.c('b').registered, 600_000), 'bob registered again');
  const before = { a: texts(w.events.a).length, b: texts(w.events.b).length };

  // Every distinct blob bob's DELIVERs carried, by message id.
  const blobsOf = new Map<string, Set<string>>();
  w.net.filter = (d) => {
    const r = d.from.host === B.host && d.to.host === P1.host ? decode(d.data) : undefined;
    if (r?.ok && r.msg.type === MsgType.DELIVER) {
      const id = hex(r.msg.id);
      if (!blobsOf.has(id)) blobsOf.set(id, new Set());
      blobsOf.get(id)!.add(hex(r.msg.blob));
    }
    return true;
  };
  const sentA = send(w, 'a', 2, 'restored a');
  const sentB = send(w, 'b', 2, 'restored b');
  t.ok(w.net.runUntil(() => done(w, 'a', sentA) && done(w, 'b', sentB), 3_600_000), 'every message after the restore is delivered');
  t.same(texts(w.events.b).slice(before.b).sort(), ['restored a 0', 'restored a 1'], 'bob shows alice\'s new messages once');
  t.same(texts(w.events.a).slice(before.a).sort(), ['restored b 0', 'restored b 1'], 'alice shows bob\'s once');
  shownOnce(t, w.events.a, 'alice');
  shownOnce(t, w.events.b, 'bob');
  const ra = restarts(w.events.a);
  const rb = restarts(w.events.b);
  t.equal(ra.length, 1, 'alice is told once that the session restarted');
  t.equal(rb.length, 1, 'and so is bob');
  t.equal(ra[0]?.with, ids.b.fingerprintHex);
  t.equal(rb[0]?.with, ids.a.fingerprintHex);
  // Bob restarted the session (his restored side could not open alice's messages, nor she his):
  // what he sent again waited for the new session to be able to send, and went through it, never
  // sealed, so it kept forward secrecy (a peer holding back receipts, which is what starts a
  // restart, cannot turn ratcheted messages into sealed copies that way).
  for (const id of sentB) {
    const blobs = [...(blobsOf.get(id) ?? [])];
    t.ok(blobs.length >= 2, `${id.slice(0, 8)} went again after the restart (${blobs.length} forms)`);
    t.ok(blobs.every((b) => unhex(b)[0] === RATCHET_VERSION), `${id.slice(0, 8)}: every form through a session, none sealed`);
  }
  t.ok(w.events.b.some((e) => e.type === 'delivery' && e.reason === 'session-restarting'), 'meanwhile bob saw why they waited');

  // The new session carries what follows, both ways.
  const nextA = send(w, 'a', 2, 'new session a');
  const nextB = send(w, 'b', 2, 'new session b');
  t.ok(w.net.runUntil(() => done(w, 'a', nextA) && done(w, 'b', nextB), 600_000), 'and the messages after it');
  const sa = w.stores.a.load()!.ratchets![ids.b.fingerprintHex]!;
  const sb = w.stores.b.load()!.ratchets![ids.a.fingerprintHex]!;
  t.equal(sa.start, sb.start, 'one new session');
  t.equal(restarts(w.events.a).length + restarts(w.events.b).length, 2, 'no further restarts');
  shownOnce(t, w.events.a, 'alice');
  shownOnce(t, w.events.b, 'bob');
});

t.test('one side\'s session reset mid-exchange, under loss and duplication: recovered, exactly once', async (t) => {
  const w = world('reset', { a: new MemoryClientStore(), b: new MemoryClientStore() }, { loss: 0.1, duplicate: 0.1, reorder: 0.1, delayMs: 10, jitterMs: 20 });
  connect(w, t);
  exchange(w, t, 'warm', 2);
  const sentA = send(w, 'a', 3, 'in flight a');
  const sentB = send(w, 'b', 3, 'in flight b');
  w.net.run(50);
  // Bob's session goes back to an older, valid state: a new session of his own that alice never saw.
  const snap = w.stores.b.load()!;
  const fresh = new MemoryClientStore();
  const rec = snap.ratchets![ids.a.fingerprintHex]!;
  const other = world('other', { a: new MemoryClientStore(), b: new MemoryClientStore() });
  connect(other, t);
  rec.s = other.stores.b.load()!.ratchets![ids.a.fingerprintHex]!.s;
  fresh.commit(legacyBatch(snap, []));
  w.restart('b', fresh);
  t.ok(w.net.runUntil(() => done(w, 'a', sentA) && done(w, 'b', sentB), 3_600_000), 'every message is delivered');
  const gotB = texts(w.events.b).filter((x) => x.startsWith('in flight a'));
  const gotA = texts(w.events.a).filter((x) => x.startsWith('in flight b'));
  t.same(gotB.sort(), ['in flight a 0', 'in flight a 1', 'in flight a 2'], 'bob shows each of alice\'s once');
  t.same(gotA.sort(), ['in flight b 0', 'in flight b 1', 'in flight b 2'], 'alice shows each of bob\'s once');
  t.ok(restarts(w.events.a).length >= 1 && restarts(w.events.b).length >= 1, 'both are told');
  t.ok(restarts(w.events.a).length <= 2 && restarts(w.events.b).length <= 2, 'without a storm of restarts');
  shownOnce(t, w.events.a, 'alice');
  shownOnce(t, w.events.b, 'bob');
});

t.test('at the skip bound: the message fails for its sender with session-skip-bound, is never shown, and the next one goes', async (t) => {
  const w = world('bound', { a: new MemoryClientStore(), b: new MemoryClientStore() });
  connect(w, t);
  exchange(w, t, 'warm', 1);
  // Alice's sending chain moves RATCHET_SKIP_PER_MESSAGE_MAX + 1 messages ahead, as if that many were lost.
  const snap = w.stores.a.load()!;
  const rec = snap.ratchets![ids.b.fingerprintHex]!;
  let state = decodeRatchetState(unhex(rec.s));
  t.ok(state.cks, 'alice can send');
  let ck = state.cks!;
  for (let i = 0; i <= RATCHET_SKIP_PER_MESSAGE_MAX; i++) ck = kdfCk(ck)[0];
  state = { ...state, cks: ck, ns: state.ns + RATCHET_SKIP_PER_MESSAGE_MAX + 1 };
  rec.s = hex(encodeRatchetState(state));
  const moved = new MemoryClientStore();
  moved.commit(legacyBatch(snap, []));
  w.restart('a', moved);
  t.ok(w.net.runUntil(() => w.c('a').registered, 600_000));

  const [far] = send(w, 'a', 1, 'too far');
  t.ok(w.net.runUntil(() => w.c('a').messageState(far!)?.state === 'failed', 3_600_000), 'the message fails');
  t.equal(w.c('a').messageState(far!)?.reason, 'session-skip-bound', 'with a stable reason');
  t.ok(w.events.a.some((e) => e.type === 'delivery' && e.id === far && e.state === 'failed' && e.reason === 'session-skip-bound'), 'shown to its sender');
  t.ok(w.events.b.some((e) => e.type === 'rejected' && e.reason === 'ratchet_too_far_ahead'), 'bob refused it as too far ahead');
  t.ok((w.c('b').stats().drops['ratchet_too_far_ahead'] ?? 0) >= SESSION_RECOVERY_ROUNDS, 'each push of it');
  const [next] = send(w, 'a', 1, 'after the bound');
  t.ok(w.net.runUntil(() => done(w, 'a', [next!]), 600_000), 'the next message is delivered');
  t.same(texts(w.events.b).filter((x) => !x.startsWith('warm')), ['after the bound 0'], 'only it is shown, once');
  t.equal(restarts(w.events.a).length, 1, 'alice restarted the session');
  const [reply] = send(w, 'b', 1, 'reply');
  t.ok(w.net.runUntil(() => done(w, 'b', [reply!]), 600_000));
  const [through] = send(w, 'a', 1, 'through');
  const part = (): string | undefined => w.stores.a.load()!.outbox.find((m) => m.id === through)?.parts[0]?.blob;
  t.ok(w.net.runUntil(() => part() !== undefined, 60_000), 'saved');
  t.equal(unhex(part()!)[0], RATCHET_VERSION, 'the new session carries the messages after it');
  t.ok(w.net.runUntil(() => done(w, 'a', [through!]), 600_000), 'delivered');
  t.equal(w.stores.a.load()!.ratchets![ids.b.fingerprintHex]!.start, w.stores.b.load()!.ratchets![ids.a.fingerprintHex]!.start, 'one new session');
});

t.test('a peer that holds back receipts: the restarted session waits for an answer, and what waited goes sealed only after SESSION_RESTART_WAIT_MS, shown once', async (t) => {
  const w = world('no-answer', { a: new MemoryClientStore(), b: new MemoryClientStore() });
  connect(w, t);
  exchange(w, t, 'warm', 2);
  // Alice's device takes bob's messages, but nothing she sends through a session reaches bob: his
  // messages go unreceipted, and his restarted session never gets her answer.
  const forms: Array<{ id: string; first: number; atMs: number }> = [];
  w.net.filter = (d, now) => {
    const r = decode(d.data);
    if (!r.ok || r.msg.type !== MsgType.DELIVER) return true;
    if (d.from.host === B.host) forms.push({ id: hex(r.msg.id), first: r.msg.blob[0]!, atMs: now });
    return !(d.from.host === A.host && r.msg.blob[0] === RATCHET_VERSION);
  };
  const sentB = send(w, 'b', 2, 'waiting b');
  t.ok(w.net.runUntil(() => restarts(w.events.b).length > 0, 3_600_000), 'bob restarts the session after acknowledged pushes without a receipt');
  const restartAt = w.net.now;
  t.ok(forms.filter((f) => sentB.includes(f.id) && f.atMs < restartAt).every((f) => f.first === RATCHET_VERSION), 'until then through the session');
  t.ok(w.net.runUntil(() => forms.some((f) => sentB.includes(f.id) && f.atMs > restartAt), 3_600_000), 'they go again in the end');
  const again = forms.filter((f) => sentB.includes(f.id) && f.atMs > restartAt);
  t.ok(again.every((f) => f.atMs >= restartAt + SESSION_RESTART_WAIT_MS), `not before SESSION_RESTART_WAIT_MS (${SESSION_RESTART_WAIT_MS / 60_000} min) after the restart`);
  t.ok(again.every((f) => f.first !== RATCHET_VERSION), 'sealed then, as the new session still cannot send');
  t.ok(w.events.b.some((e) => e.type === 'delivery' && e.reason === 'session-restarting'), 'meanwhile bob saw why they waited');
  t.ok(w.net.runUntil(() => texts(w.events.a).filter((x) => x.startsWith('waiting b')).length === 2, 600_000), 'alice shows both');
  w.net.run(600_000);
  t.equal(restarts(w.events.b).filter((e) => e.by === 'us').length, 1, 'bob restarted once');
  t.same(texts(w.events.a).filter((x) => x.startsWith('waiting b')).sort(), ['waiting b 0', 'waiting b 1'], 'each shown once');
});

t.test('a receipt that comes late, after the restart, ends the wait: the message is delivered and not sent again', async (t) => {
  // Receipt waits short enough that alice restarts while bob's first receipt is still being sent.
  const w = world('late-receipt', { a: new MemoryClientStore(), b: new MemoryClientStore() }, {}, { receiptWaitMs: 2_000, receiptWaitMaxMs: 4_000 });
  connect(w, t);
  exchange(w, t, 'warm', 2);
  // Bob's receipts are held back until alice restarts; then those made through the old session get
  // through (sent before, or before bob took alice's new start key), not his answer through the new one.
  const old = new Set<string>();
  let restarted = false;
  let sentAfter = 0;
  let late = '';
  w.net.filter = (d) => {
    const r = decode(d.data);
    if (!r.ok || r.msg.type !== MsgType.DELIVER) return true;
    if (d.from.host === A.host) {
      if (restarted && hex(r.msg.id) === late) sentAfter++;
      return true;
    }
    const blob = hex(r.msg.blob);
    if (!restarted || restarts(w.events.b).length === 0) old.add(blob);
    return restarted && old.has(blob);
  };
  late = send(w, 'a', 1, 'late')[0]!;
  t.ok(w.net.runUntil(() => restarts(w.events.a).length > 0, 3_600_000), 'alice restarts the session');
  restarted = true;
  t.ok(w.events.a.some((e) => e.type === 'delivery' && e.id === late && e.reason === 'session-restarting'), 'her message waits for the new session');
  t.ok(w.net.runUntil(() => done(w, 'a', [late!]), 600_000), 'a late receipt through the old session ends the wait: delivered');
  t.equal(sentAfter, 0, 'it was not sent again after the restart');
  t.notOk(w.stores.a.load()!.outbox.find((m) => m.id === late)!.parts.some((p) => p.waiting !== undefined), 'nothing waits');
  t.same(texts(w.events.b).filter((x) => x === 'late 0'), ['late 0'], 'bob shows it once');
});

t.test('receipts held up for a few minutes are no session out of step: the last push gets its whole receipt wait, and no restart', async (t) => {
  const w = world('held-up', { a: new MemoryClientStore(), b: new MemoryClientStore() });
  connect(w, t);
  exchange(w, t, 'warm', 1);
  // Bob's receipts do not get through for 200 s (his way back to alice is broken, not his session):
  // alice's pushes at 0, 60 and 180 s are acknowledged by his device without a receipt.
  const until = w.net.now + 200_000;
  w.net.filter = (d, now) => {
    const r = decode(d.data);
    return !(d.from.host === B.host && now < until && r.ok && r.msg.type === MsgType.DELIVER);
  };
  const [m] = send(w, 'a', 1, 'held up');
  t.ok(w.net.runUntil(() => done(w, 'a', [m!]), 3_600_000), 'delivered once the way back works again');
  t.ok(w.net.now > until, 'not before');
  t.equal(restarts(w.events.a).length, 0, `no restart after ${SESSION_RECOVERY_ROUNDS} acknowledged pushes: the receipt of the last one came within its wait`);
  t.same(restarts(w.events.b), [], 'bob was told nothing either');
  t.same(texts(w.events.b).filter((x) => x.startsWith('held up')), ['held up 0'], 'shown once');
});

t.test('a receipt for a later message through the session proves it works: an earlier one without receipt restarts nothing', async (t) => {
  const w = world('later-receipt', { a: new MemoryClientStore(), b: new MemoryClientStore() });
  connect(w, t);
  exchange(w, t, 'warm', 1);
  // Every receipt bob makes for pushes of the first message is lost; the second one's get through.
  let first = '';
  let lossy = true;
  let window = 0;
  const lost = new Set<string>();
  w.net.filter = (d, now) => {
    const r = decode(d.data);
    if (!r.ok) return true;
    const msg = r.msg.type === MsgType.SESSION ? r.msg.inner : r.msg;
    if (d.to.host === B.host && msg.type === MsgType.PUSH && hex(msg.id) === first) window = now + 1_000;
    if (d.from.host !== B.host || msg.type !== MsgType.DELIVER || !lossy) return true;
    const blob = hex(msg.blob);
    if (now <= window) lost.add(blob);
    return !lost.has(blob);
  };
  first = send(w, 'a', 1, 'first')[0]!;
  w.net.run(30_000);
  const [second] = send(w, 'a', 1, 'second');
  t.ok(w.net.runUntil(() => done(w, 'a', [second!]), 600_000), 'the second message is delivered');
  w.net.run(SESSION_RECOVERY_MIN_MS + 10 * 60_000);
  t.notOk(done(w, 'a', [first]), 'the first still has no receipt');
  t.ok(lost.size >= SESSION_RECOVERY_ROUNDS, `its receipts were lost, at least ${SESSION_RECOVERY_ROUNDS} of them`);
  t.equal(restarts(w.events.a).length, 0, 'no restart');
  t.ok((w.c('a').stats().drops['session_receipt_late'] ?? 0) >= 1, 'alice took its receipt to be late, not lost in the session');
  lossy = false;
  t.ok(w.net.runUntil(() => done(w, 'a', [first]), 3_600_000), 'its next push gets a receipt');
  t.same(texts(w.events.b).filter((x) => x === 'first 0' || x === 'second 0').sort(), ['first 0', 'second 0'], 'each shown once');
});

t.test('short receipt waits: acknowledgements without a receipt must span SESSION_RECOVERY_MIN_MS before a restart', async (t) => {
  const w = world('min-span', { a: new MemoryClientStore(), b: new MemoryClientStore() }, {}, { receiptWaitMs: 2_000, receiptWaitMaxMs: 4_000 });
  connect(w, t);
  exchange(w, t, 'warm', 1);
  // Bob's receipts are lost for half of SESSION_RECOVERY_MIN_MS: many acknowledged pushes, each waited for in full.
  const until = w.net.now + SESSION_RECOVERY_MIN_MS / 2;
  let pushes = 0;
  w.net.filter = (d, now) => {
    const r = decode(d.data);
    if (!r.ok) return true;
    const msg = r.msg.type === MsgType.SESSION ? r.msg.inner : r.msg;
    if (d.to.host === B.host && msg.type === MsgType.PUSH && now < until) pushes++;
    return !(d.from.host === B.host && now < until && msg.type === MsgType.DELIVER);
  };
  const [m] = send(w, 'a', 1, 'span');
  t.ok(w.net.runUntil(() => done(w, 'a', [m!]), 3_600_000), 'delivered once the receipts get through');
  t.ok(pushes > SESSION_RECOVERY_ROUNDS, `pushed ${pushes} times while they were lost`);
  t.equal(restarts(w.events.a).length, 0, `no restart: they spanned less than SESSION_RECOVERY_MIN_MS (${SESSION_RECOVERY_MIN_MS / 60_000} min)`);
});
