/**
 * The Root envelope codec: [version u8][payload type u8][payload]. decode() never throws; it
 * returns a typed message or a typed drop reason. encode() throws LocalProtocolError when the
 * caller builds a message the spec does not allow (that is our bug, not the remote's).
 */
import {
  ACK_IDS_MAX, BLOB_MAX_BYTES, CAP_BYTES, CERT_MAX_BYTES, CERT_MIN_BYTES, COOKIE_BYTES, DATAGRAM_MAX_BYTES,
  DIRECTORY_NAME_MAX_BYTES, DIRECTORY_PAGE_ENTRIES_MAX, DeliveryStatus, ENVELOPE_HEADER_BYTES,
  ERROR_DETAIL_MAX_BYTES, FINGERPRINT_BYTES, HELLO_MIN_BYTES, KEEPALIVE_ANSWER, MESSAGE_ID_BYTES, MsgType, NONCE_BYTES,
  PROTOCOL_VERSION, SESSION_COUNTER_BYTES, SESSION_ID_BYTES, SESSION_OVERHEAD_BYTES, SESSION_TAG_BYTES,
  SIGNATURE_BYTES, WRAPPED_DELIVERY_KEY_BYTES, X25519_KEY_BYTES,
} from './constants.js';
import { cborDecodeChecked, cborEncode, type CborValue } from './cbor.js';
import type { DeliverMsg, DirEntry, Message } from './messages.js';

/** Why decode() refused a datagram. Stable strings, counted per reason. */
export type DropReason =
  | 'empty' | 'too_large' | 'truncated' | 'bad_version' | 'unknown_type' | 'trailing_bytes'
  | 'bad_length' | 'bad_padding' | 'bad_schema' | 'bad_cbor' | 'cbor_indefinite' | 'cbor_reserved'
  | 'cbor_int_range' | 'cbor_not_shortest' | 'cbor_too_deep' | 'cbor_too_many_items'
  | 'cbor_bad_utf8' | 'cbor_bad_simple' | 'cbor_tag' | 'cbor_map' | 'cbor_negative';

export type DecodeResult = { ok: true; msg: Message } | { ok: false; reason: DropReason };

/** Thrown by encode() when asked to build a datagram the spec forbids. */
export class LocalProtocolError extends Error {
  readonly code = 'PEERPOST_LOCAL_PROTOCOL';
}

/** Counts of refused datagrams by reason. */
export class DropCounter {
  readonly byReason = new Map<string, number>();
  total = 0;
  add(reason: string): void {
    this.total++;
    this.byReason.set(reason, (this.byReason.get(reason) ?? 0) + 1);
  }
  toJSON(): Record<string, number> {
    return Object.fromEntries(this.byReason);
  }
}

const utf8 = new TextEncoder();
/** Inner datagrams a SESSION may carry. */
export const SESSION_INNER_TYPES: ReadonlySet<number> = new Set([
  MsgType.OK, MsgType.KEEPALIVE, MsgType.PUSH, MsgType.ACK, MsgType.POLL, MsgType.DIR_JOIN, MsgType.ERROR,
]);
const SESSION_MIN_PAYLOAD_BYTES = SESSION_OVERHEAD_BYTES + ENVELOPE_HEADER_BYTES;
const U32 = 0x1_0000_0000;

// ---------------------------------------------------------------------------------------------
// encode

