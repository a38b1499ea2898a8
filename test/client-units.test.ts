/**
 * Client building blocks: RFC 6298 estimator, content codecs, contact addresses, the stores, and
 * the virtual network's determinism.
 */
import t from 'tap';
import { mkdtempSync, readFileSync, writeFileSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  RttEstimator, RTO_INITIAL_MS, RTO_MAX_MS, RTO_MIN_MS, parseContactAddress, checkPetname, MemoryClientStore, FileClientStore, emptyBatch,
  emptySnapshot, encodeText, decodeText, encodeReceipt, decodeReceipt, encodeChunk, decodeChunk, encodeVerify, decodeVerify,
  splitBody, ContentKind, CHUNK_DATA_MAX_BYTES, RECEIPT_IDS_MAX, TEXT_MAX_BYTES, CHUNK_COUNT_MAX,
} from '../src/client/index.js';
import { SEAL_BODY_MAX_BYTES } from '../src/crypto/seal.js';
import { Reassembler } from '../src/client/reassembly.js';
import { cborEncode } from '../src/protocol/cbor.js';
import { VNet, type Machine } from './helpers/vnet.js';
import { addrKey, type Addr, type Transmit } from '../src/core/types.js';
import { randomBytes } from 'node:crypto';
import { generateIdentity } from '../src/identity/certificate.js';
import { ACKS_PENDING_MAX, ClientContext } from '../src/client/context.js';
import { ReplayWindow, sessionTagOk } from '../src/crypto/session.js';
import { decode } from '../src/protocol/codec.js';
import { ACK_IDS_MAX, MsgType } from '../src/protocol/constants.js';

t.test('RFC 6298 estimator', async (t) => {
  const r = new RttEstimator();
  t.equal(r.rtoMs, RTO_INITIAL_MS, 'initial RTO 1 s');
  r.sample(100);
  t.equal(r.srttMs, 100);
  t.equal(r.rttvarMs, 50);
  t.equal(r.rtoMs, 300, 'SRTT + 4 RTTVAR');
  r.sample(200);
  t.equal(r.rttvarMs, 0.75 * 50 + 0.25 * 100);
  t.equal(r.srttMs, 0.875 * 100 + 0.125 * 200);
  t.equal(r.rtoMs, Math.ceil(112.5 + 4 * 62.5));
  for (let i = 0; i < 50; i++) r.sample(1);
  t.equal(r.rtoMs, RTO_MIN_MS, 'clamped to the minimum');
  t.equal(r.timeoutMs(1), 2 * RTO_MIN_MS, 'doubles per retransmission');
  t.equal(r.timeoutMs(30), RTO_MAX_MS, 'capped');
  r.sample(-1);
  r.sample(Number.NaN);
  t.equal(r.rtoMs, RTO_MIN_MS, 'nonsense samples ignored');
});

