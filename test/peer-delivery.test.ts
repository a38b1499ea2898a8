/**
 * Delivery through a peer over the in-memory link with virtual time: push and ack, timeouts,
 * offline recipients, poll, duplicates, every bound, expiry, certificate lookup and directory.
 */
import t from 'tap';
import { MsgType, WireError } from '../src/protocol/index.js';
import { MESSAGE_OVERHEAD_BYTES, type PeerOptions } from '../src/peer/index.js';
import { toHex } from '../src/identity/certificate.js';
import { PEER_ADDR, clientAddr, makeWorld, type World } from './helpers/link.js';
import { RawClient } from './helpers/raw-client.js';

const blob = (n = 100, fill = 1) => new Uint8Array(n).fill(fill);
const id16 = (i: number) => new Uint8Array(16).fill(i);

/** Sender A (cookie only) and recipient B (registered unless `offline`), plus extra clients. */
async function pair(opts: Partial<PeerOptions> = {}, offline = false, extra = 0) {
  const w = await makeWorld(2 + extra, opts, 1_800_000_000_000);
  const [a, b] = w.clients as [RawClient, RawClient];
  a.hello(PEER_ADDR);
  if (!offline) b.register(PEER_ADDR);
  w.link.flush();
  return { ...w, a, b };
}

function errorCodes(c: RawClient): number[] {
  return c.errors.map((e) => e.code);
}

t.test('online recipient: PUSH, ACK, RESULT 200; the message leaves RAM', async (t) => {
  const { link, peer, a, b } = await pair();
  const id = a.deliver(PEER_ADDR, b.fingerprint, blob());
  link.flush();
  t.equal(b.pushes.length, 1);
  t.same(b.pushes[0]!.blob, blob());
  t.same(a.resultsOf(id), [200]);
  t.equal(peer.stats().waitingMessages, 0);
  t.equal(peer.stats().waitingBytes, 0);
});

t.test('no ACK within 3 s: RESULT 300 and the message stays', async (t) => {
  const { link, peer, a, b } = await pair({ pushTriesMax: 1 });
  b.autoAck = false;
  const id = a.deliver(PEER_ADDR, b.fingerprint, blob());
  link.flush();
  t.equal(peer.pollTimeout(), link.now + 3000, 'pushAck deadline');
  link.advance(2999);
  t.same(a.resultsOf(id), [], 'no answer before the timeout');
  link.advance(1);
  t.same(a.resultsOf(id), [300]);
  t.equal(peer.stats().waitingMessages, 1);
  t.equal(peer.stats().waitingBytes, 100);
  a.deliver(PEER_ADDR, b.fingerprint, blob(), id);
  link.flush();
  t.same(a.resultsOf(id), [300, 300], 'a duplicate after the timeout: RESULT 300 at once');
  t.equal(b.pushes.length, 1, 'and no new push');
  b.ack([id]);
  link.flush();
  t.equal(peer.stats().waitingMessages, 0, 'a late ACK still removes it');
});

t.test('a timed-out push is sent again by the timer, pushTriesMax in a row, then on KEEPALIVE', async (t) => {
  const { link, peer, a, b } = await pair();
  b.autoAck = false;
  const id = a.deliver(PEER_ADDR, b.fingerprint, blob());
  link.flush();
  t.equal(b.pushes.length, 1);
  link.advance(3000);
  t.same(a.resultsOf(id), [300], 'the sender hears 300 at the first timeout');
  t.equal(b.pushes.length, 2, 'pushed again at once');
  link.advance(3000);
  t.equal(b.pushes.length, 3, 'third push');
  link.advance(3000);
  t.equal(b.pushes.length, 3, 'pushTriesMax (3) reached: the timer stops');
  t.same(a.resultsOf(id), [300], 'one answer to the sender');
  t.equal(peer.pollTimeout() === undefined || peer.pollTimeout()! > link.now, true, 'no push deadline left due');
  link.advance(2000); // pushRetryMs (5 s) since the last push
  b.keepalive();
  link.flush();
  t.equal(b.pushes.length, 4, 'a KEEPALIVE starts a new series');
  link.advance(3000);
  t.equal(b.pushes.length, 5, 'and the timer goes on with it');
  b.ack([id]);
  link.flush();
  t.equal(peer.stats().waitingMessages, 0, 'the ACK of a repeated push removes the message');
  link.advance(10_000);
  t.equal(b.pushes.length, 5, 'nothing more after the ACK');
});