export function encode(msg: Message): Uint8Array {
  let payload: Uint8Array;
  switch (msg.type) {
    case MsgType.OK:
      if (!(msg.ref instanceof Uint8Array) || (msg.ref.length !== 0 && msg.ref.length !== SESSION_COUNTER_BYTES && msg.ref.length !== NONCE_BYTES)) {
        throw new LocalProtocolError('OK ref must be 0, 8 or 16 bytes');
      }
      payload = msg.ref;
      break;
    case MsgType.KEEPALIVE:
      payload = Uint8Array.of(msg.answer ? KEEPALIVE_ANSWER : 0);
      break;
    case MsgType.REGISTER_AGAIN:
      payload = need(msg.sessionId, SESSION_ID_BYTES, SESSION_ID_BYTES, 'sessionId');
      break;
    case MsgType.POLL:
      payload = new Uint8Array(0);
      break;
    case MsgType.COOKIE:
      payload = cbor([need(msg.nonce, NONCE_BYTES, NONCE_BYTES, 'nonce'), need(msg.cookie, COOKIE_BYTES, COOKIE_BYTES, 'cookie')]);
      break;
    case MsgType.SESSION: {
      need(msg.sessionId, SESSION_ID_BYTES, SESSION_ID_BYTES, 'sessionId');
      need(msg.tag, SESSION_TAG_BYTES, SESSION_TAG_BYTES, 'tag');
      if (!Number.isSafeInteger(msg.counter) || msg.counter < 0) throw new LocalProtocolError('SESSION counter must be an integer 0..2^53-1');
      if (!SESSION_INNER_TYPES.has(msg.inner.type)) throw new LocalProtocolError(`a SESSION cannot carry type ${msg.inner.type}`);
      const inner = encode(msg.inner);
      payload = new Uint8Array(SESSION_ID_BYTES + SESSION_COUNTER_BYTES + inner.length + SESSION_TAG_BYTES);
      payload.set(msg.sessionId, 0);
      const dv = new DataView(payload.buffer);
      dv.setUint32(SESSION_ID_BYTES, Math.floor(msg.counter / U32));
      dv.setUint32(SESSION_ID_BYTES + 4, msg.counter % U32);
      payload.set(inner, SESSION_ID_BYTES + SESSION_COUNTER_BYTES);
      payload.set(msg.tag, payload.length - SESSION_TAG_BYTES);
      break;
    }
    case MsgType.REGISTER: {
      need(msg.cert, CERT_MIN_BYTES, CERT_MAX_BYTES, 'cert');
      need(msg.nonce, NONCE_BYTES, NONCE_BYTES, 'nonce');
      const body = 2 + msg.cert.length + NONCE_BYTES;
      payload = new Uint8Array(padded(body, msg.padTo));
      new DataView(payload.buffer).setUint16(0, msg.cert.length);
      payload.set(msg.cert, 2);
      payload.set(msg.nonce, 2 + msg.cert.length);
      break;
    }
    case MsgType.HELLO:
      need(msg.nonce, NONCE_BYTES, NONCE_BYTES, 'nonce');
      payload = new Uint8Array(padded(NONCE_BYTES, msg.padTo ?? HELLO_MIN_BYTES));
      payload.set(msg.nonce, 0);
      break;
    case MsgType.CHALLENGE:
      payload = cbor([
        need(msg.nonce, NONCE_BYTES, NONCE_BYTES, 'nonce'),
        need(msg.cookie, COOKIE_BYTES, COOKIE_BYTES, 'cookie'),
        need(msg.peerCert, CERT_MIN_BYTES, CERT_MAX_BYTES, 'peerCert'),
        need(msg.peerKey, X25519_KEY_BYTES, X25519_KEY_BYTES, 'peerKey'),
        need(msg.keySig, SIGNATURE_BYTES, SIGNATURE_BYTES, 'keySig'),
      ]);
      break;
    case MsgType.REGISTER_PROOF:
      payload = cbor([
        need(msg.cert, CERT_MIN_BYTES, CERT_MAX_BYTES, 'cert'),
        need(msg.nonce, NONCE_BYTES, NONCE_BYTES, 'nonce'),
        need(msg.cookie, COOKIE_BYTES, COOKIE_BYTES, 'cookie'),
        need(msg.peerKey, X25519_KEY_BYTES, X25519_KEY_BYTES, 'peerKey'),
        need(msg.clientKey, X25519_KEY_BYTES, X25519_KEY_BYTES, 'clientKey'),
        need(msg.wrappedKey, WRAPPED_DELIVERY_KEY_BYTES, WRAPPED_DELIVERY_KEY_BYTES, 'wrappedKey'),
        need(msg.sig, SIGNATURE_BYTES, SIGNATURE_BYTES, 'sig'),
      ]);
      break;
    // The three datagrams of every relayed message are written directly (flatCbor), byte for byte
    // what the general encoder writes for them.
    case MsgType.DELIVER: {
      const head = [
        need(msg.cookie, COOKIE_BYTES, COOKIE_BYTES, 'cookie'),
        need(msg.to, FINGERPRINT_BYTES, FINGERPRINT_BYTES, 'to'),
        need(msg.id, MESSAGE_ID_BYTES, MESSAGE_ID_BYTES, 'id'),
      ];
      if (msg.cap !== undefined) head.push(need(msg.cap, CAP_BYTES, CAP_BYTES, 'cap'));
      return flatCbor(msg.type, [...head, need(msg.blob, 1, BLOB_MAX_BYTES, 'blob')]);
    }
    case MsgType.RESULT:
      if (msg.status !== DeliveryStatus.DELIVERED && msg.status !== DeliveryStatus.HELD) {
        throw new LocalProtocolError(`RESULT status must be 200 or 300, not ${msg.status}`);
      }
      return flatCbor(msg.type, [need(msg.id, MESSAGE_ID_BYTES, MESSAGE_ID_BYTES, 'id'), msg.status]);
    case MsgType.PUSH:
      return flatCbor(msg.type, [need(msg.id, MESSAGE_ID_BYTES, MESSAGE_ID_BYTES, 'id'), need(msg.blob, 1, BLOB_MAX_BYTES, 'blob')]);
    case MsgType.ACK:
      if (msg.ids.length < 1 || msg.ids.length > ACK_IDS_MAX) {
        throw new LocalProtocolError(`ACK carries 1 to ${ACK_IDS_MAX} ids, not ${msg.ids.length}`);
      }
      payload = cbor([msg.ids.map((id) => need(id, MESSAGE_ID_BYTES, MESSAGE_ID_BYTES, 'id'))]);
      break;
    case MsgType.CERT_REQUEST:
      payload = cbor([
        need(msg.cookie, COOKIE_BYTES, COOKIE_BYTES, 'cookie'),
        need(msg.fingerprint, FINGERPRINT_BYTES, FINGERPRINT_BYTES, 'fingerprint'),
      ]);
      break;
    case MsgType.CERT:
      payload = cbor([
        need(msg.fingerprint, FINGERPRINT_BYTES, FINGERPRINT_BYTES, 'fingerprint'),
        need(msg.cert, CERT_MIN_BYTES, CERT_MAX_BYTES, 'cert'),
      ]);
      break;
    case MsgType.DIR_JOIN:
      payload = cbor([needText(msg.name, 0, DIRECTORY_NAME_MAX_BYTES, 'name')]);
      break;
    case MsgType.DIR_LIST:
      payload = cbor([need(msg.cookie, COOKIE_BYTES, COOKIE_BYTES, 'cookie'), needUint(msg.page, 0xffff, 'page')]);
      break;
    case MsgType.DIR_PAGE:
      if (msg.entries.length > DIRECTORY_PAGE_ENTRIES_MAX) {
        throw new LocalProtocolError(`DIR_PAGE carries at most ${DIRECTORY_PAGE_ENTRIES_MAX} entries`);
      }
      if (msg.pages < 1 || msg.page >= msg.pages) throw new LocalProtocolError('DIR_PAGE needs page < pages');
      payload = cbor([
        needUint(msg.page, 0xffff, 'page'),
        needUint(msg.pages, 0xffff, 'pages'),
        msg.entries.map((e) => [
          need(e.fingerprint, FINGERPRINT_BYTES, FINGERPRINT_BYTES, 'fingerprint'),
          needText(e.name, 1, DIRECTORY_NAME_MAX_BYTES, 'name'),
        ]),
      ]);
      break;
    case MsgType.ERROR:
      if (msg.ref.length !== 0 && msg.ref.length !== MESSAGE_ID_BYTES && msg.ref.length !== FINGERPRINT_BYTES) {
        throw new LocalProtocolError('ERROR ref must be 0, 16 or 32 bytes');
      }
      payload = cbor([
        needUint(msg.code, 0xffff, 'code'),
        msg.ref,
        needText(msg.detail, 0, ERROR_DETAIL_MAX_BYTES, 'detail'),
      ]);
      break;
    default:
      throw new LocalProtocolError(`unknown message type ${(msg as { type: unknown }).type}`);
  }
  const out = new Uint8Array(ENVELOPE_HEADER_BYTES + payload.length);
  out[0] = PROTOCOL_VERSION;
  out[1] = msg.type;
  out.set(payload, ENVELOPE_HEADER_BYTES);
  if (out.length > DATAGRAM_MAX_BYTES) {
    throw new LocalProtocolError(`datagram of ${out.length} bytes exceeds ${DATAGRAM_MAX_BYTES}`);
  }
  return out;
}

