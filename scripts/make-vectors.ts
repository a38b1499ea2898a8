/**
 * Writes the golden vectors of the Root envelope codec (docs/PROTOCOL.md):
 *   test/vectors/envelope.json          [{name, hex, decoded}]  one or more per payload type
 *   test/vectors/envelope-invalid.json  [{name, hex, reason}]   one or more per drop reason
 * Every byte is fixed (no clock, no randomness), so running it twice writes the same files.
 * `decoded` is the JSON form of a Message: field names of src/protocol/messages.ts, byte fields
 * as lowercase hex. Signatures and cookies here are fixed patterns, not valid ones: the codec
 * does not check them. SESSION tags are real: keyed BLAKE2b-128 under the key SESSION_KEY (f0f1...ff). Run: npx tsx scripts/make-vectors.ts
 */
import { createHash } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { decode, encode, MsgType, type DropReason, type Message } from '../src/protocol/index.js';
import { sealSession } from '../src/crypto/session.js';

/** Two real self-signed Ed25519 certificates (DER), 248 and 254 bytes. */
const PEER_CERT = hex(
  '3081f53081a8a00302010202081ebd46acf9b89906300506032b65703018311630140603550403130d766563746f722d73656e646572301e170d3236313132333131303132345a170d3336313132303131303132345a3018311630140603550403130d766563746f722d73656e646572302a300506032b65700321007d4cdcef69c40a139fd6efc15e6a1631d557b2a4c897b9683807088056154e61a310300e300c0603551d130101ff04023000300506032b65700341003fbb8a6b2018827597d89947ad52cf785ce966fef66905e7e55e3e0883182b80efec95b26d6b1632a7c1777bfb7d478b49c9b0e2ed97006830aec527affc2207',
);
const CLIENT_CERT = hex(
  '3081fb3081aea003020102020836e136df757c43c1300506032b6570301b3119301706035504031310766563746f722d726563697069656e74301e170d3236313132333131303132345a170d3336313132303131303132345a301b3119301706035504031310766563746f722d726563697069656e74302a300506032b65700321009560f50c17dd2c9bb7d4320c588ec68cdeea74ed03eafaff74064188e6e8cc58a310300e300c0603551d130101ff04023000300506032b65700341008f38dace35de93984022b145026042b336a79685b4cb33652d76dc4a6bd8315be4d0eb56a8f87f7cb237a6c7b9573427f681392c2f82a3734596f7c500931b0f',
);
const CLIENT_FP = sha256(CLIENT_CERT);
const PEER_FP = sha256(PEER_CERT);
/** Epoch 0x00d64d2a (cookieEpochMs 120000: 2026-11-23) followed by a 16-byte MAC pattern. */
const COOKIE = hex('00d64d2a' + 'c0c1c2c3c4c5c6c7c8c9cacbcccdcecf');
const NONCE = seq(0x10, 16);
const SIG = seq(0x40, 64);
const ID1 = seq(0xa0, 16);
const ID2 = seq(0xb0, 16);
const ID3 = seq(0xe0, 16);
const BLOB = hex('5eabed0001020304');
const PEER_KEY = seq(0x20, 32);
const CLIENT_KEY = seq(0x60, 32);
const WRAPPED = seq(0x80, 48);
const SESSION_ID = seq(0xd0, 8);
/** The MAC key of the SESSION vectors: their tags are real keyed BLAKE2b-128 tags under it. */
const SESSION_KEY = seq(0xf0, 32);
const CAP = hex('0a0b0c0d' + 'c1c2c3c4c5c6c7c8c9cacbcc');