t.test('the timer does not push to a recipient whose registration expired', async (t) => {
  const { link, peer, a, b } = await pair({ registrationTtlMs: 4000 });
  b.autoAck = false;
  a.deliver(PEER_ADDR, b.fingerprint, blob());
  link.flush();
  link.advance(3000);
  t.equal(b.pushes.length, 2, 'registered: pushed again');
  link.advance(3000);
  t.equal(b.pushes.length, 2, 'registration expired: no push');
  t.equal(peer.stats().waitingMessages, 1, 'the message stays for its next registration');
});

t.test('offline recipient: RESULT 300 at once, PUSH when it registers', async (t) => {
  const { link, peer, a, b } = await pair({}, true);
  const id = a.deliver(PEER_ADDR, b.fingerprint, blob());
  link.flush();
  t.same(a.resultsOf(id), [300]);
  t.equal(peer.stats().waitingMessages, 1);
  b.register(PEER_ADDR);
  link.flush();
  t.equal(b.pushes.length, 1);
  t.same(b.pushes[0]!.id, id);
  t.equal(peer.stats().waitingMessages, 0);
});

t.test('POLL pushes waiting messages; KEEPALIVE re-pushes only after pushRetryMs', async (t) => {
  const { link, peer, a, b } = await pair({ pushTriesMax: 1 });
  b.autoAck = false;
  const ids = [1, 2, 3].map((i) => a.deliver(PEER_ADDR, b.fingerprint, blob(50, i), id16(i)));
  link.flush();
  t.equal(b.pushes.length, 3);
  link.advance(3000);
  b.keepalive();
  link.flush();
  t.equal(b.pushes.length, 3, 'pushed 3 s ago: not again on keepalive');
  link.advance(2000);
  b.keepalive();
  link.flush();
  t.equal(b.pushes.length, 6, 'pushed 5 s ago: again on keepalive');
  link.advance(3000);
  b.poll();
  link.flush();
  t.equal(b.pushes.length, 9, 'poll pushes everything not in flight');
  b.ack(ids);
  link.flush();
  t.equal(peer.stats().waitingMessages, 0);
});

t.test('pollBatchMax bounds one push burst', async (t) => {
  const { link, a, b } = await pair({ pollBatchMax: 2, unackedPerSenderMax: 10 }, true);
  for (let i = 1; i <= 5; i++) a.deliver(PEER_ADDR, b.fingerprint, blob(10, i), id16(i));
  link.flush();
  b.autoAck = false;
  b.register(PEER_ADDR);
  link.flush();
  t.equal(b.pushes.length, 2);
  b.ack(b.pushes.map((p) => p.id));
  b.poll();
  link.flush();
  t.equal(b.pushes.length, 4);
});