function cbor(value: CborValue): Uint8Array {
  return cborEncode(value);
}

/** Bytes of a CBOR head with argument `n` (< 2^32) in preferred serialization (RFC 8949 4.2.1). */
function headBytes(n: number): number {
  return n < 24 ? 1 : n < 0x100 ? 2 : n < 0x10000 ? 3 : 5;
}

function writeHead(out: Uint8Array, at: number, major: number, n: number): number {
  const m = major << 5;
  if (n < 24) {
    out[at] = m | n;
    return at + 1;
  }
  if (n < 0x100) {
    out[at] = m | 24;
    out[at + 1] = n;
    return at + 2;
  }
  if (n < 0x10000) {
    out[at] = m | 25;
    out[at + 1] = n >>> 8;
    out[at + 2] = n & 0xff;
    return at + 3;
  }
  out[at] = m | 26;
  out[at + 1] = n >>> 24;
  out[at + 2] = (n >>> 16) & 0xff;
  out[at + 3] = (n >>> 8) & 0xff;
  out[at + 4] = n & 0xff;
  return at + 5;
}

/**
 * The envelope of `type` around a CBOR array of byte strings and unsigned integers (< 2^32),
 * written in one allocation: the same bytes as cborEncode gives for that array.
 */
export function flatCbor(type: number, items: ReadonlyArray<Uint8Array | number>): Uint8Array {
  let size = ENVELOPE_HEADER_BYTES + headBytes(items.length);
  for (const x of items) size += typeof x === 'number' ? headBytes(x) : headBytes(x.length) + x.length;
  if (size > DATAGRAM_MAX_BYTES) throw new LocalProtocolError(`datagram of ${size} bytes exceeds ${DATAGRAM_MAX_BYTES}`);
  const out = Buffer.allocUnsafe(size); // from Node's pool: every byte is written below
  out[0] = PROTOCOL_VERSION;
  out[1] = type;
  let at = writeHead(out, ENVELOPE_HEADER_BYTES, 4, items.length);
  for (const x of items) {
    if (typeof x === 'number') {
      if (!Number.isInteger(x) || x < 0 || x > 0xffffffff) throw new LocalProtocolError(`flatCbor has no number ${x}`);
      at = writeHead(out, at, 0, x);
    } else {
      at = writeHead(out, at, 2, x.length);
      out.set(x, at);
      at += x.length;
    }
  }
  return out;
}

