/**
 * The cryptography of client sessions and delivery capabilities (docs/PROTOCOL.md sections 8, 9
 * and 10.1), from standard parts only:
 *   - X25519 (RFC 7748) between the client's fresh key and the peer's handshake key of the epoch;
 *   - HKDF-SHA256 (RFC 5869) for the session id and the three session keys;
 *   - ChaCha20-Poly1305 (RFC 8439) to carry the client's delivery key to its peer;
 *   - keyed BLAKE2b with a 16-byte output (RFC 7693, libsodium's crypto_generichash) as the MAC of
 *     every SESSION datagram, as WireGuard MACs with keyed BLAKE2s: one call into libsodium, where
 *     node:crypto's HMAC builds and later collects an OpenSSL context per datagram (about 3 times
 *     the CPU, most of a keepalive's cost at the peer);
 *   - HMAC-SHA256 (RFC 2104) for capability ids, capability keys and capability tags (truncated to
 *     4, 32 and 12 bytes);
 *   - Ed25519 (RFC 8032) for the peer's signature over its handshake key and the client's proof.
 * The anti-replay window follows WireGuard's (RFC 6479 style sliding bitmap).
 * Pure functions apart from ReplayWindow's own state; randomness comes from the caller.
 */
import { createCipheriv, createDecipheriv, createHmac, createPublicKey, diffieHellman, hkdfSync, timingSafeEqual, type KeyObject } from 'node:crypto';
import {
  CAP_BYTES, CAP_ID_BYTES, CAP_KEY_BYTES, CAP_TAG_BYTES, DELIVERY_KEY_BYTES, LABEL_CAP_ID, LABEL_CAP_KEY, LABEL_CAP_TAG,
  LABEL_DELIVERY_KEY, LABEL_PEER_KEY, LABEL_REGISTER, LABEL_SESSION, NONCE_BYTES, SESSION_ID_BYTES, SESSION_TAG_BYTES,
  WRAPPED_DELIVERY_KEY_BYTES, X25519_KEY_BYTES,
} from '../protocol/constants.js';
import sodium from 'sodium-native';
import { encode } from '../protocol/codec.js';
import type { Message, RegisterProofMsg, SessionMsg } from '../protocol/messages.js';
import { rawPublic, x25519PrivateFromRaw, x25519PublicFromRaw } from './keys.js';

const PEER_KEY_LABEL = Buffer.from(LABEL_PEER_KEY, 'ascii');
const REGISTER_LABEL = Buffer.from(LABEL_REGISTER, 'ascii');
const SESSION_LABEL = Buffer.from(LABEL_SESSION, 'ascii');
const DELIVERY_KEY_AAD = Buffer.from(LABEL_DELIVERY_KEY, 'ascii');
const CAP_ID_LABEL = Buffer.from(LABEL_CAP_ID, 'ascii');
const CAP_KEY_LABEL = Buffer.from(LABEL_CAP_KEY, 'ascii');
const CAP_TAG_LABEL = Buffer.from(LABEL_CAP_TAG, 'ascii');
const ZERO_NONCE = Buffer.alloc(12);
/** sessionId || client-to-peer key || peer-to-client key || wrap key. */
const SESSION_OKM_BYTES = SESSION_ID_BYTES + 32 + 32 + 32;

export interface SessionKeys {
  readonly sessionId: Uint8Array;
  /** MAC key of datagrams from the client to its peer. */
  readonly c2p: Uint8Array;
  /** MAC key of datagrams from the peer to its client. */
  readonly p2c: Uint8Array;
  /** Key that seals the delivery key in REGISTER_PROOF. */
  readonly wrap: Uint8Array;
}

/** An X25519 key pair from 32 random bytes. */
export function x25519KeyPair(secret: Uint8Array): { privateKey: KeyObject; publicKey: Uint8Array } {
  if (!(secret instanceof Uint8Array) || secret.length !== X25519_KEY_BYTES) throw new TypeError('an X25519 secret is 32 bytes');
  const privateKey = x25519PrivateFromRaw(secret);
  return { privateKey, publicKey: rawPublic(createPublicKey(privateKey)) };
}

/** X25519(privateKey, peerPublic); null for a small-order public key (all-zero result). */
export function x25519(privateKey: KeyObject, peerPublic: Uint8Array): Uint8Array | null {
  try {
    return new Uint8Array(diffieHellman({ privateKey, publicKey: x25519PublicFromRaw(peerPublic) }));
  } catch {
    return null;
  }
}