const valid: Array<[string, Message]> = [
  ['OK without ref', { type: MsgType.OK, ref: new Uint8Array(0) }],
  ['OK naming a counter', { type: MsgType.OK, ref: hex('0000000000000007') }],
  ['OK naming a registration nonce', { type: MsgType.OK, ref: NONCE }],
  ['REGISTER padded to 1200 bytes', { type: MsgType.REGISTER, cert: CLIENT_CERT, nonce: NONCE }],
  ['KEEPALIVE asking for an answer', { type: MsgType.KEEPALIVE, answer: true }],
  ['KEEPALIVE without answer', { type: MsgType.KEEPALIVE, answer: false }],
  ['REGISTER_AGAIN', { type: MsgType.REGISTER_AGAIN, sessionId: SESSION_ID }],
  ['HELLO padded to 64 bytes', { type: MsgType.HELLO, nonce: NONCE, padTo: 64 }],
  ['CHALLENGE', { type: MsgType.CHALLENGE, nonce: NONCE, cookie: COOKIE, peerCert: PEER_CERT, peerKey: PEER_KEY, keySig: SIG }],
  [
    'REGISTER_PROOF',
    { type: MsgType.REGISTER_PROOF, cert: CLIENT_CERT, nonce: NONCE, cookie: COOKIE, peerKey: PEER_KEY, clientKey: CLIENT_KEY, wrappedKey: WRAPPED, sig: SIG },
  ],
  ['DELIVER', { type: MsgType.DELIVER, cookie: COOKIE, to: CLIENT_FP, id: ID1, blob: BLOB }],
  ['DELIVER with a capability', { type: MsgType.DELIVER, cookie: COOKIE, to: CLIENT_FP, id: ID1, cap: CAP, blob: BLOB }],
  ['COOKIE', { type: MsgType.COOKIE, nonce: NONCE, cookie: COOKIE }],
  ['SESSION with KEEPALIVE', sessionVector(1, { type: MsgType.KEEPALIVE, answer: true })],
  ['SESSION with ACK of one id', sessionVector(2, { type: MsgType.ACK, ids: [ID1] })],
  ['SESSION with OK naming the registration nonce (counter 0)', sessionVector(0, { type: MsgType.OK, ref: NONCE })],
  ['SESSION with PUSH', sessionVector(9, { type: MsgType.PUSH, id: ID1, blob: BLOB })],
  ['DELIVER with a 1100-byte blob', { type: MsgType.DELIVER, cookie: COOKIE, to: CLIENT_FP, id: ID2, blob: pattern(1100) }],
  ['DELIVER with a capability and a 1100-byte blob', { type: MsgType.DELIVER, cookie: COOKIE, to: CLIENT_FP, id: ID2, cap: CAP, blob: pattern(1100) }],
  ['SESSION with PUSH of a 1100-byte blob', sessionVector(10, { type: MsgType.PUSH, id: ID2, blob: pattern(1100) })],
  ['RESULT 200 DELIVERED', { type: MsgType.RESULT, id: ID1, status: 200 }],
  ['RESULT 300 HELD', { type: MsgType.RESULT, id: ID1, status: 300 }],
  ['PUSH', { type: MsgType.PUSH, id: ID1, blob: BLOB }],
  ['ACK of one id', { type: MsgType.ACK, ids: [ID1] }],
  ['ACK of three ids', { type: MsgType.ACK, ids: [ID1, ID2, ID3] }],
  ['POLL', { type: MsgType.POLL }],
  ['CERT_REQUEST', { type: MsgType.CERT_REQUEST, cookie: COOKIE, fingerprint: CLIENT_FP }],
  ['CERT', { type: MsgType.CERT, fingerprint: CLIENT_FP, cert: CLIENT_CERT }],
  ['DIR_JOIN', { type: MsgType.DIR_JOIN, name: 'alice' }],
  ['DIR_JOIN with a non-ASCII name', { type: MsgType.DIR_JOIN, name: 'Алиса 🌻' }],
  ['DIR_JOIN with the empty name (leave)', { type: MsgType.DIR_JOIN, name: '' }],
  ['DIR_LIST', { type: MsgType.DIR_LIST, cookie: COOKIE, page: 0 }],
  ['DIR_LIST of page 300', { type: MsgType.DIR_LIST, cookie: COOKIE, page: 300 }],
  [
    'DIR_PAGE with two entries',
    { type: MsgType.DIR_PAGE, page: 0, pages: 2, entries: [{ fingerprint: CLIENT_FP, name: 'alice' }, { fingerprint: PEER_FP, name: 'bob' }] },
  ],
  ['DIR_PAGE of an empty directory', { type: MsgType.DIR_PAGE, page: 0, pages: 1, entries: [] }],
  ['ERROR BAD_COOKIE about a message id, empty detail', { type: MsgType.ERROR, code: 1, ref: ID1, detail: '' }],
  ['ERROR NOT_FOUND about a fingerprint', { type: MsgType.ERROR, code: 10, ref: CLIENT_FP, detail: 'no client with this fingerprint' }],
  ['ERROR BAD_CERT without ref', { type: MsgType.ERROR, code: 2, ref: new Uint8Array(0), detail: 'expired: notAfter passed' }],
];