function padded(bodyBytes: number, padTo: number | undefined): number {
  const target = (padTo ?? DATAGRAM_MAX_BYTES) - ENVELOPE_HEADER_BYTES;
  return Math.max(bodyBytes, Math.min(target, DATAGRAM_MAX_BYTES - ENVELOPE_HEADER_BYTES));
}

function need(b: Uint8Array, min: number, max: number, name: string): Uint8Array {
  if (!(b instanceof Uint8Array)) throw new LocalProtocolError(`${name} must be a Uint8Array`);
  if (b.length < min || b.length > max) {
    throw new LocalProtocolError(`${name} must be ${min === max ? min : `${min} to ${max}`} bytes, not ${b.length}`);
  }
  return b;
}

function needText(s: string, min: number, max: number, name: string): string {
  if (typeof s !== 'string') throw new LocalProtocolError(`${name} must be a string`);
  const n = utf8.encode(s).length;
  if (n < min || n > max) throw new LocalProtocolError(`${name} must be ${min} to ${max} UTF-8 bytes, not ${n}`);
  return s;
}

function needUint(n: number, max: number, name: string): number {
  if (!Number.isInteger(n) || n < 0 || n > max) throw new LocalProtocolError(`${name} must be an integer 0..${max}`);
  return n;
}

// ---------------------------------------------------------------------------------------------
// decode

/**
 * Decode one datagram. Never throws. When `drops` is given, a refusal is counted there. The byte
 * strings of the message are views of `data`: a caller that reuses its receive buffer copies them.
 */
export function decode(data: Uint8Array, drops?: DropCounter): DecodeResult {
  return decodeFlat(data) ?? decodeStrict(data, drops);
}

/** decode() without the decodeFlat shortcut: every datagram through the strict CBOR decoder. */
export function decodeStrict(data: Uint8Array, drops?: DropCounter): DecodeResult {
  let r: DecodeResult;
  try {
    r = decodeInner(data);
  } catch {
    r = { ok: false, reason: 'bad_schema' };
  }
  if (!r.ok && drops) drops.add(r.reason);
  return r;
}

/**
 * The four datagrams of every relayed message (DELIVER, PUSH, ACK, RESULT) read by hand when they
 * have exactly the shape encode() writes: the schema's array, byte strings of the schema's sizes,
 * shortest-form CBOR heads, nothing after the last item. Anything else (including every malformed
 * datagram) is left to the strict decoder: undefined. Whatever this accepts, decodeStrict accepts
 * with an equal message (the decoder fuzz test checks both on every input).
 */