t.test('duplicate DELIVER: stored once, every sender answered', async (t) => {
  const { link, peer, a, b, clients } = await pair({}, false, 1);
  const a2 = clients[2]!;
  a2.hello(PEER_ADDR);
  link.flush();
  b.autoAck = false;
  const id = a.deliver(PEER_ADDR, b.fingerprint, blob(), id16(9));
  a.deliver(PEER_ADDR, b.fingerprint, blob(), id16(9));
  a2.deliver(PEER_ADDR, b.fingerprint, blob(), id16(9));
  link.flush();
  t.equal(peer.stats().waitingMessages, 1);
  t.equal(b.pushes.length, 1, 'one push while in flight');
  b.ack([id]);
  link.flush();
  t.same(a.resultsOf(id), [200], 'one answer per sender address');
  t.same(a2.resultsOf(id), [200]);
  a.deliver(PEER_ADDR, b.fingerprint, blob(), id16(9));
  link.flush();
  t.same(a.resultsOf(id), [200, 200], 'recently delivered: RESULT 200');
  t.equal(peer.stats().waitingMessages, 0, 'and not stored again');
  t.equal(b.pushes.length, 1, 'a stranger\'s copy (no capability) is not passed on again');
  a.deliver(PEER_ADDR, b.fingerprint, blob(), id16(9), b.capabilityFor(a.fingerprint));
  link.flush();
  t.same(a.resultsOf(id), [200, 200, 200]);
  t.equal(b.pushes.length, 2, 'a contact\'s copy is passed on once more, so the recipient can send its receipt again');
  t.same(b.pushes[1]!.id, id);
  t.same(b.pushes[1]!.blob, blob());
  // The re-push bucket of the recipient bounds what an acknowledged id can bring it (issue: 500 of 500).
  for (let i = 0; i < 200; i++) a.deliver(PEER_ADDR, b.fingerprint, blob(), id16(9), b.capabilityFor(a.fingerprint));
  link.flush();
  t.ok(b.pushes.length <= 2 + 32, `re-pushes bounded by the recipient's bucket (${b.pushes.length - 2} of 200)`);
});

t.test('recentDeliveredMax: the oldest acknowledged id is forgotten, and a late duplicate of it is stored again', async (t) => {
  const { link, peer, a, b, clients } = await pair({ recentDeliveredMax: 2 }, false, 1);
  const c = clients[2]!;
  c.register(PEER_ADDR);
  link.flush();
  const ids = [1, 2, 3].map((i) => a.deliver(PEER_ADDR, b.fingerprint, blob(), id16(i)));
  link.flush();
  t.same(ids.map((id) => a.resultsOf(id)), [[200], [200], [200]]);
  t.equal(peer.stats().waitingMessages, 0);
  const pushes = b.pushes.length;
  a.deliver(PEER_ADDR, b.fingerprint, blob(), id16(3), b.capabilityFor(a.fingerprint));
  link.flush();
  t.same(a.resultsOf(ids[2]!), [200, 200], 'a remembered id: RESULT 200 again');
  t.equal(b.pushes.length, pushes + 1, 'passed on without storing');
  b.autoAck = false;
  a.deliver(PEER_ADDR, b.fingerprint, blob(), id16(1));
  link.flush();
  t.equal(peer.stats().waitingMessages, 1, 'the forgotten id is stored again');
  t.same(a.resultsOf(ids[0]!), [200], 'and waits for its ACK');
  b.ack([ids[0]!]);
  link.flush();
  t.same(a.resultsOf(ids[0]!), [200, 200]);
  // The same id acknowledged by another recipient takes the entry: a duplicate to B is new again.
  a.deliver(PEER_ADDR, c.fingerprint, blob(), id16(1));
  link.flush();
  t.equal(peer.stats().waitingMessages, 0, 'C acknowledged its message');
  a.deliver(PEER_ADDR, b.fingerprint, blob(), id16(1));
  link.flush();
  t.equal(peer.stats().waitingMessages, 1, 'a duplicate to B is stored again; B drops it by id');
});

t.test('one id waiting for two recipients at once: each copy found, acknowledged and removed on its own', async (t) => {
  const { link, peer, a, b, clients } = await pair({}, false, 1);
  const c = clients[2]!;
  c.register(PEER_ADDR);
  link.flush();
  b.autoAck = false;
  c.autoAck = false;
  const id = id16(21);
  a.deliver(PEER_ADDR, b.fingerprint, blob(), id);
  a.deliver(PEER_ADDR, c.fingerprint, blob(), id);
  link.flush();
  t.equal(peer.stats().waitingMessages, 2, 'both stored');
  a.deliver(PEER_ADDR, c.fingerprint, new Uint8Array(40).fill(7), id);
  link.flush();
  t.same(errorCodes(a), [WireError.ID_CONFLICT], "the second recipient's copy is found by its id");
  c.ack([id]);
  link.flush();
  t.equal(peer.stats().waitingMessages, 1, "C's ACK removes C's copy only");
  t.same(a.resultsOf(id), [200], 'C delivered');
  b.ack([id]);
  link.flush();
  t.equal(peer.stats().waitingMessages, 0, "then B's ACK removes B's");
  t.same(a.resultsOf(id), [200, 200]);
  // The other order: the first stored goes first.
  const id2 = id16(22);
  a.deliver(PEER_ADDR, b.fingerprint, blob(), id2);
  a.deliver(PEER_ADDR, c.fingerprint, blob(), id2);
  link.flush();
  b.ack([id2]);
  link.flush();
  a.deliver(PEER_ADDR, c.fingerprint, new Uint8Array(40).fill(7), id2);
  link.flush();
  t.same(errorCodes(a), [WireError.ID_CONFLICT, WireError.ID_CONFLICT], "C's copy is still found once B's is gone");
  c.ack([id2]);
  link.flush();
  t.equal(peer.stats().waitingMessages, 0);
});

