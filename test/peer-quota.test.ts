/**
 * Fair storage: source prefixes, the quota accounting on its own, and the quotas through a peer
 * on the in-memory link (strangers, per-prefix shares, departed messages evicted first, the flood
 * of throwaway identities that fill the store and leave, new identities per prefix).
 */
import t from 'tap';
import { WireError } from '../src/protocol/index.js';
import { MESSAGE_OVERHEAD_BYTES, type PeerOptions } from '../src/peer/index.js';
import { sourcePrefix } from '../src/peer/prefix.js';
import { IDLE_USAGE_MAX, Quota, QUOTA_DEFAULTS, deriveQuotaLimits, type Charge, type QuotaLimits } from '../src/peer/quota.js';
import type { MessageStore } from '../src/peer/mailbox.js';
import type { Peer } from '../src/peer/peer.js';
import type { Addr } from '../src/core/types.js';
import { Link, PEER_ADDR, identityNo, seededRandom } from './helpers/link.js';
import { Peer as PeerMachine } from '../src/peer/index.js';
import { RawClient } from './helpers/raw-client.js';

const MSG = 1000 + MESSAGE_OVERHEAD_BYTES;
const id16 = (i: number) => {
  const b = new Uint8Array(16);
  new DataView(b.buffer).setUint32(0, i + 1);
  return b;
};

t.test('sourcePrefix: IPv4 /24, IPv6 /48, IPv4-mapped IPv6 as IPv4', async (t) => {
  t.equal(sourcePrefix('192.0.2.77'), '192.0.2.0/24');
  t.equal(sourcePrefix('192.0.2.1'), sourcePrefix('192.0.2.254'), 'one /24');
  t.not(sourcePrefix('192.0.2.1'), sourcePrefix('192.0.3.1'));
  t.equal(sourcePrefix('::ffff:192.0.2.77'), '192.0.2.0/24', 'IPv4-mapped counts as IPv4');
  t.equal(sourcePrefix('::FFFF:c000:24d'), '192.0.2.0/24', 'in hex too');
  t.equal(sourcePrefix('2001:db8:aa:1::5'), '2001:db8:aa::/48');
  t.equal(sourcePrefix('2001:0DB8:00aa:ffff:1:2:3:4'), '2001:db8:aa::/48', 'leading zeros and case do not matter');
  t.not(sourcePrefix('2001:db8:aa::1'), sourcePrefix('2001:db8:ab::1'));
  t.equal(sourcePrefix('::1'), '0:0:0::/48');
  t.equal(sourcePrefix('fe80::1%eth0'), 'fe80:0:0::/48', 'zone ignored');
  t.equal(sourcePrefix('64:ff9b::192.0.2.1'), '64:ff9b:0::/48', 'a dotted tail of another prefix stays IPv6');
  t.equal(sourcePrefix('not-an-address'), 'not-an-address');
  t.throws(() => sourcePrefix(1 as unknown as string), TypeError);
});

const limits = (o: Partial<QuotaLimits> = {}): QuotaLimits => ({ ...QUOTA_DEFAULTS, ...o });
const ch = (o: Partial<Charge> = {}): Charge => ({ to: 'r', contact: '', senderPrefix: 's', bytes: 100, recipientPrefix: '', ...o });