t.test('content codecs round-trip and refuse malformed bodies', async (t) => {
  const group = { id: 'ab'.repeat(16), name: 'team', members: [{ fingerprint: 'cd'.repeat(32), peer: '1.2.3.4:5' }] };
  t.same(decodeText(encodeText({ text: 'héllo' })), { text: 'héllo' });
  t.same(decodeText(encodeText({ text: 'x', group })), { text: 'x', group });
  t.equal(decodeText(cborEncode(['x', [new Uint8Array(16), 'n', [[new Uint8Array(31), '1.2.3.4:5']]]])), null, 'short fingerprint');
  t.equal(decodeText(cborEncode(['x', [new Uint8Array(16), 'n', [[new Uint8Array(32), 'nohost']]]])), null, 'bad peer');
  t.equal(decodeText(cborEncode([1, null])), null);
  t.equal(decodeText(new Uint8Array([0xff])), null, 'garbage');
  const ids = [new Uint8Array(16).fill(1), new Uint8Array(16).fill(2)];
  t.same(decodeReceipt(encodeReceipt(ids)), ids);
  t.throws(() => encodeReceipt([]));
  t.equal(decodeReceipt(cborEncode([[]])), null);
  t.equal(decodeReceipt(cborEncode([[new Uint8Array(15)]])), null);
  const full = encodeReceipt(Array.from({ length: RECEIPT_IDS_MAX }, () => new Uint8Array(16)));
  t.ok(full.length <= SEAL_BODY_MAX_BYTES, 'a full receipt fits one sealed body');
  const chunk = { messageId: new Uint8Array(16).fill(9), index: 1, count: 3, innerKind: ContentKind.TEXT, data: new Uint8Array(CHUNK_DATA_MAX_BYTES).fill(7) };
  const enc = encodeChunk({ ...chunk, index: CHUNK_COUNT_MAX - 1, count: CHUNK_COUNT_MAX });
  t.ok(enc.length <= SEAL_BODY_MAX_BYTES, `a full chunk (${enc.length} B) fits one sealed body`);
  t.same(decodeChunk(encodeChunk(chunk)), chunk);
  t.equal(decodeChunk(encodeChunk({ ...chunk, index: 3 })), null, 'index out of range');
  t.equal(decodeChunk(encodeChunk({ ...chunk, count: 1, index: 0 })), null, 'a single chunk is not a chunk');
  t.equal(decodeChunk(encodeChunk({ ...chunk, innerKind: ContentKind.RECEIPT })), null, 'receipts are never chunked');
  t.same(decodeVerify(encodeVerify(new Uint8Array([1, 2]))), new Uint8Array([1, 2]));
  const body = new Uint8Array(TEXT_MAX_BYTES + 100);
  const parts = splitBody(body);
  t.equal(parts.length, Math.ceil(body.length / CHUNK_DATA_MAX_BYTES));
  t.ok(parts.length <= CHUNK_COUNT_MAX);
  t.equal(parts.reduce((n, p) => n + p.length, 0), body.length);
});

t.test('contact addresses are parsed strictly', async (t) => {
  const fp = 'a'.repeat(64);
  t.same(parseContactAddress(`${fp}@10.0.0.1:7000`), { fingerprint: fp, peer: { host: '10.0.0.1', port: 7000 }, peerKey: '10.0.0.1:7000' });
  t.equal(parseContactAddress(`${fp}@[::1]:7000`).peerKey, '[::1]:7000');
  const bad: Array<[string, string]> = [
    [`${fp}`, 'PEERPOST_CONTACT_ADDRESS'],
    [`${fp}@a@b:1`, 'PEERPOST_CONTACT_ADDRESS'],
    [`${'A'.repeat(64)}@h:1`, 'PEERPOST_CONTACT_FINGERPRINT'],
    [`${'a'.repeat(63)}@h:1`, 'PEERPOST_CONTACT_FINGERPRINT'],
    [`${fp}@h:0`, 'PEERPOST_CONTACT_PEER'],
    [`${fp}@h:70000`, 'PEERPOST_CONTACT_PEER'],
    [`${fp}@h`, 'PEERPOST_CONTACT_PEER'],
  ];
  for (const [s, code] of bad) t.throws(() => parseContactAddress(s), { code, name: 'UsageError' }, s);
  t.equal(checkPetname('bob-2'), 'bob-2');
  for (const n of ['', ' bob', 'a'.repeat(33), 'b'.repeat(64).replace(/b/g, 'a')]) t.throws(() => checkPetname(n), { code: 'PEERPOST_PETNAME' });
});

t.test('memory store keeps a copy, not the live object', async (t) => {
  const s = new MemoryClientStore();
  t.equal(s.load(), undefined);
  const c = { petname: 'x', fingerprint: 'a'.repeat(64), peer: '1.2.3.4:5', verification: 'unverified' as const, changed: false, addedAtMs: 0 };
  s.commit({ ...emptyBatch(), contacts: [['x', c]] });
  c.petname = 'changed';
  t.equal(s.load()!.contacts[0]!.petname, 'x');
  t.equal(s.commits, 1);
});