t.test('duplicate DELIVER to an offline recipient: RESULT 300 each time', async (t) => {
  const { link, peer, a, b } = await pair({}, true);
  a.deliver(PEER_ADDR, b.fingerprint, blob(), id16(4));
  a.deliver(PEER_ADDR, b.fingerprint, blob(), id16(4));
  link.flush();
  t.same(a.resultsOf(id16(4)), [300, 300]);
  t.equal(peer.stats().waitingMessages, 1);
});

t.test('ID_CONFLICT: same id, different blob', async (t) => {
  const { link, peer, a, b } = await pair({}, true);
  a.deliver(PEER_ADDR, b.fingerprint, blob(10, 1), id16(5));
  a.deliver(PEER_ADDR, b.fingerprint, blob(10, 2), id16(5));
  link.flush();
  t.same(errorCodes(a), [WireError.ID_CONFLICT]);
  t.same(a.errors[0]!.ref, id16(5), 'ref is the message id');
  t.equal(peer.stats().waitingMessages, 1);
});

t.test('ID_CONFLICT and duplicates while the first push is in flight, and after it timed out', async (t) => {
  const { link, peer, a, b } = await pair();
  b.autoAck = false;
  const id = id16(6);
  a.deliver(PEER_ADDR, b.fingerprint, blob(700, 1), id);
  link.flush();
  a.deliver(PEER_ADDR, b.fingerprint, blob(700, 2), id);
  link.flush();
  t.same(errorCodes(a), [WireError.ID_CONFLICT], 'another blob during the first push');
  a.deliver(PEER_ADDR, b.fingerprint, blob(700, 1), id);
  link.flush();
  t.same(a.resultsOf(id), [], 'the same blob waits for the push');
  link.advance(3000);
  t.same(a.resultsOf(id), [300], 'the sender (waiting once) hears 300');
  t.equal(b.pushes.length, 2, 'pushed again by the timer');
  t.same(b.pushes[1]!.blob, blob(700, 1), 'the stored copy has the same bytes');
  a.deliver(PEER_ADDR, b.fingerprint, blob(700, 2), id);
  link.flush();
  t.same(errorCodes(a), [WireError.ID_CONFLICT, WireError.ID_CONFLICT], 'another blob after the timeout');
  t.equal(peer.stats().waitingBytes, 700);
  b.ack([id]);
  link.flush();
  t.equal(peer.stats().waitingMessages, 0);
});

t.test('ACK removes only messages of the acking client', async (t) => {
  const { link, peer, a, b, clients } = await pair({}, false, 1);
  const c = clients[2]!;
  c.register(PEER_ADDR);
  link.flush();
  b.autoAck = false;
  const id = a.deliver(PEER_ADDR, b.fingerprint, blob());
  link.flush();
  c.ack([id]);
  link.flush();
  t.equal(peer.stats().waitingMessages, 1);
  link.advance(3000);
  t.same(a.resultsOf(id), [300]);
});