// Invalid datagrams: [name, hex, expected reason] built by hand from the layouts of docs/PROTOCOL.md.
const h = (b: Uint8Array): string => Buffer.from(b).toString('hex');
const id = h(ID1);
const cookie = h(COOKIE);
const fp = h(CLIENT_FP);
const cert100 = h(pattern(100));
const registerBody = (certLenHex: string, rest: string): string => `0202${certLenHex}${rest}`;
const sid = h(SESSION_ID);
const tag16 = '00'.repeat(16);
const invalid: Array<[string, string, DropReason]> = [
  ['empty datagram', '', 'empty'],
  ['1201 bytes', '0201' + '00'.repeat(1199), 'too_large'],
  ['one byte', '02', 'truncated'],
  ['REGISTER with a 1-byte payload', '020200', 'truncated'],
  ['HELLO with a 15-byte nonce', '0205' + '11'.repeat(15), 'truncated'],
  ['DELIVER with no payload', '0208', 'truncated'],
  ['RESULT whose array lacks its second item', `020982 50${id}`, 'truncated'],
  ['RESULT whose uint16 head lacks a byte', `020982 50${id} 19 01`, 'truncated'],
  ['version 0', '0001', 'bad_version'],
  ['version 1', '0101', 'bad_version'],
  ['payload type 0', '0200', 'unknown_type'],
  ['payload type 21', '0215', 'unknown_type'],
  ['payload type 255', '02ff', 'unknown_type'],
  ['KEEPALIVE with two payload bytes', '02030100', 'trailing_bytes'],
  ['KEEPALIVE without its flags byte', '0203', 'truncated'],
  ['KEEPALIVE flags 2', '020302', 'bad_schema'],
  ['REGISTER_AGAIN with a 7-byte session id', '0204' + '00'.repeat(7), 'truncated'],
  ['REGISTER_AGAIN with a 9-byte session id', '0204' + '00'.repeat(9), 'trailing_bytes'],
  ['OK with a one-byte ref', '020100', 'bad_length'],
  ['POLL with one payload byte', '020c00', 'trailing_bytes'],
  ['SESSION shorter than its header, inner envelope and tag', `0214 ${sid} 0000000000000001 020c`, 'truncated'],
  ['SESSION counter above 2^53-1', `0214 ${sid} 0020000000000000 020c ${tag16}`, 'bad_schema'],
  ['SESSION carrying a DELIVER', `0214 ${sid} 0000000000000001 020884 54${cookie} 5820${fp} 50${id} 41ff ${tag16}`, 'bad_schema'],
  ['SESSION inside a SESSION', `0214 ${sid} 0000000000000001 0214 ${sid} 0000000000000001 020c ${tag16} ${tag16}`, 'bad_schema'],
  ['SESSION whose inner datagram is version 1', `0214 ${sid} 0000000000000001 010c ${tag16}`, 'bad_version'],
  ['SESSION whose inner KEEPALIVE has flags 3', `0214 ${sid} 0000000000000001 020303 ${tag16}`, 'bad_schema'],
  ['DELIVER capability of 15 bytes', `020885 54${cookie} 5820${fp} 50${id} 4f${'00'.repeat(15)} 41ff`, 'bad_schema'],
  ['CHALLENGE of the old three-item form', `020683 54${cookie} 5864${cert100} 5840${'00'.repeat(64)}`, 'bad_schema'],
  ['RESULT followed by a stray byte', `020982 50${id} 18c8 00`, 'trailing_bytes'],
  ['REGISTER cert length 99', registerBody('0063', h(pattern(99)) + h(NONCE)), 'bad_length'],
  ['REGISTER cert length 801', registerBody('0321', '00'.repeat(801 + 16)), 'bad_length'],
  ['REGISTER cert length past the end', registerBody('0064', cert100 + '11'.repeat(15)), 'bad_length'],
  ['REGISTER cert length 0xffff', registerBody('ffff', cert100), 'bad_length'],
  ['byte string longer than the payload', `020982 58ff ${id}`, 'bad_length'],
  ['array count larger than the bytes left', `020b 9a00010000 00`, 'bad_length'],
  ['array of 2^32 items (0x9b, 8-byte count)', `020b 9b0000000100000000 00`, 'bad_length'],
  ['byte string of 2^32 bytes (0x5b, 8-byte length)', `020a82 50${id} 5b0000000100000000 00`, 'bad_length'],
  ['REGISTER with a non-zero padding byte', registerBody('0064', cert100 + h(NONCE) + '0000ff00'), 'bad_padding'],
  ['HELLO with a non-zero padding byte', '0205' + h(NONCE) + '00'.repeat(100) + '01', 'bad_padding'],
  ['RESULT status 201', `020982 50${id} 18c9`, 'bad_schema'],
  ['RESULT id of 15 bytes', `020982 4f${id.slice(2)} 18c8`, 'bad_schema'],
  ['RESULT payload is a bare uint, not an array', '020918c8', 'bad_schema'],
  ['RESULT with three items', `020983 50${id} 18c8 00`, 'bad_schema'],
  ['DELIVER cookie of 19 bytes', `020884 53${cookie.slice(2)} 5820${fp} 50${id} 41ff`, 'bad_schema'],
  ['DELIVER with an empty blob', `020884 54${cookie} 5820${fp} 50${id} 40`, 'bad_schema'],
  ['DELIVER with a text id', `020884 54${cookie} 5820${fp} 70${'61'.repeat(16)} 41ff`, 'bad_schema'],
  ['ACK of no ids', '020b8180', 'bad_schema'],
  ['ACK of 33 ids', '020b81 9821' + `50${id}`.repeat(33), 'bad_schema'],
  ['ACK ids not wrapped in an inner array', `020b81 50${id}`, 'bad_schema'],
  ['DIR_JOIN name of 33 bytes', '020f81 7821' + '61'.repeat(33), 'bad_schema'],
  ['DIR_PAGE page 1 of 1', '021183 01 01 80', 'bad_schema'],
  ['DIR_PAGE pages 0', '021183 00 00 80', 'bad_schema'],
  ['DIR_PAGE entry with an empty name', `021183 00 01 81 82 5820${fp} 60`, 'bad_schema'],
  ['ERROR ref of 8 bytes', '021283 01 48' + '00'.repeat(8) + ' 60', 'bad_schema'],
  ['ERROR detail of 97 bytes', '021283 01 40 7861' + '61'.repeat(97), 'bad_schema'],
  ['ERROR code 65536', '021283 1a00010000 40 60', 'bad_schema'],
  ['ERROR code as true', '021283 f5 40 60', 'bad_schema'],
  ['indefinite-length array', `02099f 50${id} 18c8 ff`, 'cbor_indefinite'],
  ['indefinite-length byte string', `020982 5f 50${id} ff 18c8`, 'cbor_indefinite'],
  ['reserved additional info 28', '02091c', 'cbor_reserved'],
  ['uint of 2^53 (above 2^53-1)', `020982 50${id} 1b0020000000000000`, 'cbor_int_range'],
  ['array count 2^64-1', '020b9bffffffffffffffff', 'cbor_int_range'],
  ['status 200 in a two-byte head', `020982 50${id} 1900c8`, 'cbor_not_shortest'],
  ['uint 23 in a one-byte head', `020982 50${id} 1817`, 'cbor_not_shortest'],
  ['id byte string with a one-byte length head', `020982 5810${id} 18c8`, 'cbor_not_shortest'],
  ['arrays nested six deep', '020b 8181818181 80', 'cbor_too_deep'],
  ['257 items', '020b 990100' + '00'.repeat(256), 'cbor_too_many_items'],
  ['text with invalid UTF-8', '020f81 62c328', 'cbor_bad_utf8'],
  ['text with a UTF-8 encoded surrogate', '020f81 63eda080', 'cbor_bad_utf8'],
  ['text with an overlong UTF-8 encoding', '020f81 62c0af', 'cbor_bad_utf8'],
  ['undefined (0xf7)', '020f81 f7', 'cbor_bad_simple'],
  ['half-precision float', '020f81 f93c00', 'cbor_bad_simple'],
  ['double-precision float', '020f81 fb3ff0000000000000', 'cbor_bad_simple'],
  ['CBOR break byte alone', '020fff', 'cbor_bad_simple'],
  ['tag 24 around a byte string', `020982 d818 50${id} 18c8`, 'cbor_tag'],
  ['map', `020fa1 00 00`, 'cbor_map'],
  ['negative integer', '021283 20 40 60', 'cbor_negative'],
];