export function decodeFlat(data: Uint8Array): DecodeResult | undefined {
  const n = data.length;
  if (n < 4 || n > DATAGRAM_MAX_BYTES || data[0] !== PROTOCOL_VERSION) return undefined;
  switch (data[1]) {
    case MsgType.DELIVER: {
      // 84 (or 85), 54 cookie(20), 58 20 to(32), 50 id(16), [50 cap(16)], blob head, blob
      const withCap = data[2] === 0x85;
      if (n < 77 || (data[2] !== 0x84 && !withCap) || data[3] !== 0x54 || data[24] !== 0x58 || data[25] !== 0x20 || data[58] !== 0x50) return undefined;
      if (withCap && (n < 94 || data[75] !== 0x50)) return undefined;
      const blobAt = bstrEnd(data, withCap ? 92 : 75, 1, BLOB_MAX_BYTES);
      if (blobAt < 0) return undefined;
      const cookie = view(data, 4, 24), to = view(data, 26, 58), id = view(data, 59, 75), blob = view(data, blobAt, n);
      const msg: DeliverMsg = withCap ? { type: MsgType.DELIVER, cookie, to, id, cap: view(data, 76, 92), blob } : { type: MsgType.DELIVER, cookie, to, id, blob };
      return { ok: true, msg };
    }
    case MsgType.PUSH: {
      // 82, 50 id(16), blob head, blob
      if (n < 21 || data[2] !== 0x82 || data[3] !== 0x50) return undefined;
      const blobAt = bstrEnd(data, 20, 1, BLOB_MAX_BYTES);
      if (blobAt < 0) return undefined;
      return { ok: true, msg: { type: MsgType.PUSH, id: view(data, 4, 20), blob: view(data, blobAt, n) } };
    }
    case MsgType.RESULT: {
      // 82, 50 id(16), 18 c8 (200) or 19 01 2c (300)
      if (data[2] !== 0x82 || data[3] !== 0x50) return undefined;
      let status: DeliveryStatus;
      if (n === 22 && data[20] === 0x18 && data[21] === DeliveryStatus.DELIVERED) status = DeliveryStatus.DELIVERED;
      else if (n === 23 && data[20] === 0x19 && ((data[21]! << 8) | data[22]!) === DeliveryStatus.HELD) status = DeliveryStatus.HELD;
      else return undefined;
      return { ok: true, msg: { type: MsgType.RESULT, id: view(data, 4, 20), status } };
    }
    case MsgType.ACK: {
      // 81, array head of k ids (k < 24 only), then k times 50 id(16)
      const k = data[3]! - 0x80;
      if (data[2] !== 0x81 || k < 1 || k > ACK_IDS_MAX || k >= 24 || n !== 4 + 17 * k) return undefined;
      const ids: Uint8Array[] = [];
      for (let at = 4; at < n; at += 17) {
        if (data[at] !== 0x50) return undefined;
        ids.push(view(data, at + 1, at + 17));
      }
      return { ok: true, msg: { type: MsgType.ACK, ids } };
    }
    default:
      return undefined;
  }
}

/**
 * Where the bytes of the byte string whose head is at `at` start, when that string is the last
 * item of `data` (it ends exactly at the end), its head is in shortest form and its length is in
 * [min, max]; -1 otherwise.
 */
function bstrEnd(data: Uint8Array, at: number, min: number, max: number): number {
  const h = data[at]!;
  let len: number;
  let start: number;
  if (h >= 0x40 && h < 0x58) {
    len = h - 0x40;
    start = at + 1;
  } else if (h === 0x58) {
    len = data[at + 1]!;
    if (len < 24) return -1;
    start = at + 2;
  } else if (h === 0x59) {
    len = (data[at + 1]! << 8) | data[at + 2]!;
    if (len < 256) return -1;
    start = at + 3;
  } else return -1;
  if (len < min || len > max || start + len !== data.length) return -1;
  return start;
}

/** Bytes [from, to) of `data` as a plain Uint8Array view (no copy). */
function view(data: Uint8Array, from: number, to: number): Uint8Array {
  return new Uint8Array(data.buffer, data.byteOffset + from, to - from);
}

function fail(reason: DropReason): DecodeResult {
  return { ok: false, reason };
}

