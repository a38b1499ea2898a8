/**
 * The Double Ratchet core (src/crypto/ratchet.ts): exchanges both ways, loss, reordering,
 * duplicates, the skipped-key bounds, and that a refused message changes nothing.
 */
import t from 'tap';
import { generateIdentity } from '../src/identity/certificate.js';
import { certKeys } from '../src/crypto/keys.js';
import {
  ratchetCanSend, ratchetDecrypt, ratchetEncrypt, startRatchet, RATCHET_PAYLOAD_MAX_BYTES, RATCHET_SKIP_PER_MESSAGE_MAX,
  RATCHET_SKIPPED_KEY_AGE_MAX_MS, RATCHET_SKIPPED_KEYS_MAX, RATCHET_VERSION,
} from '../src/crypto/ratchet.js';
import { SEAL_BUCKETS_BYTES } from '../src/crypto/seal.js';
import { NOW_MS, RatchetPair, seeded, type Recorded } from './helpers/ratchet-pair.js';

const [alice, bob, carol] = await Promise.all([
  generateIdentity({ commonName: 'alice' }),
  generateIdentity({ commonName: 'bob' }),
  generateIdentity({ commonName: 'carol' }),
]);
if (!alice || !bob || !carol) throw new Error('identities');

t.test('a full exchange both ways, with several messages per turn', async (t) => {
  const p = new RatchetPair(alice, bob, 'exchange');
  t.notOk(ratchetCanSend(p.states.a), 'the initiator waits for the first reply');
  t.throws(() => ratchetEncrypt(p.states.a, new Uint8Array(1), p.random), { code: 'PEERPOST_RATCHET_NOT_READY' });
  t.ok(ratchetCanSend(p.states.b), 'the responder can send at once');
  for (let turn = 0; turn < 6; turn++) {
    const from = turn % 2 === 0 ? 'b' : 'a';
    for (let i = 0; i <= turn; i++) p.exchange(from, `turn ${turn} message ${i}`);
  }
  const sizes = new Set(p.log.map((r) => r.blob.length));
  t.same([...sizes], [256], 'short messages are padded to the smallest bucket');
  t.ok(p.log.slice(1).every((r) => r.blob[0] === RATCHET_VERSION), 'each message starts with the ratchet version');
});

t.test('payload sizes: each bucket, the largest payload, one byte more', async (t) => {
  const p = new RatchetPair(alice, bob, 'sizes');
  for (const n of [0, 1, 169, 170, 171, 425, 426, 427, RATCHET_PAYLOAD_MAX_BYTES]) {
    const payload = p.random(n);
    const r = ratchetEncrypt(p.states.b, payload, p.random);
    p.states.b = r.state;
    t.ok(SEAL_BUCKETS_BYTES.includes(r.blob.length), `${n} bytes -> bucket ${r.blob.length}`);
    t.equal(r.blob.length, SEAL_BUCKETS_BYTES.find((b) => b - 87 >= n), 'the smallest bucket that fits');
    const o = ratchetDecrypt(p.states.a, r.blob, NOW_MS, p.random);
    t.ok(o.ok && Buffer.from(o.payload).equals(payload), 'the payload comes back');
    if (o.ok) p.states.a = o.state;
  }
  t.throws(() => ratchetEncrypt(p.states.b, new Uint8Array(RATCHET_PAYLOAD_MAX_BYTES + 1), p.random), { code: 'PEERPOST_RATCHET_TOO_LARGE' });
});

t.test('out-of-order and duplicated messages across DH ratchet steps open once each', async (t) => {
  const p = new RatchetPair(alice, bob, 'reorder');
  p.exchange('b', 'hello');
  const bChain1 = [p.send('b', 'b1'), p.send('b', 'b2'), p.send('b', 'b3')];
  const aChain1 = [p.send('a', 'a1'), p.send('a', 'a2')];
  t.equal(p.deliver(aChain1[1]!), 'a2', 'b opens the second of a chain first (one key skipped)');
  const bChain2 = [p.send('b', 'b4')];
  t.equal(p.deliver(bChain2[0]!), 'b4', 'a opens a new chain before the three of the older one (PN keys skipped)');
  const aChain2 = [p.send('a', 'a3'), p.send('a', 'a4')];
  t.equal(p.deliver(aChain2[1]!), 'a4', 'b opens a new chain of a');
  t.equal(p.deliver(aChain1[0]!), 'a1', 'then the skipped one of the older chain');
  t.equal(p.deliver(bChain1[1]!), 'b2');
  t.equal(p.deliver(bChain1[0]!), 'b1');
  t.equal(p.deliver(bChain1[2]!), 'b3');
  t.equal(p.deliver(aChain2[0]!), 'a3');
  // A duplicate in the current receiving chain is recognised as such; one of an older chain whose
  // keys are all used is not told apart from a foreign message (no old header key is kept).
  for (const r of [...bChain2, ...aChain2]) t.equal(p.deliver(r), 'refused:key_gone', `a duplicate of ${r.text} is refused`);
  for (const r of [...bChain1, ...aChain1]) t.equal(p.deliver(r), 'refused:not_this_session', `a duplicate of ${r.text} is refused`);
  t.equal(p.states.a.skipped.length + p.states.b.skipped.length, 0, 'no skipped key left once everything arrived');
  p.exchange('b', 'still in step');
  p.exchange('a', 'both ways');
});