t.test('Quota: each bound, in order, with its code and detail', async (t) => {
  const q = new Quota(limits({ mailboxMessagesMax: 6, strangerMessagesMax: 3, strangerPrefixMessagesMax: 2, contactMessagesMax: 2 }));
  q.add(ch());
  q.add(ch());
  t.match(q.check(ch()), { bound: 'strangerPrefixMessagesMax', code: WireError.TOO_MANY_UNACKED, detail: 'first-contact quota of this source prefix full' });
  t.equal(q.check(ch({ senderPrefix: 't' })), null, 'another prefix has its own share');
  q.add(ch({ senderPrefix: 't' }));
  t.match(q.check(ch({ senderPrefix: 'u' })), { bound: 'strangerMessagesMax', code: WireError.MAILBOX_FULL, detail: 'first-contact quota full' });
  t.equal(q.check(ch({ to: 'other' })), null, 'per recipient');
  q.add(ch({ contact: 'k' }));
  q.add(ch({ contact: 'k' }));
  t.match(q.check(ch({ contact: 'k' })), { bound: 'contactMessagesMax', detail: 'contact quota full' });
  t.equal(q.check(ch({ contact: 'j' })), null, 'each contact has its own quota beside the strangers');
  q.add(ch({ contact: 'j' }));
  t.match(q.check(ch({ contact: 'i' })), { bound: 'mailboxMessagesMax', detail: 'recipient mailbox is full' });
  t.equal(q.countOf('r'), 6);
  q.remove(ch({ contact: 'k' }));
  t.equal(q.check(ch({ contact: 'k' })), null, 'a removed message frees its slot');
  t.equal(q.totalBytes, 500);
  t.equal(q.departedBytes, 500);
  for (const c of [ch(), ch(), ch({ senderPrefix: 't' }), ch({ contact: 'k' }), ch({ contact: 'j' })]) q.remove(c);
  t.equal(q.totalBytes, 0);
  t.equal(q.countOf('r'), 0);
  t.equal(q.senderPrefixBytes('s'), 0, 'nothing left behind');
});

t.test('Quota: byte bounds, classes and eviction needs', async (t) => {
  const q = new Quota(limits({
    recipientBytesMax: 300, senderPrefixBytesMax: 300, registeredPrefixBytesMax: 250, departedBytesMax: 300, storageBytesMax: 600,
  }));
  q.add(ch({ to: 'a', recipientPrefix: 'R' }));
  q.add(ch({ to: 'a', senderPrefix: 's2', recipientPrefix: 'R' }));
  t.match(q.check(ch({ to: 'b', senderPrefix: 's3', recipientPrefix: 'R' })), { bound: 'registeredPrefixBytesMax' }, 'identities from one range share a bound');
  t.equal(q.registeredPrefixBytes('R'), 200);
  q.add(ch({ to: 'c', senderPrefix: 's', recipientPrefix: '' }));
  q.add(ch({ to: 'c', senderPrefix: 's', recipientPrefix: '' }));
  t.match(q.check(ch({ to: 'd', senderPrefix: 's' })), { bound: 'senderPrefixBytesMax', code: WireError.STORAGE_FULL });
  t.match(q.check(ch({ to: 'c', senderPrefix: 's9', bytes: 101 })), { bound: 'recipientBytesMax', code: WireError.MAILBOX_FULL });
  q.add(ch({ to: 'e', senderPrefix: 's4' }));
  t.equal(q.departedBytes, 300);
  t.equal(q.evictBytes(ch({ to: 'f', senderPrefix: 's5' })), 100, 'a departed message over departedBytesMax: the oldest departed go');
  t.equal(q.evictBytes(ch({ to: 'g', senderPrefix: 's5', recipientPrefix: 'Q' })), 0, 'fits under storageBytesMax');
  q.add(ch({ to: 'g', senderPrefix: 's5', recipientPrefix: 'Q' }));
  t.equal(q.evictBytes(ch({ to: 'h', senderPrefix: 's6', recipientPrefix: 'P', bytes: 200 })), 200, 'over storageBytesMax');
  t.match(q.check(ch({ to: 'h', senderPrefix: 's6', recipientPrefix: 'P', bytes: 301 })), { bound: 'recipientBytesMax' });
  t.equal(q.check(ch({ to: 'h', senderPrefix: 's6', recipientPrefix: 'P', bytes: 250 })), null, 'departed bytes can make room');
  // The departed recipient c registers: its bytes leave the departed class.
  q.recipientRegistered('c', 'Q');
  t.equal(q.departedBytes, 100);
  t.equal(q.registeredPrefixBytes('Q'), 300);
  t.match(q.check(ch({ to: 'h', senderPrefix: 's6', recipientPrefix: 'P', bytes: 250 })), { bound: 'storageBytesMax', detail: 'peer storage is full' },
    'only departed bytes are evictable');
  q.recipientLeft('a');
  q.recipientLeft('c');
  t.equal(q.departedBytes, 500);
  t.equal(q.registeredPrefixBytes('R'), 0);
  t.equal(q.departedExcess(), 200, 'recipients that left put the class over its bound');
  t.throws(() => q.recipientRegistered('a', ''), TypeError);
  t.throws(() => new Quota(limits({ storageBytesMax: 0 })), /storageBytesMax must be a positive integer/);
  const d = deriveQuotaLimits(limits({ storageBytesMax: 16_000, contactMessagesMax: 2 }), {}, 100);
  t.match(d, { senderPrefixBytesMax: 1000, registeredPrefixBytesMax: 2000, departedBytesMax: 8000 }, 'shares follow storageBytesMax');
  t.equal(deriveQuotaLimits(limits({ storageBytesMax: 1600, departedBytesMax: 5 }), { departedBytesMax: 5 }, 100).departedBytesMax, 5, 'unless set');
  const small = deriveQuotaLimits(limits({ storageBytesMax: 16_000, contactMessagesMax: 30 }), {}, 100);
  t.match(small, { senderPrefixBytesMax: 3000, registeredPrefixBytesMax: 3000, departedBytesMax: 8000 },
    "a range's share is at least one contact's full quota");
  const tiny = deriveQuotaLimits(limits({ storageBytesMax: 1600, contactMessagesMax: 30 }), {}, 100);
  t.match(tiny, { senderPrefixBytesMax: 1600, registeredPrefixBytesMax: 1600 }, 'or the whole store when that is smaller');
  t.equal(deriveQuotaLimits(limits({ storageBytesMax: 16_000, contactMessagesMax: 30, senderPrefixBytesMax: 7 }), { senderPrefixBytesMax: 7 }, 100)
    .senderPrefixBytesMax, 7, 'a share that is set is kept');
});