function decodeInner(data: Uint8Array): DecodeResult {
  if (data.length === 0) return fail('empty');
  if (data.length > DATAGRAM_MAX_BYTES) return fail('too_large');
  if (data.length < ENVELOPE_HEADER_BYTES) return fail('truncated');
  if (data[0] !== PROTOCOL_VERSION) return fail('bad_version');
  const type = data[1]!;
  const payload = data.subarray(ENVELOPE_HEADER_BYTES);
  switch (type) {
    case MsgType.POLL:
      return payload.length === 0 ? { ok: true, msg: { type } } : fail('trailing_bytes');
    case MsgType.OK:
      if (payload.length !== 0 && payload.length !== SESSION_COUNTER_BYTES && payload.length !== NONCE_BYTES) return fail('bad_length');
      return { ok: true, msg: { type, ref: copy(payload, 0, payload.length) } };
    case MsgType.KEEPALIVE:
      if (payload.length < 1) return fail('truncated');
      if (payload.length > 1) return fail('trailing_bytes');
      if (payload[0]! > KEEPALIVE_ANSWER) return fail('bad_schema');
      return { ok: true, msg: { type, answer: payload[0] === KEEPALIVE_ANSWER } };
    case MsgType.REGISTER_AGAIN:
      if (payload.length < SESSION_ID_BYTES) return fail('truncated');
      if (payload.length > SESSION_ID_BYTES) return fail('trailing_bytes');
      return { ok: true, msg: { type, sessionId: copy(payload, 0, SESSION_ID_BYTES) } };
    case MsgType.REGISTER:
      return decodeRegister(payload);
    case MsgType.HELLO:
      return decodeHello(payload);
    case MsgType.SESSION:
      return decodeSession(data, payload);
    default:
  }
  if (type < MsgType.OK || type > MsgType.SESSION) return fail('unknown_type');
  if (payload.length === 0) return fail('truncated');
  const c = cborDecodeChecked(payload);
  if (!c.ok) return fail(c.reason as DropReason);
  const msg = fromCbor(type, c.value);
  return msg ? { ok: true, msg } : fail('bad_schema');
}

function decodeRegister(p: Uint8Array): DecodeResult {
  if (p.length < 2) return fail('truncated');
  const certLen = (p[0]! << 8) | p[1]!;
  if (certLen < CERT_MIN_BYTES || certLen > CERT_MAX_BYTES) return fail('bad_length');
  if (2 + certLen + NONCE_BYTES > p.length) return fail('bad_length');
  const end = 2 + certLen + NONCE_BYTES;
  if (!allZero(p, end)) return fail('bad_padding');
  return {
    ok: true,
    msg: { type: MsgType.REGISTER, cert: copy(p, 2, 2 + certLen), nonce: copy(p, 2 + certLen, end) },
  };
}

function decodeHello(p: Uint8Array): DecodeResult {
  if (p.length < NONCE_BYTES) return fail('truncated');
  if (!allZero(p, NONCE_BYTES)) return fail('bad_padding');
  return { ok: true, msg: { type: MsgType.HELLO, nonce: copy(p, 0, NONCE_BYTES) } };
}

/**
 * SESSION: sessionId, counter, a whole inner datagram (decoded by decode(), flat path included) and
 * the tag. The tag is not checked here (the codec holds no keys): `signed` is what it covers.
 */
function decodeSession(data: Uint8Array, p: Uint8Array): DecodeResult {
  if (p.length < SESSION_MIN_PAYLOAD_BYTES) return fail('truncated');
  const counter = sessionCounter(data);
  if (counter < 0) return fail('bad_schema'); // above 2^53-1
  const inner = sessionInner(data);
  if (!inner.ok) return inner;
  const tagStart = data.length - SESSION_TAG_BYTES;
  return {
    ok: true,
    msg: {
      type: MsgType.SESSION,
      sessionId: copy(p, 0, SESSION_ID_BYTES),
      counter,
      inner: inner.msg,
      signed: view(data, 0, tagStart),
      tag: view(data, tagStart, data.length),
    },
  };
}

/** Bytes of the smallest SESSION datagram: envelope, session id, counter, an inner envelope, tag. */
export const SESSION_DATAGRAM_MIN_BYTES = ENVELOPE_HEADER_BYTES + SESSION_MIN_PAYLOAD_BYTES;
const SESSION_COUNTER_AT = ENVELOPE_HEADER_BYTES + SESSION_ID_BYTES;
const SESSION_INNER_AT = SESSION_COUNTER_AT + SESSION_COUNTER_BYTES;

/**
 * Whether `data` has the envelope and a size of a SESSION datagram, its content not checked: a
 * receiver that knows the session id authenticates it (sessionCounter, the tag over all but the
 * last SESSION_TAG_BYTES) before it reads the inner datagram with sessionInner().
 */
export function isSessionDatagram(data: Uint8Array): boolean {
  return data[1] === MsgType.SESSION && data[0] === PROTOCOL_VERSION && data.length >= SESSION_DATAGRAM_MIN_BYTES && data.length <= DATAGRAM_MAX_BYTES;
}

/** The counter of a SESSION datagram (isSessionDatagram), or -1 when it is above 2^53-1. */
export function sessionCounter(data: Uint8Array): number {
  const at = SESSION_COUNTER_AT;
  const hi = ((data[at]! << 24) | (data[at + 1]! << 16) | (data[at + 2]! << 8) | data[at + 3]!) >>> 0;
  const lo = ((data[at + 4]! << 24) | (data[at + 5]! << 16) | (data[at + 6]! << 8) | data[at + 7]!) >>> 0;
  return hi >= 0x200000 ? -1 : hi * U32 + lo;
}