t.test('a message of another session, or garbage, is refused and changes nothing', async (t) => {
  const p = new RatchetPair(alice, bob, 'other');
  const q = new RatchetPair(alice, carol, 'other-2');
  p.exchange('b', 'p');
  const foreign = q.send('b', 'q');
  const before = p.states.a;
  t.equal(p.deliver(foreign), 'refused:not_this_session');
  t.equal(p.states.a, before, 'state untouched');
  const rec = p.send('b', 'real');
  for (const [name, blob, reason] of [
    ['short', rec.blob.subarray(0, 255), 'too_short'],
    ['odd size', new Uint8Array(300), 'bad_bucket'],
    ['sealed version', Uint8Array.of(1, ...rec.blob.subarray(1)), 'bad_version'],
  ] as const) {
    const r = ratchetDecrypt(p.states.a, blob, NOW_MS, p.random);
    t.same(r, { ok: false, reason }, name);
  }
  // Every single flipped bit is refused: header bits by header authentication, body bits by the tag.
  let refused = 0;
  for (let i = 1; i < rec.blob.length; i++) {
    const bad = new Uint8Array(rec.blob);
    bad[i]! ^= 0x01 << (i % 8);
    const r = ratchetDecrypt(p.states.a, bad, NOW_MS, p.random);
    if (!r.ok) refused++;
  }
  t.equal(refused, rec.blob.length - 1, 'every flipped bit is refused');
  t.equal(p.deliver(rec), 'real', 'and the real message still opens');
});

t.test('a body that fails its tag after a DH step leaves the state as it was', async (t) => {
  const p = new RatchetPair(alice, bob, 'transactional');
  p.exchange('b', 'one');
  p.exchange('a', 'two');
  const rec = p.send('b', 'three'); // a new chain: opening it makes a take a DH step
  const bad = new Uint8Array(rec.blob);
  bad[bad.length - 1]! ^= 1;
  const before = p.states.a;
  t.same(ratchetDecrypt(p.states.a, bad, NOW_MS, p.random), { ok: false, reason: 'decrypt_failed' });
  t.equal(p.states.a, before);
  t.equal(p.deliver(rec), 'three');
});

function chain(p: RatchetPair, n: number): Recorded[] {
  return Array.from({ length: n }, (_, i) => p.send('b', `m${i}`));
}

t.test('skip per message: exactly RATCHET_SKIP_PER_MESSAGE_MAX opens, one more is refused', async (t) => {
  const p = new RatchetPair(alice, bob, 'skip');
  p.exchange('b', 'start');
  const m = chain(p, RATCHET_SKIP_PER_MESSAGE_MAX + 2);
  const before = p.states.a;
  t.equal(p.deliver(m[RATCHET_SKIP_PER_MESSAGE_MAX + 1]!), 'refused:too_far_ahead', `skipping ${RATCHET_SKIP_PER_MESSAGE_MAX + 1} keys is refused`);
  t.equal(p.states.a, before, 'and changes nothing');
  t.equal(p.deliver(m[RATCHET_SKIP_PER_MESSAGE_MAX]!), `m${RATCHET_SKIP_PER_MESSAGE_MAX}`, `skipping ${RATCHET_SKIP_PER_MESSAGE_MAX} keys opens`);
  t.equal(p.states.a.skipped.length, RATCHET_SKIP_PER_MESSAGE_MAX);
  t.equal(p.deliver(m[RATCHET_SKIP_PER_MESSAGE_MAX + 1]!), `m${RATCHET_SKIP_PER_MESSAGE_MAX + 1}`, 'the refused one opens once the gap is smaller');
  t.equal(p.deliver(m[7]!), 'm7', 'a skipped one opens');
  t.equal(p.deliver(m[7]!), 'refused:key_gone', 'once');
});