t.test('MAILBOX_FULL', async (t) => {
  const { link, peer, a, b } = await pair({ mailboxMessagesMax: 4, unackedPerSenderMax: 10 }, true);
  for (let i = 1; i <= 5; i++) a.deliver(PEER_ADDR, b.fingerprint, blob(10, i), id16(i));
  link.flush();
  t.same(errorCodes(a), [WireError.MAILBOX_FULL]);
  t.same(a.errors[0]!.ref, id16(5));
  t.equal(peer.stats().waitingMessages, 4);
});

t.test('TOO_MANY_UNACKED per (sender address, recipient)', async (t) => {
  const { link, peer, a, b, clients } = await pair({ unackedPerSenderMax: 3 }, true, 1);
  const a2 = clients[2]!;
  a2.hello(PEER_ADDR);
  link.flush();
  for (let i = 1; i <= 4; i++) a.deliver(PEER_ADDR, b.fingerprint, blob(10, i), id16(i));
  a2.deliver(PEER_ADDR, b.fingerprint, blob(10, 7), id16(7));
  link.flush();
  t.same(errorCodes(a), [WireError.TOO_MANY_UNACKED]);
  t.same(errorCodes(a2), [], 'another sender address is not affected');
  t.equal(peer.stats().waitingMessages, 4);
  b.register(PEER_ADDR);
  link.flush();
  a.deliver(PEER_ADDR, b.fingerprint, blob(10, 8), id16(8));
  link.flush();
  t.same(errorCodes(a), [WireError.TOO_MANY_UNACKED], 'acked messages free the slots');
});

t.test('STORAGE_FULL counts blobs and per-message overhead', async (t) => {
  const max = 3 * (1000 + MESSAGE_OVERHEAD_BYTES);
  const { link, peer, a, b } = await pair({ storageBytesMax: max, registeredPrefixBytesMax: 2 * max, senderPrefixBytesMax: 2 * max });
  b.autoAck = false;
  for (let i = 1; i <= 4; i++) a.deliver(PEER_ADDR, b.fingerprint, blob(1000, i), id16(i));
  link.flush();
  t.same(errorCodes(a), [WireError.STORAGE_FULL]);
  t.equal(a.errors[0]!.detail, 'peer storage is full');
  t.equal(peer.stats().waitingMessages, 3);
  t.equal(peer.stats().waitingBytes, 3000);
});

t.test('messages for unregistered recipients are evicted, oldest first, to make room for a registered one', async (t) => {
  const max = 4 * (1000 + MESSAGE_OVERHEAD_BYTES);
  const { link, peer, a, b } = await pair({ storageBytesMax: max, departedBytesMax: max, registeredPrefixBytesMax: max, senderPrefixBytesMax: 2 * max });
  b.autoAck = false;
  for (let i = 1; i <= 5; i++) a.deliver(PEER_ADDR, new Uint8Array(32).fill(i), blob(1000, i), id16(i));
  link.flush();
  t.same(errorCodes(a), [], 'a fifth message to an absent recipient evicts the oldest one');
  t.same([1, 2, 3, 4, 5].map((i) => a.resultsOf(id16(i))), [[300], [300], [300], [300], [300]]);
  t.equal(peer.stats().drops.message_evicted, 1);
  const id = a.deliver(PEER_ADDR, b.fingerprint, blob(1000, 9), id16(9));
  const id2 = a.deliver(PEER_ADDR, b.fingerprint, blob(1000, 8), id16(8));
  link.flush();
  t.equal(b.pushes.length, 2, 'the registered recipient still gets its messages');
  t.equal(peer.stats().drops.message_evicted, 3);
  t.equal(peer.stats().waitingMessages, 4);
  const c = new Uint8Array(32).fill(3);
  a.deliver(PEER_ADDR, c, blob(1000, 3), id16(3));
  link.flush();
  t.same(a.resultsOf(id16(3)), [300, 300], 'an evicted message is stored again when its sender retransmits it');
  t.equal(peer.stats().drops.message_evicted, 4, 'by evicting the oldest absent one, never a registered one');
  b.ack([id, id2]);
  link.flush();
  t.same(a.resultsOf(id), [200]);
  t.same(a.resultsOf(id2), [200]);
  for (let i = 1; i <= 2; i++) a.deliver(PEER_ADDR, b.fingerprint, blob(1000, 20 + i), id16(20 + i));
  const third = a.deliver(PEER_ADDR, b.fingerprint, blob(1000, 23), id16(23));
  link.flush();
  t.equal(peer.stats().waitingMessages, 4);
  t.same(a.resultsOf(third), [], 'waiting for its push');
});

