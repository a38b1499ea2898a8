/** The stored form of ratchet sessions (src/crypto/ratchet-state.ts): round trips and refusals. */
import t from 'tap';
import { createHash } from 'node:crypto';
import { generateIdentity } from '../src/identity/certificate.js';
import { RATCHET_SKIPPED_KEYS_MAX } from '../src/crypto/ratchet.js';
import { decodeRatchetState, encodeRatchetState, RATCHET_STATE_CHECK_BYTES, RATCHET_STATE_VERSION } from '../src/crypto/ratchet-state.js';
import { RatchetPair } from './helpers/ratchet-pair.js';

const [alice, bob] = await Promise.all([generateIdentity({ commonName: 'alice' }), generateIdentity({ commonName: 'bob' })]);
if (!alice || !bob) throw new Error('identities');

/** Re-seals edited stored bytes with a valid check value, to reach the checks behind it. */
function withCheck(body: Uint8Array): Uint8Array {
  return Buffer.concat([body, createHash('sha256').update(body).digest().subarray(0, RATCHET_STATE_CHECK_BYTES)]);
}

function roundTrip(p: RatchetPair): void {
  p.states.a = decodeRatchetState(encodeRatchetState(p.states.a));
  p.states.b = decodeRatchetState(encodeRatchetState(p.states.b));
}

t.test('every shape of a session round trips, and the sessions go on after it', async (t) => {
  const p = new RatchetPair(alice, bob, 'state');
  for (const side of ['a', 'b'] as const) t.same(decodeRatchetState(encodeRatchetState(p.states[side])), p.states[side], `${side} at the start`);
  roundTrip(p);
  p.exchange('b', 'one');
  const held = [p.send('b', 'two'), p.send('b', 'three'), p.send('b', 'four')];
  t.equal(p.deliver(held[2]!), 'four');
  t.equal(p.states.a.skipped.length, 2);
  for (const side of ['a', 'b'] as const) t.same(decodeRatchetState(encodeRatchetState(p.states[side])), p.states[side], `${side} with skipped keys`);
  roundTrip(p);
  t.equal(p.deliver(held[0]!), 'two', 'a skipped key survives the round trip');
  p.exchange('a', 'five');
  roundTrip(p);
  p.exchange('b', 'six');
  t.equal(p.deliver(held[1]!), 'three');
  t.equal(p.deliver(held[1]!), 'refused:not_this_session', 'and is used once (its chain is done, its header key gone)');
  const bytes = encodeRatchetState(p.states.a);
  t.equal(bytes[0], RATCHET_STATE_VERSION);
  t.equal(bytes.length, 1 + 1 + 64 + 32 + 32 + 32 + 64 + 64 + 64 + 14 + RATCHET_STATE_CHECK_BYTES, 'a session without skipped keys is 384 bytes');
});

t.test('corrupted or malformed state is refused with a reason', async (t) => {
  const p = new RatchetPair(alice, bob, 'corrupt');
  p.exchange('b', 'one');
  const held = [p.send('b', 'two'), p.send('b', 'three')];
  p.deliver(held[1]!);
  const good = encodeRatchetState(p.states.a);
  const refuse = (bytes: unknown, re: RegExp, name: string): void => {
    t.throws(() => decodeRatchetState(bytes as Uint8Array), { code: 'PEERPOST_RATCHET_BAD_STATE', message: re }, name);
  };
  let flips = 0;
  for (let i = 0; i < good.length; i++) {
    const bad = new Uint8Array(good);
    bad[i]! ^= 0x01 << (i % 8);
    try {
      decodeRatchetState(bad);
    } catch (e) {
      if ((e as { code?: string }).code === 'PEERPOST_RATCHET_BAD_STATE') flips++;
    }
  }
  t.equal(flips, good.length, `each of ${good.length} flipped bits is refused`);
  refuse('text', /not a byte array/, 'a string');
  refuse(good.subarray(0, 100), /shorter than/, 'truncated');
  refuse(good.subarray(0, good.length - 1), /check value|bytes for/, 'one byte short');
  refuse(Buffer.concat([good, Uint8Array.of(0)]), /check value/, 'one byte more');
  const body = good.subarray(0, good.length - RATCHET_STATE_CHECK_BYTES);
  refuse(withCheck(Uint8Array.of(9, ...body.subarray(1))), /unknown version 9/, 'another version');
  refuse(withCheck(Uint8Array.of(body[0]!, 0x02, ...body.subarray(2))), /invalid flags 0x2/, 'sending keys without a ratchet key');
  refuse(withCheck(Uint8Array.of(body[0]!, 0x08, ...body.subarray(2))), /invalid flags 0x8/, 'an unknown flag');
  refuse(withCheck(Buffer.concat([body, Uint8Array.of(0)])), /bytes for 1 skipped keys/, 'a stray byte');
  // The skipped-key count sits just before the entries: 76 bytes each.
  const countAt = body.length - 76 - 2;
  t.equal(Buffer.from(body).readUInt16BE(countAt), 1);
  const many = Buffer.from(body);
  many.writeUInt16BE(RATCHET_SKIPPED_KEYS_MAX + 1, countAt);
  refuse(withCheck(many), new RegExp(`${RATCHET_SKIPPED_KEYS_MAX + 1} skipped keys, more than`), 'a count over the bound');
  const future = Buffer.from(body);
  future.writeBigUInt64BE(1n << 60n, body.length - 8);
  refuse(withCheck(future), /beyond the safe integer range/, 'a time out of range');
  const start = new RatchetPair(alice, bob, 'fresh');
  const fresh = Buffer.from(encodeRatchetState(start.states.a));
  const freshBody = fresh.subarray(0, fresh.length - RATCHET_STATE_CHECK_BYTES);
  freshBody.writeUInt32BE(1, freshBody.length - 14);
  refuse(withCheck(freshBody), /before its first reply has counters/, 'counters before the first reply');
});