t.test('skipped keys per session: at the bound the oldest are dropped and their messages refused', async (t) => {
  const p = new RatchetPair(alice, bob, 'count');
  p.exchange('b', 'start');
  // Three chains of b's, each with its last message delivered only: skipped keys pile up.
  const chains: Recorded[][] = [];
  const per = Math.floor(RATCHET_SKIPPED_KEYS_MAX * 0.4); // three chains overflow the store
  t.ok(per <= RATCHET_SKIP_PER_MESSAGE_MAX && 3 * per > RATCHET_SKIPPED_KEYS_MAX);
  for (let c = 0; c < 3; c++) {
    const m = chain(p, per + 1);
    chains.push(m);
    t.equal(p.deliver(m[per]!), `m${per}`);
    p.exchange('a', `turn ${c}`); // a's reply makes b start a new chain
  }
  t.equal(p.states.a.skipped.length, RATCHET_SKIPPED_KEYS_MAX, 'the store is full, not over');
  const dropped = 3 * per - RATCHET_SKIPPED_KEYS_MAX;
  t.equal(p.deliver(chains[0]![dropped - 1]!), 'refused:key_gone', 'the newest dropped key: refused');
  t.equal(p.deliver(chains[0]![0]!), 'refused:key_gone', 'the oldest: refused');
  t.equal(p.deliver(chains[0]![dropped]!), `m${dropped}`, 'the oldest kept key opens');
  t.equal(p.deliver(chains[2]![per - 1]!), `m${per - 1}`, 'and the newest');
  t.equal(p.deliver(chains[2]![per - 1]!), 'refused:key_gone', 'once');
});

t.test('skipped keys older than RATCHET_SKIPPED_KEY_AGE_MAX_MS are dropped', async (t) => {
  const p = new RatchetPair(alice, bob, 'age');
  p.exchange('b', 'start');
  const m = chain(p, 4);
  t.equal(p.deliver(m[3]!, NOW_MS), 'm3');
  t.equal(p.deliver(m[0]!, NOW_MS + RATCHET_SKIPPED_KEY_AGE_MAX_MS), 'm0', 'at the age bound it still opens');
  t.equal(p.deliver(m[1]!, NOW_MS + RATCHET_SKIPPED_KEY_AGE_MAX_MS + 1), 'refused:key_gone', 'a millisecond later it is gone');
  t.equal(p.states.a.skipped.length, 2, 'the refusal itself drops nothing from the stored state');
  t.equal(p.deliver(p.send('b', 'next'), NOW_MS + RATCHET_SKIPPED_KEY_AGE_MAX_MS + 1), 'next');
  t.equal(p.states.a.skipped.length, 0, 'the next message that opens drops the expired key');
  t.equal(p.deliver(m[2]!, NOW_MS + RATCHET_SKIPPED_KEY_AGE_MAX_MS + 1), 'refused:key_gone');
});

t.test('a clock that goes back keeps skipped keys', async (t) => {
  const p = new RatchetPair(alice, bob, 'clock');
  p.exchange('b', 'start');
  const m = chain(p, 2);
  t.equal(p.deliver(m[1]!, NOW_MS), 'm1');
  t.equal(p.deliver(m[0]!, NOW_MS - 1000), 'm0');
});

t.test('bad input to the API is refused with a code', async (t) => {
  const random = seeded('input');
  const rx = certKeys(bob.cert)!.xPublicRaw;
  const ok = { initiatorFingerprint: alice.fingerprint, responderFingerprint: bob.fingerprint, responderXPublic: rx, random };
  t.throws(() => startRatchet({ ...ok, initiatorFingerprint: new Uint8Array(31) }), { code: 'PEERPOST_RATCHET_BAD_INPUT' });
  t.throws(() => startRatchet({ ...ok, responderXPublic: new Uint8Array(33) }), { code: 'PEERPOST_RATCHET_BAD_INPUT' });
  t.throws(() => startRatchet({ ...ok, responderXPublic: new Uint8Array(32) }), { code: 'PEERPOST_RATCHET_BAD_KEY' }, 'a small-order key');
  t.throws(() => startRatchet({ ...ok, random: () => new Uint8Array(31) }), { code: 'PEERPOST_RATCHET_BAD_INPUT' });
  const p = new RatchetPair(alice, bob, 'input');
  t.throws(() => ratchetDecrypt(p.states.a, new Uint8Array(256), -1, p.random), { code: 'PEERPOST_RATCHET_BAD_INPUT' });
  t.throws(() => ratchetDecrypt(p.states.a, new Uint8Array(256), 1.5, p.random), { code: 'PEERPOST_RATCHET_BAD_INPUT' });
  t.throws(() => ratchetEncrypt(p.states.b, 'text' as unknown as Uint8Array, p.random), { code: 'PEERPOST_RATCHET_BAD_INPUT' });
});