t.test('file store: atomic rewrite, clear error on a broken file, the good file kept', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'peerpost-client-'));
  const path = join(dir, 'sub', 'client.json');
  const s = new FileClientStore(path);
  t.equal(s.load(), undefined, 'nothing yet');
  s.commit({ ...emptyBatch(), meta: [['peerFingerprint', 'b'.repeat(64)]] });
  t.equal(s.load()!.peerFingerprint, 'b'.repeat(64));
  t.same(readdirSync(join(dir, 'sub')), ['client.json'], 'no temporary file left');
  t.equal(new FileClientStore(path).load()!.peerFingerprint, 'b'.repeat(64), 'read back from the file');
  const good = readFileSync(path, 'utf8');
  writeFileSync(path, '{"version":1,"contacts":[');
  t.throws(() => new FileClientStore(path), { code: 'PEERPOST_CLIENT_STATE_BROKEN', message: new RegExp(path.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')) });
  t.equal(readFileSync(path, 'utf8'), '{"version":1,"contacts":[', 'the broken file is left untouched');
  writeFileSync(path, JSON.stringify({ ...JSON.parse(good), version: 9 }));
  t.throws(() => new FileClientStore(path), { code: 'PEERPOST_CLIENT_STATE_BROKEN', message: /unknown version/ });
  writeFileSync(path, JSON.stringify({ ...JSON.parse(good), outbox: {} }));
  t.throws(() => new FileClientStore(path), { code: 'PEERPOST_CLIENT_STATE_BROKEN', message: /outbox/ });
});

/** Echoes every datagram back after `delayMs`, with a timer of its own. */
class Echo implements Machine {
  out: Transmit[] = [];
  pending: Array<{ at: number; to: Addr; data: Uint8Array }> = [];
  received: string[] = [];
  constructor(readonly delayMs: number) {}
  handle(now: number, from: Addr, data: Uint8Array): void {
    this.received.push(`${now}:${data[0]}`);
    if (data[0]! < 20) this.pending.push({ at: now + this.delayMs, to: from, data: Uint8Array.of(data[0]! + 1) });
  }
  pollTransmit(): Transmit | undefined {
    return this.out.shift();
  }
  pollTimeout(): number | undefined {
    return this.pending[0]?.at;
  }
  handleTimeout(now: number): void {
    while (this.pending[0] && this.pending[0].at <= now) {
      const p = this.pending.shift()!;
      this.out.push({ to: p.to, data: p.data });
    }
  }
}

function runEcho(seed: number): { a: string[]; stats: object } {
  const net = new VNet({ seed, startMs: 0, faults: { loss: 0.2, duplicate: 0.2, reorder: 0.5, delayMs: 3, jitterMs: 10, reorderMs: 50 } });
  const a = new Echo(7);
  const b = new Echo(11);
  const A = { host: '1.0.0.1', port: 1 };
  const B = { host: '1.0.0.2', port: 1 };
  net.add(A, a);
  net.add(B, b);
  for (let i = 0; i < 10; i++) a.out.push({ to: B, data: Uint8Array.of(0) });
  net.run(10_000);
  return { a: a.received, stats: { ...net.stats } };
}

t.test('vnet: same seed, same run; another seed, another run; virtual time only', async (t) => {
  const x = runEcho(42);
  const y = runEcho(42);
  const z = runEcho(43);
  t.same(x, y, 'deterministic');
  t.notSame(x.a, z.a, 'the seed matters');
  const s = x.stats as { lost: number; duplicated: number; delivered: number };
  t.ok(s.lost > 0 && s.duplicated > 0 && s.delivered > 0, 'faults happen');
  const net = new VNet({ seed: 1, startMs: 1000 });
  const e = new Echo(5);
  net.add({ host: '1.0.0.1', port: 1 }, e);
  net.add({ host: '1.0.0.2', port: 1 }, new Echo(5));
  e.out.push({ to: { host: '1.0.0.2', port: 1 }, data: Uint8Array.of(0) });
  net.setUp({ host: '1.0.0.2', port: 1 }, false);
  net.run(1000);
  t.equal(net.stats.unroutable, 1, 'a node that is down receives nothing');
  t.equal(net.now, 2000, 'time advanced by exactly the run');
});

t.test('reassembly: any order, duplicates, and the bounds', async (t) => {
  const drops: string[] = [];
  const r = new Reassembler({ partialMessagesMax: 2, partialBytesMax: 100, partialAgeMaxMs: 1000 }, (why) => drops.push(why));
  const meta = { fromPeer: '1.2.3.4:5', sentAtMs: 7 };
  const chunk = (index: number, fill: number, count = 3) => ({ index, count, innerKind: ContentKind.TEXT, data: new Uint8Array(10).fill(fill) });
  t.same(r.add(0, 'm1', 'c2', chunk(2, 2), meta), { status: 'partial' });
  t.same(r.add(1, 'm1', 'c2', chunk(2, 2), meta), { status: 'partial' }, 'duplicate');
  t.same(r.add(2, 'm1', 'c0', chunk(0, 0), meta), { status: 'partial' });
  t.same(r.add(3, 'm1', 'cx', chunk(0, 0, 4), meta), { status: 'mismatch' }, 'another count for the same message');
  const done = r.add(4, 'm1', 'c1', chunk(1, 1), meta);
  t.equal(done.status, 'complete');
  if (done.status === 'complete') {
    t.same([...done.message.body], [...new Uint8Array(10).fill(0), ...new Uint8Array(10).fill(1), ...new Uint8Array(10).fill(2)], 'joined in index order');
    t.same(done.message.chunkIds.sort(), ['c0', 'c1', 'c2'], 'the mismatched chunk is not counted');
  }
  t.equal(r.size, 0);
  t.equal(r.heldBytes, 0);
  r.add(10, 'a', 'a0', chunk(0, 0), meta);
  r.add(11, 'b', 'b0', chunk(0, 0), meta);
  r.add(12, 'c', 'c0', chunk(0, 0, 5), meta);
  t.equal(r.size, 2, 'partialMessagesMax');
  t.same(drops, ['partial_evicted'], 'the oldest was dropped');
  for (let i = 1; i < 3; i++) r.add(13, 'c', `c${i}x`, { ...chunk(i, 0, 5), data: new Uint8Array(45) }, meta);
  t.equal(r.size, 1, 'partialBytesMax: the older message was dropped');
  t.equal(r.heldBytes, 100);
  t.same(drops, ['partial_evicted', 'partial_evicted']);
  r.add(20, 'd', 'd0', chunk(0, 0), meta);
  r.expire(2000);
  t.equal(r.size, 0, 'partialAgeMaxMs');
  t.ok(drops.includes('partial_expired'));
});

t.test('ACKs: the pushes handled before a poll share ACKs of up to ACK_IDS_MAX ids; ACKS_PENDING_MAX bounds what waits', async (t) => {
  const identity = await generateIdentity({ commonName: 'acks' });
  const peer: Addr = { host: '127.0.0.1', port: 7777 };
  const ctx = new ClientContext({ identity, peer, store: new MemoryClientStore(), random: (n) => new Uint8Array(randomBytes(n)) }, 1_800_000_000_000);
  const c2p = new Uint8Array(randomBytes(32));
  const session = { id: new Uint8Array(8).fill(3), idKey: '', c2p, p2c: new Uint8Array(32), tx: 0, rx: new ReplayWindow() };
  ctx.sessions.set(addrKey(peer), session);
  const ids = Array.from({ length: ACKS_PENDING_MAX + 6 }, (_, i) => {
    const id = new Uint8Array(16);
    new DataView(id.buffer).setUint32(0, i);
    return id;
  });
  for (const id of ids) ctx.queueAck(id);
  t.equal(ctx.out.length, 0, 'nothing leaves before the poll');
  t.equal(ctx.drops.toJSON()['ack_deferred'], 6, `beyond ${ACKS_PENDING_MAX} waiting, a push is left for its peer to push again`);
  ctx.flushAcks();
  t.equal(ctx.out.length, ACKS_PENDING_MAX / ACK_IDS_MAX, `${ACKS_PENDING_MAX} ids in ${ACKS_PENDING_MAX / ACK_IDS_MAX} ACKs`);
  const acked: Uint8Array[] = [];
  for (const tr of ctx.out) {
    const r = decode(tr.data);
    if (!r.ok || r.msg.type !== MsgType.SESSION || r.msg.inner.type !== MsgType.ACK) throw new Error('not an ACK in the session');
    t.ok(sessionTagOk(c2p, r.msg), 'sealed in the session');
    acked.push(...r.msg.inner.ids);
  }
  t.same(acked.map((x) => Buffer.from(x).toString('hex')), ids.slice(0, ACKS_PENDING_MAX).map((x) => Buffer.from(x).toString('hex')), 'every id waiting, in order, once');
  t.same(ctx.out.map((tr) => tr.to), Array(ctx.out.length).fill(peer), 'to the peer the pushes came from');
  ctx.out.length = 0;
  ctx.flushAcks();
  t.equal(ctx.out.length, 0, 'nothing twice');
  ctx.queueAck(ids[0]!);
  t.equal(ctx.drops.toJSON()['ack_deferred'], 6, 'room again after the flush');
});