/** The decoded KEEPALIVEs (shared, frozen: a caller reads them, never changes them). */
const KEEPALIVE_SILENT: DecodeResult = Object.freeze({ ok: true, msg: Object.freeze({ type: MsgType.KEEPALIVE, answer: false }) }) as DecodeResult;
const KEEPALIVE_ANSWERED: DecodeResult = Object.freeze({ ok: true, msg: Object.freeze({ type: MsgType.KEEPALIVE, answer: true }) }) as DecodeResult;

/** The inner datagram of a SESSION datagram (isSessionDatagram), decoded, of a type a SESSION may carry. */
export function sessionInner(data: Uint8Array, drops?: DropCounter): DecodeResult {
  // The most frequent inner datagram, a KEEPALIVE (02 03 00 or 02 03 01), without a decoder run.
  if (data.length === SESSION_INNER_AT + 3 + SESSION_TAG_BYTES && data[SESSION_INNER_AT] === PROTOCOL_VERSION && data[SESSION_INNER_AT + 1] === MsgType.KEEPALIVE) {
    const flags = data[SESSION_INNER_AT + 2]!;
    if (flags === 0) return KEEPALIVE_SILENT;
    if (flags === KEEPALIVE_ANSWER) return KEEPALIVE_ANSWERED;
  }
  let r = decode(view(data, SESSION_INNER_AT, data.length - SESSION_TAG_BYTES));
  if (r.ok && !SESSION_INNER_TYPES.has(r.msg.type)) r = fail('bad_schema');
  if (!r.ok && drops) drops.add(r.reason);
  return r;
}

/** A copy of bytes [from, to) of `p` as a plain Uint8Array (Buffer.slice would give a view). */
function copy(p: Uint8Array, from: number, to: number): Uint8Array {
  return new Uint8Array(p.subarray(from, to));
}

function allZero(p: Uint8Array, from: number): boolean {
  for (let i = from; i < p.length; i++) if (p[i] !== 0) return false;
  return true;
}

/**
 * A byte string of the payload as a plain Uint8Array view of the datagram's bytes (no copy: the
 * decoded message shares the datagram's memory, which nothing writes to after it arrived).
 */
function bytes(v: unknown, min: number, max: number): Uint8Array | null {
  if (!(v instanceof Uint8Array) || v.length < min || v.length > max) return null;
  return view(v, 0, v.length);
}

function fixed(v: unknown, n: number): Uint8Array | null {
  return bytes(v, n, n);
}

function uint(v: unknown, max: number): number | null {
  return typeof v === 'number' && Number.isInteger(v) && v >= 0 && v <= max ? v : null;
}

function text(v: unknown, min: number, max: number): string | null {
  if (typeof v !== 'string') return null;
  const n = utf8.encode(v).length;
  return n >= min && n <= max ? v : null;
}

function tuple(v: unknown, n: number): unknown[] | null {
  return Array.isArray(v) && v.length === n ? v : null;
}