t.test('RATE_LIMITED per source IP, refilled with time', async (t) => {
  const { link, peer, a, b } = await pair({ rateLimit: { perSecond: 1, burst: 3, bucketsMax: 16 } });
  // The HELLO took one token.
  a.deliver(PEER_ADDR, b.fingerprint, blob(10, 1), id16(1));
  a.deliver(PEER_ADDR, b.fingerprint, blob(10, 2), id16(2));
  a.deliver(PEER_ADDR, b.fingerprint, blob(10, 3), id16(3));
  link.flush();
  t.same(errorCodes(a), [WireError.RATE_LIMITED]);
  t.equal(peer.stats().drops.rate_limited, 1);
  link.advance(1000);
  a.deliver(PEER_ADDR, b.fingerprint, blob(10, 3), id16(3));
  link.flush();
  t.same(a.resultsOf(id16(3)), [200]);
});

t.test('waiting messages expire after mailboxTtlMs', async (t) => {
  const { link, peer, a, b } = await pair({ mailboxTtlMs: 60_000 }, true);
  a.deliver(PEER_ADDR, b.fingerprint, blob());
  link.advance(30_000);
  a.deliver(PEER_ADDR, b.fingerprint, blob(20));
  link.advance(29_999);
  t.equal(peer.stats().waitingMessages, 2);
  link.advance(1);
  t.equal(peer.stats().waitingMessages, 1);
  link.advance(30_000);
  t.equal(peer.stats().waitingMessages, 0);
  t.equal(peer.stats().waitingBytes, 0);
  b.register(PEER_ADDR);
  link.flush();
  t.equal(b.pushes.length, 0);
});

t.test('the default TTL of 24 h, in virtual time', async (t) => {
  const { link, peer, a, b } = await pair({}, true);
  a.deliver(PEER_ADDR, b.fingerprint, blob());
  link.advance(24 * 3600_000 - 1);
  t.equal(peer.stats().waitingMessages, 1);
  link.advance(1);
  t.equal(peer.stats().waitingMessages, 0);
});

t.test('BAD_COOKIE for DELIVER without a valid cookie; ref is the id', async (t) => {
  const { link, peer, a, b } = await pair();
  a.cookies.set('10.0.0.1:7777', new Uint8Array(20));
  a.deliver(PEER_ADDR, b.fingerprint, blob(), id16(3));
  link.flush();
  t.same(errorCodes(a), [WireError.BAD_COOKIE]);
  t.same(a.errors[0]!.ref, id16(3));
  t.equal(peer.stats().waitingMessages, 0);
});

t.test('CERT lookup and NOT_FOUND', async (t) => {
  const { link, a, b } = await pair();
  const cookie = a.cookies.get('10.0.0.1:7777')!;
  a.send(PEER_ADDR, { type: MsgType.CERT_REQUEST, cookie, fingerprint: b.fingerprint });
  a.send(PEER_ADDR, { type: MsgType.CERT_REQUEST, cookie, fingerprint: new Uint8Array(32).fill(3) });
  a.send(PEER_ADDR, { type: MsgType.CERT_REQUEST, cookie: new Uint8Array(20), fingerprint: b.fingerprint });
  link.flush();
  const cert = a.lastOf(MsgType.CERT);
  t.ok(cert);
  t.same(cert!.cert, b.identity.cert);
  t.same(cert!.fingerprint, b.fingerprint);
  t.same(errorCodes(a), [WireError.NOT_FOUND, WireError.BAD_COOKIE]);
  t.same(a.errors[0]!.ref, new Uint8Array(32).fill(3));
});