t.test('Quota: a recipient whose last message left keeps its usage among at most IDLE_USAGE_MAX idle ones', async (t) => {
  const q = new Quota(limits({ registeredPrefixBytesMax: 250, storageBytesMax: 100_000, departedBytesMax: 100_000, senderPrefixBytesMax: 100_000 }));
  const n = IDLE_USAGE_MAX + 500;
  for (let i = 0; i < n; i++) {
    const c = ch({ to: `r${i}`, recipientPrefix: 'R' });
    q.add(c);
    q.remove(c);
  }
  t.equal(q.recipientsKept, IDLE_USAGE_MAX, 'the oldest idle usages are dropped');
  t.equal(q.totalBytes, 0);
  t.equal(q.registeredPrefixBytes('R'), 0);
  // An idle usage follows its recipient's class like a new one would.
  const last = `r${n - 1}`;
  q.recipientLeft(last);
  q.add(ch({ to: last, recipientPrefix: '' }));
  t.equal(q.departedBytes, 100, 'left while idle: its next message is departed');
  q.recipientRegistered(last, 'R');
  t.equal(q.departedBytes, 0);
  t.equal(q.registeredPrefixBytes('R'), 100);
  q.add(ch({ to: 'r0', recipientPrefix: 'R' }));
  t.match(q.check(ch({ to: `r${n - 2}`, recipientPrefix: 'R' })), { bound: 'registeredPrefixBytesMax' }, 'an idle recipient is charged to its range');
  // A recipient idle more than once is kept once per ring slot and dropped only while idle.
  const busy = ch({ to: 'busy', recipientPrefix: 'R2' });
  for (let i = 0; i < 3; i++) {
    q.add(busy);
    q.remove(busy);
  }
  q.add(busy);
  for (let i = 0; i < IDLE_USAGE_MAX * 2; i++) {
    const c = ch({ to: `x${i}`, recipientPrefix: 'X' });
    q.add(c);
    q.remove(c);
  }
  t.equal(q.registeredPrefixBytes('R2'), 100, 'a usage holding a message is never dropped');
  t.ok(q.recipientsKept <= IDLE_USAGE_MAX + 3, `bounded: ${q.recipientsKept} kept`);
});

