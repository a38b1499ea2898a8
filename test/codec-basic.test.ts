import t from 'tap';
import { decode, encode, MsgType, DATAGRAM_MAX_BYTES, DropCounter } from '../src/protocol/index.js';

t.test('DELIVER round trip', async (t) => {
  const msg = {
    type: MsgType.DELIVER,
    cookie: new Uint8Array(20).fill(5),
    to: new Uint8Array(32).fill(1),
    id: new Uint8Array(16).fill(2),
    blob: new Uint8Array([9, 9, 9]),
  } as const;
  const r = decode(encode(msg));
  t.ok(r.ok);
  if (r.ok) t.same(r.msg, msg);
});

t.test('REGISTER is padded to the datagram maximum and round trips', async (t) => {
  const cert = new Uint8Array(211).fill(7);
  const nonce = new Uint8Array(16).fill(3);
  const bytes = encode({ type: MsgType.REGISTER, cert, nonce });
  t.equal(bytes.length, DATAGRAM_MAX_BYTES);
  const r = decode(bytes);
  t.ok(r.ok);
  if (r.ok && r.msg.type === MsgType.REGISTER) {
    t.same(r.msg.cert, cert);
    t.same(r.msg.nonce, nonce);
  }
});

t.test('refusals carry a reason and are counted', async (t) => {
  const drops = new DropCounter();
  t.same(decode(new Uint8Array(0), drops), { ok: false, reason: 'empty' });
  t.same(decode(new Uint8Array([1, 1]), drops), { ok: false, reason: 'bad_version' });
  t.same(decode(new Uint8Array([2, 200]), drops), { ok: false, reason: 'unknown_type' });
  t.same(decode(new Uint8Array([2, 3, 0, 0]), drops), { ok: false, reason: 'trailing_bytes' });
  t.same(decode(new Uint8Array(1201).fill(2), drops), { ok: false, reason: 'too_large' });
  t.equal(drops.total, 5);
  t.equal(drops.byReason.get('empty'), 1);
});

t.test('REGISTER and HELLO from a Buffer (as dgram delivers it) decode to plain copies, not views', async (t) => {
  const cert = new Uint8Array(120).fill(0x30);
  const nonce = new Uint8Array(16).fill(7);
  for (const m of [{ type: MsgType.REGISTER, cert, nonce } as const, { type: MsgType.HELLO, nonce } as const]) {
    const data = Buffer.from(encode(m));
    const r = decode(data);
    if (!r.ok || (r.msg.type !== MsgType.REGISTER && r.msg.type !== MsgType.HELLO)) return t.fail('not decoded');
    t.equal(Object.getPrototypeOf(r.msg.nonce), Uint8Array.prototype, 'a plain Uint8Array');
    data.fill(0);
    t.same([...r.msg.nonce], [...nonce], 'unchanged when the datagram is overwritten');
    if (r.msg.type === MsgType.REGISTER) t.same([...r.msg.cert], [...cert]);
  }
});