async function directoryWorld(on: boolean): Promise<World & { a: RawClient; members: RawClient[] }> {
  const w = await makeWorld(21, { directory: on }, 1_800_000_000_000);
  const [a, ...members] = w.clients as [RawClient, ...RawClient[]];
  a.hello(PEER_ADDR);
  for (const m of members) m.register(PEER_ADDR);
  w.link.flush();
  return { ...w, a, members };
}

t.test('directory on: join, pages sorted by name, leave, bad names', async (t) => {
  const { link, a, members } = await directoryWorld(true);
  members.forEach((m, i) => m.sendSession({ type: MsgType.DIR_JOIN, name: `user ${String(19 - i).padStart(2, '0')}` }));
  link.flush();
  t.ok(members.every((m) => m.lastOf(MsgType.OK)), 'every join answered OK');
  const cookie = a.cookies.get('10.0.0.1:7777')!;
  a.send(PEER_ADDR, { type: MsgType.DIR_LIST, cookie, page: 0 });
  a.send(PEER_ADDR, { type: MsgType.DIR_LIST, cookie, page: 1 });
  link.flush();
  const pages = a.inbox.map((r) => r.msg).filter((m) => m.type === MsgType.DIR_PAGE);
  t.equal(pages.length, 2);
  const names = pages.flatMap((p) => (p.type === MsgType.DIR_PAGE ? p.entries.map((e) => e.name) : []));
  t.same(names, Array.from({ length: 20 }, (_, i) => `user ${String(i).padStart(2, '0')}`));
  const p0 = pages[0]!;
  if (p0.type === MsgType.DIR_PAGE) {
    t.equal(p0.pages, 2);
    t.equal(p0.entries.length, 16);
    t.equal(toHex(p0.entries[0]!.fingerprint), toHex(members[19]!.fingerprint));
  }
  members[19]!.sendSession({ type: MsgType.DIR_JOIN, name: '' });
  members[18]!.sendSession({ type: MsgType.DIR_JOIN, name: 'bad\u0007name' });
  members[17]!.sendSession({ type: MsgType.DIR_JOIN, name: '   ' });
  a.send(PEER_ADDR, { type: MsgType.DIR_LIST, cookie, page: 5 });
  link.flush();
  t.same(errorCodes(members[18]!), [WireError.BAD_REQUEST]);
  t.same(errorCodes(members[17]!), [WireError.BAD_REQUEST]);
  t.same(errorCodes(a), [WireError.BAD_REQUEST]);
  a.send(PEER_ADDR, { type: MsgType.DIR_LIST, cookie, page: 0 });
  link.flush();
  const last = a.lastOf(MsgType.DIR_PAGE)!;
  t.equal(last.entries[0]!.name, 'user 01', 'the one that left is gone');
  // Entries leave with the registration.
  link.advance(90_000);
  a.hello(PEER_ADDR);
  link.flush();
  a.send(PEER_ADDR, { type: MsgType.DIR_LIST, cookie: a.cookies.get('10.0.0.1:7777')!, page: 0 });
  link.flush();
  const after = a.lastOf(MsgType.DIR_PAGE)!;
  t.same([after.page, after.pages, after.entries.length], [0, 1, 0]);
});

t.test('directory off: DIRECTORY_DISABLED', async (t) => {
  const { link, a, members } = await directoryWorld(false);
  members[0]!.sendSession({ type: MsgType.DIR_JOIN, name: 'bob' });
  a.send(PEER_ADDR, { type: MsgType.DIR_LIST, cookie: a.cookies.get('10.0.0.1:7777')!, page: 0 });
  link.flush();
  t.same(errorCodes(members[0]!), [WireError.DIRECTORY_DISABLED]);
  t.same(errorCodes(a), [WireError.DIRECTORY_DISABLED]);
});

t.test('DIR_JOIN outside a session: dropped, never answered (an address is no credential)', async (t) => {
  const { link, peer, clients } = await makeWorld(1, { directory: true });
  const c = clients[0]!;
  c.send(PEER_ADDR, { type: MsgType.DIR_JOIN, name: 'x' });
  link.flush();
  t.equal(c.inbox.length, 0);
  t.equal(peer.stats().drops.not_in_session, 1);
  t.equal(clientAddr(0).port, 40000);
});