// ---------------------------------------------------------------------------------------------
// Through a peer. Every client sits at its own address; `at(i, j)` is host j of prefix i.

const at = (prefix: number, host: number, port = 40000): Addr => ({ host: `10.${prefix >> 8}.${prefix & 255}.${host}`, port });
const START = 1_800_000_000_000;

async function world(opts: Partial<PeerOptions>) {
  const link = new Link(START);
  const peer = new PeerMachine({ identity: await identityNo(0), random: seededRandom(1), ...opts }, START);
  link.add(PEER_ADDR, peer);
  const client = async (no: number, addr: Addr): Promise<RawClient> => {
    const c = new RawClient(await identityNo(no));
    link.add(addr, c);
    return c;
  };
  return { link, peer, client };
}

const storeOf = (peer: Peer): MessageStore => Reflect.get(peer, 'store') as MessageStore;
const codes = (c: RawClient) => c.errors.map((e) => e.code);

t.test('a stranger cannot fill a mailbox: 16 waiting without a capability, 4 per source prefix', async (t) => {
  const { link, peer, client } = await world({});
  const victim = await client(1, at(1, 1));
  victim.register(PEER_ADDR);
  link.flush();
  victim.autoAck = false;
  // Attackers in 8 prefixes, 8 messages each.
  const attackers: RawClient[] = [];
  for (let p = 0; p < 8; p++) attackers.push(await client(2, at(100 + p, 1)));
  for (const a of attackers) a.hello(PEER_ADDR);
  link.flush();
  let n = 0;
  for (const a of attackers) for (let i = 0; i < 8; i++) a.deliver(PEER_ADDR, victim.fingerprint, new Uint8Array(200), id16(n++));
  link.flush();
  t.equal(peer.stats().waitingMessages, 16, 'strangerMessagesMax');
  const details = attackers.flatMap((a) => a.errors.map((e) => e.detail));
  t.equal(details.filter((d) => d === 'first-contact quota of this source prefix full').length, 3 * 4, 'prefixes 1-3: 4 each, then TOO_MANY_UNACKED');
  t.equal(details.filter((d) => d === 'first-contact quota full').length, 4 + 4 * 8, 'prefix 4 after its 4th, prefixes 5-8: MAILBOX_FULL');
  t.same(new Set(attackers.flatMap(codes)), new Set([WireError.TOO_MANY_UNACKED, WireError.MAILBOX_FULL]));
  const other = await client(3, at(2, 1));
  other.register(PEER_ADDR);
  link.flush();
  attackers[7]!.deliver(PEER_ADDR, other.fingerprint, new Uint8Array(200), id16(999));
  link.flush();
  t.equal(other.pushes.length, 1, 'another recipient has its own quota');
});