function fromCbor(type: number, v: unknown): Message | null {
  switch (type) {
    case MsgType.CHALLENGE: {
      const a = tuple(v, 5);
      if (!a) return null;
      const nonce = fixed(a[0], NONCE_BYTES), cookie = fixed(a[1], COOKIE_BYTES), peerCert = bytes(a[2], CERT_MIN_BYTES, CERT_MAX_BYTES);
      const peerKey = fixed(a[3], X25519_KEY_BYTES), keySig = fixed(a[4], SIGNATURE_BYTES);
      return nonce && cookie && peerCert && peerKey && keySig ? { type, nonce, cookie, peerCert, peerKey, keySig } : null;
    }
    case MsgType.REGISTER_PROOF: {
      const a = tuple(v, 7);
      if (!a) return null;
      const cert = bytes(a[0], CERT_MIN_BYTES, CERT_MAX_BYTES), nonce = fixed(a[1], NONCE_BYTES);
      const cookie = fixed(a[2], COOKIE_BYTES), peerKey = fixed(a[3], X25519_KEY_BYTES), clientKey = fixed(a[4], X25519_KEY_BYTES);
      const wrappedKey = fixed(a[5], WRAPPED_DELIVERY_KEY_BYTES), sig = fixed(a[6], SIGNATURE_BYTES);
      return cert && nonce && cookie && peerKey && clientKey && wrappedKey && sig
        ? { type, cert, nonce, cookie, peerKey, clientKey, wrappedKey, sig }
        : null;
    }
    case MsgType.DELIVER: {
      if (!Array.isArray(v) || (v.length !== 4 && v.length !== 5)) return null;
      const a = v as unknown[];
      const cookie = fixed(a[0], COOKIE_BYTES), to = fixed(a[1], FINGERPRINT_BYTES);
      const id = fixed(a[2], MESSAGE_ID_BYTES), blob = bytes(a[a.length - 1], 1, BLOB_MAX_BYTES);
      if (!cookie || !to || !id || !blob) return null;
      if (a.length === 4) return { type, cookie, to, id, blob };
      const cap = fixed(a[3], CAP_BYTES);
      return cap ? { type, cookie, to, id, cap, blob } : null;
    }
    case MsgType.COOKIE: {
      const a = tuple(v, 2);
      if (!a) return null;
      const nonce = fixed(a[0], NONCE_BYTES), cookie = fixed(a[1], COOKIE_BYTES);
      return nonce && cookie ? { type, nonce, cookie } : null;
    }
    case MsgType.RESULT: {
      const a = tuple(v, 2);
      if (!a) return null;
      const id = fixed(a[0], MESSAGE_ID_BYTES), status = uint(a[1], 0xffff);
      const known = status === DeliveryStatus.DELIVERED || status === DeliveryStatus.HELD;
      return id && known ? { type, id, status: status! } : null;
    }
    case MsgType.PUSH: {
      const a = tuple(v, 2);
      if (!a) return null;
      const id = fixed(a[0], MESSAGE_ID_BYTES), blob = bytes(a[1], 1, BLOB_MAX_BYTES);
      return id && blob ? { type, id, blob } : null;
    }
    case MsgType.ACK: {
      const a = tuple(v, 1);
      if (!a || !Array.isArray(a[0]) || a[0].length < 1 || a[0].length > ACK_IDS_MAX) return null;
      const ids: Uint8Array[] = [];
      for (const x of a[0] as unknown[]) {
        const id = fixed(x, MESSAGE_ID_BYTES);
        if (!id) return null;
        ids.push(id);
      }
      return { type, ids };
    }
    case MsgType.CERT_REQUEST: {
      const a = tuple(v, 2);
      if (!a) return null;
      const cookie = fixed(a[0], COOKIE_BYTES), fingerprint = fixed(a[1], FINGERPRINT_BYTES);
      return cookie && fingerprint ? { type, cookie, fingerprint } : null;
    }
    case MsgType.CERT: {
      const a = tuple(v, 2);
      if (!a) return null;
      const fingerprint = fixed(a[0], FINGERPRINT_BYTES), cert = bytes(a[1], CERT_MIN_BYTES, CERT_MAX_BYTES);
      return fingerprint && cert ? { type, fingerprint, cert } : null;
    }
    case MsgType.DIR_JOIN: {
      const a = tuple(v, 1);
      const name = a ? text(a[0], 0, DIRECTORY_NAME_MAX_BYTES) : null;
      return name !== null ? { type, name } : null;
    }
    case MsgType.DIR_LIST: {
      const a = tuple(v, 2);
      if (!a) return null;
      const cookie = fixed(a[0], COOKIE_BYTES), page = uint(a[1], 0xffff);
      return cookie && page !== null ? { type, cookie, page } : null;
    }
    case MsgType.DIR_PAGE: {
      const a = tuple(v, 3);
      if (!a) return null;
      const page = uint(a[0], 0xffff), pages = uint(a[1], 0xffff);
      if (page === null || pages === null || pages < 1 || page >= pages) return null;
      if (!Array.isArray(a[2]) || a[2].length > DIRECTORY_PAGE_ENTRIES_MAX) return null;
      const entries: DirEntry[] = [];
      for (const e of a[2] as unknown[]) {
        const t = tuple(e, 2);
        const fingerprint = t ? fixed(t[0], FINGERPRINT_BYTES) : null;
        const name = t ? text(t[1], 1, DIRECTORY_NAME_MAX_BYTES) : null;
        if (!fingerprint || name === null) return null;
        entries.push({ fingerprint, name });
      }
      return { type, page, pages, entries };
    }
    case MsgType.ERROR: {
      const a = tuple(v, 3);
      if (!a) return null;
      const code = uint(a[0], 0xffff), ref = bytes(a[1], 0, FINGERPRINT_BYTES), detail = text(a[2], 0, ERROR_DETAIL_MAX_BYTES);
      const refOk = ref && (ref.length === 0 || ref.length === MESSAGE_ID_BYTES || ref.length === FINGERPRINT_BYTES);
      return code !== null && refOk && detail !== null ? { type, code, ref: ref!, detail } : null;
    }
    default:
      return null;
  }
}