const validOut = valid.map(([name, msg]) => {
  const bytes = encode(msg);
  const r = decode(bytes);
  if (!r.ok) throw new Error(`${name}: own encoding refused (${r.reason})`);
  return { name, hex: h(bytes), decoded: toJson(msg) };
});
const invalidOut = invalid.map(([name, spaced, expected]) => {
  const x = spaced.replace(/\s+/g, '');
  const r = decode(hex(x));
  if (r.ok) throw new Error(`${name}: decodes as a valid message`);
  if (r.reason !== expected) throw new Error(`${name}: refused as ${r.reason}, expected ${expected}`);
  return { name, hex: x, reason: r.reason };
});
writeFileSync(new URL('../test/vectors/envelope.json', import.meta.url), JSON.stringify(validOut, null, 2) + '\n');
writeFileSync(new URL('../test/vectors/envelope-invalid.json', import.meta.url), JSON.stringify(invalidOut, null, 2) + '\n');
console.log(`${validOut.length} valid and ${invalidOut.length} invalid vectors written`);
for (const v of invalidOut) console.log(`${v.reason.padEnd(20)} ${v.name}`);

/** The JSON form of a message: byte fields as lowercase hex, `padTo` left out. */
function toJson(msg: Message): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(msg)) {
    if (k === 'padTo') continue;
    if (v instanceof Uint8Array) out[k] = h(v);
    else if (k === 'ids') out[k] = (v as Uint8Array[]).map(h);
    else if (k === 'entries') out[k] = (v as Array<{ fingerprint: Uint8Array; name: string }>).map((e) => ({ fingerprint: h(e.fingerprint), name: e.name }));
    else if (k === 'inner') out[k] = toJson(v as Message);
    else out[k] = v;
  }
  return out;
}

/** A SESSION vector with a real tag under SESSION_KEY. */
function sessionVector(counter: number, inner: Message): Message {
  const data = sealSession(SESSION_KEY, SESSION_ID, counter, inner);
  const r = decode(data);
  if (!r.ok || r.msg.type !== MsgType.SESSION) throw new Error('own SESSION refused');
  const { signed: _signed, ...msg } = r.msg;
  return msg;
}

function hex(s: string): Uint8Array {
  if (!/^(?:[0-9a-f]{2})*$/.test(s)) throw new Error(`bad hex: ${s.slice(0, 40)}`);
  return new Uint8Array(Buffer.from(s, 'hex'));
}

function seq(start: number, n: number): Uint8Array {
  return Uint8Array.from({ length: n }, (_, i) => (start + i) & 0xff);
}

/** n bytes that are not all alike: (i * 7 + 3) mod 256. */
function pattern(n: number): Uint8Array {
  return Uint8Array.from({ length: n }, (_, i) => (i * 7 + 3) & 0xff);
}

function sha256(b: Uint8Array): Uint8Array {
  return new Uint8Array(createHash('sha256').update(b).digest());
}