t.test('per-prefix shares: one sender range, one registration range', async (t) => {
  const share = 8 * MSG;
  const { link, peer, client } = await world({ senderPrefixBytesMax: share, registeredPrefixBytesMax: 2 * share, newIdentityRate: null });
  // 12 recipients registered from one prefix, none acknowledging.
  const recipients: RawClient[] = [];
  for (let i = 0; i < 12; i++) {
    const r = await client(10 + i, at(1, 1 + i));
    r.autoAck = false;
    r.register(PEER_ADDR);
    recipients.push(r);
  }
  // One sender range (prefix 50, 4 hosts) sends 4 to each.
  const senders: RawClient[] = [];
  for (let h = 0; h < 4; h++) senders.push(await client(2, at(50, 1 + h)));
  for (const s of senders) s.hello(PEER_ADDR);
  link.flush();
  let n = 0;
  for (const r of recipients.slice(0, 3)) for (const s of senders) s.deliver(PEER_ADDR, r.fingerprint, new Uint8Array(1000), id16(n++));
  link.flush();
  const store = storeOf(peer);
  t.equal(store.quota.senderPrefixBytes('10.0.50.0/24'), share, 'one sender range holds at most senderPrefixBytesMax');
  t.equal(senders.flatMap((s) => s.errors).filter((e) => e.detail === 'storage quota of this source prefix full').length, 4);
  // Senders from many ranges to the 12 recipients of one range.
  const many: RawClient[] = [];
  for (let p = 0; p < 12; p++) many.push(await client(3, at(200 + p, 1)));
  for (const s of many) s.hello(PEER_ADDR);
  link.flush();
  for (const [i, s] of many.entries()) s.deliver(PEER_ADDR, recipients[i]!.fingerprint, new Uint8Array(1000), id16(n++));
  link.flush();
  t.equal(store.quota.registeredPrefixBytes('10.0.1.0/24'), 2 * share, 'identities registered from one range hold at most registeredPrefixBytesMax');
  t.equal(many.flatMap((s) => s.errors).filter((e) => e.detail === "storage quota of the recipient's address range full").length, 4);
  const other = await client(30, at(2, 1));
  other.register(PEER_ADDR);
  link.flush();
  many[0]!.deliver(PEER_ADDR, other.fingerprint, new Uint8Array(1000), id16(n++));
  link.flush();
  t.equal(other.pushes.length, 1, 'a recipient in another range is not affected');
});

t.test('164 throwaway identities fill the store and leave: a registered client still gets its messages', async (t) => {
  // Scaled down from 64 MiB: the attack fills storageBytesMax with messages to its own identities,
  // registered from many ranges and sent from many ranges, so no per-prefix share stops it.
  const storageBytesMax = 164 * 16 * MSG - 40 * MSG;
  const { link, peer, client } = await world({ storageBytesMax, pushTriesMax: 1, newIdentityRate: null });
  const honest = await client(1, at(1, 1));
  honest.register(PEER_ADDR);
  const sender = await client(2, at(2, 1));
  sender.hello(PEER_ADDR);
  link.flush();
  const throwaways: RawClient[] = [];
  for (let i = 0; i < 164; i++) {
    const c = await client(10 + i, at(300 + i, 1));
    c.autoAck = false;
    c.register(PEER_ADDR);
    throwaways.push(c);
  }
  const floodSenders: RawClient[] = [];
  for (let p = 0; p < 32; p++) floodSenders.push(await client(3, at(600 + p, 1)));
  for (const s of floodSenders) s.hello(PEER_ADDR);
  link.flush();
  t.equal(peer.stats().registered, 165);
  let n = 0;
  let full = 0;
  for (const victim of throwaways) {
    for (let i = 0; i < 128; i++) floodSenders[i % 32]!.deliver(PEER_ADDR, victim.fingerprint, new Uint8Array(1000), id16(n++));
    link.flush();
  }
  for (const s of floodSenders) full += s.errors.filter((e) => e.code === WireError.STORAGE_FULL).length;
  const s0 = peer.stats();
  t.comment(`flood: ${n} DELIVERs, ${s0.waitingMessages} held, ${full} STORAGE_FULL`);
  t.ok(full > 0, 'the flood filled the store');
  // The throwaways leave; the honest client keeps its registration alive.
  for (let i = 0; i < 5; i++) {
    link.advance(25_000);
    honest.keepalive();
    link.flush();
  }
  t.equal(peer.stats().registered, 1, 'the throwaway registrations expired');
  // Honest traffic: to the registered client, and to one who is away.
  const ids: Uint8Array[] = [];
  for (let i = 0; i < 4; i++) ids.push(sender.deliver(PEER_ADDR, honest.fingerprint, new Uint8Array(1000).fill(i), id16(100_000 + i)));
  const away = (await identityNo(200)).fingerprint;
  const held = sender.deliver(PEER_ADDR, away, new Uint8Array(1000), id16(200_000));
  link.flush();
  t.same(codes(sender), [], 'no honest message refused');
  t.same(ids.map((id) => sender.resultsOf(id)), [[200], [200], [200], [200]], 'delivered to the registered client');
  t.same(sender.resultsOf(held), [300], 'held for the absent one');
  const store = storeOf(peer);
  t.ok(store.departedBytes <= store.quota.limits.departedBytesMax, `departed ${store.departedBytes} B within departedBytesMax`);
  t.ok((peer.stats().drops.message_evicted ?? 0) > 0, 'messages of recipients that left were evicted');
});