/** What the peer signs once per epoch: LABEL_PEER_KEY || peerKey. */
export function peerKeySigned(peerKey: Uint8Array): Buffer {
  return Buffer.concat([PEER_KEY_LABEL, peerKey]);
}

/** What the client signs in REGISTER_PROOF. */
export function registerSigned(p: {
  cookie: Uint8Array; peerFingerprint: Uint8Array; nonce: Uint8Array; peerKey: Uint8Array; clientKey: Uint8Array; wrappedKey: Uint8Array;
}): Buffer {
  return Buffer.concat([REGISTER_LABEL, p.cookie, p.peerFingerprint, p.nonce, p.peerKey, p.clientKey, p.wrappedKey]);
}

/**
 * The session keys: HKDF-SHA256(ikm = X25519 shared secret, salt = nonce, info = LABEL_SESSION ||
 * client fingerprint || peer fingerprint || clientKey || peerKey, L = 104), split as sessionId (8),
 * c2p (32), p2c (32), wrap (32).
 */
export function deriveSession(p: {
  shared: Uint8Array; nonce: Uint8Array; clientFingerprint: Uint8Array; peerFingerprint: Uint8Array; clientKey: Uint8Array; peerKey: Uint8Array;
}): SessionKeys {
  if (p.nonce.length !== NONCE_BYTES) throw new TypeError('the registration nonce is 16 bytes');
  const info = Buffer.concat([SESSION_LABEL, p.clientFingerprint, p.peerFingerprint, p.clientKey, p.peerKey]);
  const okm = new Uint8Array(hkdfSync('sha256', p.shared, p.nonce, info, SESSION_OKM_BYTES));
  return {
    sessionId: okm.slice(0, 8),
    c2p: okm.slice(8, 40),
    p2c: okm.slice(40, 72),
    wrap: okm.slice(72, 104),
  };
}

/** ChaCha20-Poly1305(wrap, nonce 0, AAD LABEL_DELIVERY_KEY) of the delivery key: 48 bytes. */
export function wrapDeliveryKey(wrap: Uint8Array, deliveryKey: Uint8Array): Uint8Array {
  if (deliveryKey.length !== DELIVERY_KEY_BYTES) throw new TypeError('a delivery key is 32 bytes');
  const c = createCipheriv('chacha20-poly1305', wrap, ZERO_NONCE, { authTagLength: 16 });
  c.setAAD(DELIVERY_KEY_AAD, { plaintextLength: DELIVERY_KEY_BYTES });
  return new Uint8Array(Buffer.concat([c.update(deliveryKey), c.final(), c.getAuthTag()]));
}

/** The delivery key, or null when the wrapped bytes do not authenticate. */
export function unwrapDeliveryKey(wrap: Uint8Array, wrapped: Uint8Array): Uint8Array | null {
  if (wrapped.length !== WRAPPED_DELIVERY_KEY_BYTES) return null;
  try {
    const d = createDecipheriv('chacha20-poly1305', wrap, ZERO_NONCE, { authTagLength: 16 });
    d.setAAD(DELIVERY_KEY_AAD, { plaintextLength: DELIVERY_KEY_BYTES });
    d.setAuthTag(wrapped.subarray(DELIVERY_KEY_BYTES));
    return new Uint8Array(Buffer.concat([d.update(wrapped.subarray(0, DELIVERY_KEY_BYTES)), d.final()]));
  } catch {
    return null;
  }
}

/** The MAC of a SESSION datagram: BLAKE2b-128 keyed with `key` (32 bytes) over every byte before the tag. */
export function sessionTag(key: Uint8Array, signed: Uint8Array): Uint8Array {
  const out = new Uint8Array(SESSION_TAG_BYTES);
  sodium.crypto_generichash(out, signed, key);
  return out;
}

/** Where tagMatches() computes the expected tag (read before it returns, so one is enough). */
const EXPECTED_TAG = new Uint8Array(SESSION_TAG_BYTES);

/** A SESSION datagram around `inner`, its tag made with `key`. */
export function sealSession(key: Uint8Array, sessionId: Uint8Array, counter: number, inner: Message): Uint8Array {
  const data = encode({ type: 20, sessionId, counter, inner, tag: new Uint8Array(SESSION_TAG_BYTES) } as SessionMsg);
  const end = data.length - SESSION_TAG_BYTES;
  data.set(sessionTag(key, data.subarray(0, end)), end);
  return data;
}

/**
 * The SESSION datagram around PUSH(id, blob), written in one buffer: the same bytes as
 * sealSession(key, sessionId, counter, { type: PUSH, id, blob }) (a test checks both agree), without
 * encoding the inner datagram first and copying it in. For the relay's hot path.
 */
