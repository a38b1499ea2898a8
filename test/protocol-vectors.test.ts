/**
 * Golden vectors of the Root envelope (test/vectors/envelope*.json, written by
 * scripts/make-vectors.ts): every valid vector encodes to its hex and decodes to its JSON form,
 * every invalid one is refused with exactly its reason, and together they cover every payload
 * type and every drop reason the decoder can produce.
 */
import t from 'tap';
import { readFileSync } from 'node:fs';
import { blake2b as nobleBlake2b } from '@noble/hashes/blake2.js';
import { decode, encode, MsgType, DATAGRAM_MAX_BYTES, HELLO_MIN_BYTES, type DropReason, type Message } from '../src/protocol/index.js';

interface ValidVector { name: string; hex: string; decoded: Record<string, unknown> }
interface InvalidVector { name: string; hex: string; reason: string }

const load = <T>(file: string): T => JSON.parse(readFileSync(new URL(`./vectors/${file}`, import.meta.url), 'utf8')) as T;
const valid = load<ValidVector[]>('envelope.json');
const invalid = load<InvalidVector[]>('envelope-invalid.json');

const BYTE_FIELDS = new Set([
  'cert', 'nonce', 'cookie', 'peerCert', 'sig', 'to', 'id', 'blob', 'fingerprint', 'ref', 'peerKey', 'keySig', 'clientKey', 'wrappedKey',
  'cap', 'sessionId', 'tag',
]);
const unhex = (s: string): Uint8Array => {
  if (typeof s !== 'string' || !/^(?:[0-9a-f]{2})*$/.test(s)) throw new Error(`not lowercase hex: ${String(s).slice(0, 20)}`);
  return new Uint8Array(Buffer.from(s, 'hex'));
};
const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');

/** The Message of a JSON form: byte fields (by name) from hex, everything else as is. */
function fromJson(j: Record<string, unknown>): Message {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(j)) {
    if (BYTE_FIELDS.has(k)) out[k] = unhex(v as string);
    else if (k === 'ids') out[k] = (v as string[]).map(unhex);
    else if (k === 'entries') out[k] = (v as Array<{ fingerprint: string; name: string }>).map((e) => ({ fingerprint: unhex(e.fingerprint), name: e.name }));
    else if (k === 'inner') out[k] = fromJson(v as Record<string, unknown>);
    else out[k] = v;
  }
  return out as unknown as Message;
}

t.test('valid vectors: encode(decoded) is hex and decode(hex) is decoded', async (t) => {
  for (const v of valid) {
    const msg = fromJson(v.decoded);
    t.equal(hex(encode(msg)), v.hex, `${v.name}: encode`);
    const r = decode(unhex(v.hex));
    t.ok(r.ok, `${v.name}: decodes`);
    if (r.ok) {
      const { signed: _signed, ...got } = r.msg as Message & { signed?: Uint8Array };
      t.same(got, msg, `${v.name}: decoded form`);
    }
  }
});

t.test('valid vectors cover every payload type, padded REGISTER is 1200 bytes, HELLO 64', async (t) => {
  const types = new Set(valid.map((v) => v.decoded.type));
  for (const [name, n] of Object.entries(MsgType)) t.ok(types.has(n), `a vector of ${name}`);
  for (const v of valid) {
    if (v.decoded.type === MsgType.REGISTER) t.equal(v.hex.length / 2, DATAGRAM_MAX_BYTES, v.name);
    if (v.decoded.type === MsgType.HELLO) t.equal(v.hex.length / 2, HELLO_MIN_BYTES, v.name);
    t.ok(v.hex.length / 2 <= DATAGRAM_MAX_BYTES, `${v.name}: within the datagram maximum`);
  }
});

t.test('invalid vectors: refused with exactly their reason', async (t) => {
  for (const v of invalid) t.same(decode(unhex(v.hex)), { ok: false, reason: v.reason }, v.name);
});

t.test('invalid vectors cover every reachable drop reason', async (t) => {
  // bad_cbor only reports a throw of cbor-x on input that passed the structural check: no
  // datagram is known to reach it, so it has no vector.
  const all: DropReason[] = [
    'empty', 'too_large', 'truncated', 'bad_version', 'unknown_type', 'trailing_bytes', 'bad_length', 'bad_padding',
    'bad_schema', 'cbor_indefinite', 'cbor_reserved', 'cbor_int_range', 'cbor_not_shortest', 'cbor_too_deep',
    'cbor_too_many_items', 'cbor_bad_utf8', 'cbor_bad_simple', 'cbor_tag', 'cbor_map', 'cbor_negative',
  ];
  const seen = new Set(invalid.map((v) => v.reason));
  for (const r of all) t.ok(seen.has(r), `a vector refused as ${r}`);
  for (const r of seen) t.ok((all as string[]).includes(r), `${r} is a known reason`);
});

t.test('hand-checked bytes of a few vectors', async (t) => {
  const byName = (n: string): ValidVector => {
    const v = valid.find((x) => x.name === n);
    if (!v) throw new Error(`no vector ${n}`);
    return v;
  };
  // RESULT 200: version 2, type 9, array(2), bstr(16) id, uint 200 in a one-byte argument.
  t.equal(byName('RESULT 200 DELIVERED').hex, '020982' + '50' + 'a0a1a2a3a4a5a6a7a8a9aaabacadaeaf' + '18c8');
  // RESULT 300: uint 300 needs a two-byte argument (0x19 0x012c).
  t.ok(byName('RESULT 300 HELD').hex.endsWith('19012c'));
  t.equal(byName('KEEPALIVE asking for an answer').hex, '020301');
  t.equal(byName('DIR_JOIN with the empty name (leave)').hex, '020f8160');
  // SESSION: version 2, type 20, session id d0..d7, counter 1 (u64), inner KEEPALIVE 02 03 01, then
  // BLAKE2b-128 keyed with f0..ff over all that.
  const ka = byName('SESSION with KEEPALIVE').hex;
  t.equal(ka.slice(0, 42), '0214' + 'd0d1d2d3d4d5d6d7' + '0000000000000001' + '020301');
  t.equal(ka.slice(42), Buffer.from(nobleBlake2b(Buffer.from(ka.slice(0, 42), 'hex'), { key: Buffer.alloc(32).map((_, i) => 0xf0 + i), dkLen: 16 })).toString('hex'));
  // REGISTER: cert length 254 = 0x00fe, the DER, the nonce 10..1f, then zeros.
  const reg = byName('REGISTER padded to 1200 bytes').hex;
  t.equal(reg.slice(0, 8), '020200fe');
  t.equal(reg.slice(8 + 254 * 2, 8 + 254 * 2 + 32), '101112131415161718191a1b1c1d1e1f');
  t.match(reg.slice(8 + 254 * 2 + 32), /^(00)+$/);
  // ACK of three ids: array(1) of array(3) of bstr(16).
  t.ok(byName('ACK of three ids').hex.startsWith('020b818350a0a1'));
});
