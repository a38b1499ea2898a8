import t from 'tap';
import fc from 'fast-check';
import { DropCounter, flatCbor, encode, decode, sessionInner } from '../src/protocol/codec.js';
import { sealSession } from '../src/crypto/session.js';
import { cborEncode } from '../src/protocol/cbor.js';
import { MsgType, PROTOCOL_VERSION, DeliveryStatus } from '../src/protocol/constants.js';

const item = fc.oneof(
  fc.uint8Array({ minLength: 0, maxLength: 300 }),
  fc.integer({ min: 0, max: 0xffffffff }),
  fc.constantFrom(0, 23, 24, 255, 256, 65535, 65536, 0xffffffff),
);

t.test('flatCbor writes what the general CBOR encoder writes', async (t) => {
  fc.assert(
    fc.property(fc.array(item, { maxLength: 30 }), (items) => {
      const flat = flatCbor(MsgType.PUSH, items);
      const general = cborEncode(items);
      return flat[0] === PROTOCOL_VERSION && flat[1] === MsgType.PUSH && Buffer.from(flat.subarray(2)).equals(Buffer.from(general));
    }),
    { numRuns: 3000, seed: 20261123 },
  );
  t.pass('3,000 random arrays');
});

t.test('byte strings at every head-size boundary', async (t) => {
  for (const n of [0, 1, 23, 24, 255, 256, 1000]) {
    const b = new Uint8Array(n).fill(0xab);
    t.same(flatCbor(MsgType.PUSH, [b]).subarray(2), cborEncode([b]), `${n} bytes`);
  }
});

t.test('PUSH, RESULT and DELIVER round-trip and refuse what they refused before', async (t) => {
  const id = new Uint8Array(16).fill(1);
  const push = decode(encode({ type: MsgType.PUSH, id, blob: new Uint8Array(512).fill(2) }));
  t.ok(push.ok && push.msg.type === MsgType.PUSH && push.msg.blob.length === 512);
  const res = decode(encode({ type: MsgType.RESULT, id, status: DeliveryStatus.HELD }));
  t.ok(res.ok && res.msg.type === MsgType.RESULT && res.msg.status === 300);
  t.throws(() => encode({ type: MsgType.RESULT, id, status: 201 as DeliveryStatus }), /200 or 300/);
  t.throws(() => encode({ type: MsgType.PUSH, id, blob: new Uint8Array(1190) }), /exceeds|blob/);
  t.throws(() => encode({ type: MsgType.PUSH, id: new Uint8Array(15), blob: new Uint8Array(1) }), /id/);
  t.throws(() => flatCbor(MsgType.PUSH, [-1]), /no number/);
});

t.test('sessionInner: a KEEPALIVE read without the decoder gives what the decoder gives; anything else goes to the decoder', async (t) => {
  const key = new Uint8Array(32).fill(9);
  const sid = new Uint8Array(8).fill(4);
  for (const answer of [false, true]) {
    const d = sealSession(key, sid, 7, { type: MsgType.KEEPALIVE, answer });
    const fast = sessionInner(d);
    const strict = decode(d.subarray(18, d.length - 16));
    t.same(fast, strict, `KEEPALIVE answer ${answer}`);
    t.ok(Object.isFrozen(fast) && fast.ok && Object.isFrozen(fast.msg), 'shared results cannot be changed');
  }
  const bad = sealSession(key, sid, 7, { type: MsgType.KEEPALIVE, answer: true });
  bad[20] = 2; // flags 2
  const drops = new DropCounter();
  t.match(sessionInner(bad, drops), { ok: false, reason: 'bad_schema' }, 'KEEPALIVE flags 2: the decoder refuses it');
  t.equal(drops.toJSON()['bad_schema'], 1);
  const v1 = sealSession(key, sid, 7, { type: MsgType.KEEPALIVE, answer: true });
  v1[18] = 1;
  t.match(sessionInner(v1), { ok: false, reason: 'bad_version' }, 'an inner datagram of version 1 is refused');
  const poll = sealSession(key, sid, 8, { type: MsgType.POLL });
  t.same(sessionInner(poll), { ok: true, msg: { type: MsgType.POLL } }, 'other types decode as before');
});