t.test('newIdentityRate: registrations of new fingerprints per source prefix', async (t) => {
  const { link, peer, client } = await world({ newIdentityRate: { perSecond: 1, burst: 2, bucketsMax: 16 } });
  const cs: RawClient[] = [];
  for (let i = 0; i < 3; i++) cs.push(await client(1 + i, at(1, 1 + i)));
  for (const c of cs) c.register(PEER_ADDR);
  link.flush();
  t.same(cs.map((c) => c.registered), [true, true, false]);
  t.same(codes(cs[2]!), [WireError.RATE_LIMITED]);
  t.equal(cs[2]!.errors[0]!.detail, 'too many new identities from this address range');
  t.equal(peer.stats().drops.new_identity_rate, 1);
  cs[0]!.register(PEER_ADDR);
  link.flush();
  t.ok(cs[0]!.registered, 'a registered identity registers again');
  const elsewhere = await client(4, at(2, 1));
  elsewhere.register(PEER_ADDR);
  link.flush();
  t.ok(elsewhere.registered, 'another range has its own bucket');
  link.advance(1000);
  cs[2]!.register(PEER_ADDR);
  link.flush();
  t.ok(cs[2]!.registered, 'after a second, one more');
});

t.test('a contact with a valid capability has its own quota, beside the strangers', async (t) => {
  const { link, peer, client } = await world({ contactMessagesMax: 24 });
  const bob = await client(1, at(1, 1));
  bob.register(PEER_ADDR);
  link.flush();
  bob.autoAck = false;
  const alice = await client(2, at(2, 1));
  const mallory = await client(3, at(3, 1));
  alice.hello(PEER_ADDR);
  mallory.hello(PEER_ADDR);
  link.flush();
  const cap = bob.capabilityFor(alice.fingerprint);
  for (let i = 0; i < 30; i++) mallory.deliver(PEER_ADDR, bob.fingerprint, new Uint8Array(200), id16(i));
  for (let i = 0; i < 30; i++) alice.deliver(PEER_ADDR, bob.fingerprint, new Uint8Array(200), id16(100 + i), cap);
  link.flush();
  t.equal(mallory.errors.length, 26, 'the stranger stops at strangerPrefixMessagesMax');
  t.same(new Set(alice.errors.map((e) => e.detail)), new Set(['contact quota full']));
  t.equal(alice.errors.length, 6, 'the contact stops at contactMessagesMax, not at the strangers\' quota');
  t.equal(peer.stats().waitingMessages, 4 + 24);
  const forged = { capId: cap.capId, capKey: new Uint8Array(32).fill(7) };
  mallory.deliver(PEER_ADDR, bob.fingerprint, new Uint8Array(200), id16(500), forged);
  link.flush();
  t.equal(mallory.errors.at(-1)!.detail, 'first-contact quota of this source prefix full', 'a forged capability counts as none');
  t.equal(peer.stats().drops.bad_capability, 1);
});