export function sealSessionPush(key: Uint8Array, sessionId: Uint8Array, counter: number, id: Uint8Array, blob: Uint8Array): Uint8Array {
  const n = blob.length;
  if (id.length !== 16 || n < 1 || n > 1100 || sessionId.length !== SESSION_ID_BYTES) throw new TypeError('PUSH needs a 16-byte id, a 1..1100-byte blob, an 8-byte session id');
  const blobHead = n < 24 ? 1 : n < 256 ? 2 : 3;
  const innerLen = 2 + 1 + 17 + blobHead + n;
  const size = 2 + SESSION_ID_BYTES + 8 + innerLen + SESSION_TAG_BYTES;
  const out = Buffer.allocUnsafe(size); // every byte is written below
  out[0] = 2;
  out[1] = 20;
  out.set(sessionId, 2);
  out.writeUInt32BE(Math.floor(counter / 0x1_0000_0000), 10);
  out.writeUInt32BE(counter % 0x1_0000_0000, 14);
  let at = 18;
  out[at++] = 2;
  out[at++] = 10;
  out[at++] = 0x82;
  out[at++] = 0x50;
  out.set(id, at);
  at += 16;
  if (blobHead === 1) out[at++] = 0x40 + n;
  else if (blobHead === 2) {
    out[at++] = 0x58;
    out[at++] = n;
  } else {
    out[at++] = 0x59;
    out[at++] = n >>> 8;
    out[at++] = n & 0xff;
  }
  out.set(blob, at);
  at += n;
  sodium.crypto_generichash(out.subarray(at, at + SESSION_TAG_BYTES), out.subarray(0, at), key);
  return out;
}

/** Whether a decoded SESSION datagram's tag is right for `key` (constant time). */
export function sessionTagOk(key: Uint8Array, m: SessionMsg): boolean {
  return m.signed !== undefined && sessionTagValid(key, m.signed, m.tag);
}

/**
 * Whether the last SESSION_TAG_BYTES of the SESSION datagram `data` are the tag of the bytes before
 * them under `key`, compared in constant time (no copy of the datagram's parts).
 */
export function sessionDatagramTagValid(key: Uint8Array, data: Uint8Array): boolean {
  const end = data.length - SESSION_TAG_BYTES;
  return end >= 0 && tagMatches(key, new Uint8Array(data.buffer, data.byteOffset, end), data, end);
}

/** Whether `tag` is the session tag of `signed` under `key`, compared in constant time. */
export function sessionTagValid(key: Uint8Array, signed: Uint8Array, tag: Uint8Array): boolean {
  return tag.length === SESSION_TAG_BYTES && tagMatches(key, signed, tag, 0);
}

/** Whether `tag[at..at+16)` is the session tag of `signed` under `key`: every byte compared, whatever the first difference. */
function tagMatches(key: Uint8Array, signed: Uint8Array, tag: Uint8Array, at: number): boolean {
  const mac = EXPECTED_TAG;
  sodium.crypto_generichash(mac, signed, key);
  let diff = 0;
  for (let i = 0; i < SESSION_TAG_BYTES; i++) diff |= mac[i]! ^ tag[at + i]!;
  return diff === 0;
}

/** The capability id a client hands contact `contactFingerprint`: HMAC(deliveryKey, LABEL_CAP_ID || fp)[0..4]. */
export function capabilityId(deliveryKey: Uint8Array, contactFingerprint: Uint8Array): Uint8Array {
  return new Uint8Array(createHmac('sha256', deliveryKey).update(CAP_ID_LABEL).update(contactFingerprint).digest().subarray(0, CAP_ID_BYTES));
}

/** The key of a capability id: HMAC(deliveryKey, LABEL_CAP_KEY || capId), 32 bytes. */
export function capabilityKey(deliveryKey: Uint8Array, capId: Uint8Array): Uint8Array {
  return new Uint8Array(createHmac('sha256', deliveryKey).update(CAP_KEY_LABEL).update(capId).digest().subarray(0, CAP_KEY_BYTES));
}

/** The 12-byte tag of one DELIVER: HMAC(capKey, LABEL_CAP_TAG || to || id)[0..12]. */
export function capabilityTag(capKey: Uint8Array, to: Uint8Array, id: Uint8Array): Uint8Array {
  return createHmac('sha256', capKey).update(CAP_TAG_LABEL).update(to).update(id).digest().subarray(0, CAP_TAG_BYTES);
}

/** The DELIVER `cap` field: capId || tag. */
export function capabilityField(capId: Uint8Array, capKey: Uint8Array, to: Uint8Array, id: Uint8Array): Uint8Array {
  const out = new Uint8Array(CAP_BYTES);
  out.set(capId, 0);
  out.set(capabilityTag(capKey, to, id), CAP_ID_BYTES);
  return out;
}

/** Whether `cap` (capId || tag) is right for this DELIVER under `capKey`, compared in constant time. */
export function capabilityTagOk(capKey: Uint8Array, cap: Uint8Array, to: Uint8Array, id: Uint8Array): boolean {
  if (cap.length !== CAP_BYTES) return false;
  return timingSafeEqual(capabilityTag(capKey, to, id), cap.subarray(CAP_ID_BYTES));
}

/** Counters kept behind the highest one seen; an older counter is refused. */
export const REPLAY_WINDOW = 64;

/**
 * The state of an anti-replay window: the highest counter accepted (-1 before the first) and
 * bit i set when counter rxTop - i was accepted (i < 32 in rxLo, 32..63 in rxHi). Plain numeric
 * fields, so that the peer keeps them inline in each registry entry (no object per client).
 */
export interface ReplayState {
  rxTop: number;
  rxLo: number;
  rxHi: number;
}

/** Whether `counter` is new to window `w`: above its top, or in its range and not yet accepted. */
export function replayCheck(w: ReplayState, counter: number): boolean {
  if (counter > w.rxTop) return true;
  const d = w.rxTop - counter;
  if (d >= REPLAY_WINDOW) return false;
  return d < 32 ? ((w.rxLo >>> d) & 1) === 0 : ((w.rxHi >>> (d - 32)) & 1) === 0;
}

/** Record `counter` (checked with replayCheck and authenticated) as accepted. */
export function replayCommit(w: ReplayState, counter: number): void {
  if (counter > w.rxTop) {
    const shift = w.rxTop < 0 ? REPLAY_WINDOW : counter - w.rxTop;
    if (shift >= REPLAY_WINDOW) {
      w.rxLo = 0;
      w.rxHi = 0;
    } else if (shift >= 32) {
      w.rxHi = w.rxLo << (shift - 32);
      w.rxLo = 0;
    } else if (shift > 0) {
      w.rxHi = (w.rxHi << shift) | (w.rxLo >>> (32 - shift));
      w.rxLo = w.rxLo << shift;
    }
    w.rxLo |= 1;
    w.rxTop = counter;
    return;
  }
  const d = w.rxTop - counter;
  if (d < 32) w.rxLo |= 1 << d;
  else if (d < REPLAY_WINDOW) w.rxHi |= 1 << (d - 32);
}

/**
 * Anti-replay window of one direction of a session: accepts each counter at most once, and none
 * more than REPLAY_WINDOW below the highest accepted. check() before the MAC is verified (cheap
 * refusal), commit() after.
 */
export class ReplayWindow implements ReplayState {
  rxTop = -1;
  rxLo = 0;
  rxHi = 0;

  check(counter: number): boolean {
    return replayCheck(this, counter);
  }

  commit(counter: number): void {
    replayCommit(this, counter);
  }
}

/**
 * The client's side of registration once the CHALLENGE is checked: a fresh X25519 key from
 * `secret`, the session keys, the sealed delivery key and the signed REGISTER_PROOF. `sign` signs
 * with the key of `cert`. Null when the peer's key gives no shared secret (small order).
 */
export function registerProof(p: {
  cert: Uint8Array; fingerprint: Uint8Array; sign: (data: Uint8Array) => Uint8Array; peerFingerprint: Uint8Array;
  nonce: Uint8Array; cookie: Uint8Array; peerKey: Uint8Array; deliveryKey: Uint8Array; secret: Uint8Array;
}): { msg: RegisterProofMsg; keys: SessionKeys } | null {
  const mine = x25519KeyPair(p.secret);
  const shared = x25519(mine.privateKey, p.peerKey);
  if (!shared) return null;
  const keys = deriveSession({
    shared, nonce: p.nonce, clientFingerprint: p.fingerprint, peerFingerprint: p.peerFingerprint, clientKey: mine.publicKey, peerKey: p.peerKey,
  });
  const wrappedKey = wrapDeliveryKey(keys.wrap, p.deliveryKey);
  const sig = p.sign(registerSigned({ cookie: p.cookie, peerFingerprint: p.peerFingerprint, nonce: p.nonce, peerKey: p.peerKey, clientKey: mine.publicKey, wrappedKey }));
  return {
    msg: { type: 7, cert: p.cert, nonce: p.nonce, cookie: p.cookie, peerKey: p.peerKey, clientKey: mine.publicKey, wrappedKey, sig },
    keys,
  };
}
